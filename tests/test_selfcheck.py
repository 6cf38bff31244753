"""The self-check judges each decoded group against the noise its own measurement should
hold (issue 16, item 12): a flag means the decode does not explain the data."""

import json

import numpy as np
import pytest
import tifffile

from emcodec import api
from emcodec.cli import main
from emcodec.codec import flag_groups
from emcodec.container import TcsReader, TcsWriter
from emcodec.decoders.measurement import Noise, SelfCheck, self_check
from emcodec.encoder import GroupEncoder
from emcodec.errors import ContainerError
from emcodec.fields import check_metadata
from emcodec.masks import DENSITY
from emcodec.quantize import auto_quantizer
from emcodec.simulate import simulate_movie

B = 4


def _measure(frames, seed, n):
    """The measurement of `frames` as a group of n (a short group padded, as the encoder does)."""
    enc = GroupEncoder(n, seed, *frames.shape[1:], frames.dtype)
    try:
        return np.array(enc.encode(frames)[0])
    finally:
        enc.close()


@pytest.mark.parametrize("dose", [0.5, 10, 200])
def test_the_noise_model_explains_the_true_frames(dose):
    """The expected noise is right: the noise-free frames leave about 1x it, quantised or
    exact, whole or padded (the encoder repeats a short part's last frame)."""
    clean, noisy = simulate_movie(10, 96, 96, seed=3, dose=dose)
    q = auto_quantizer(noisy, 10, DENSITY)
    y = _measure(noisy, 0, 10).astype(np.int64)
    codes, offset = q.quantize(y)
    stored = q.dequantize(codes.astype(np.int64) + offset)
    assert 0.9 < self_check(clean, stored, 0, 10, Noise(q.gain, q.offset, q.read_noise, True, q)).noise_ratio < 1.1
    exact = Noise(q.gain, q.offset, q.read_noise, True, None)
    assert 0.9 < self_check(clean, y.astype(float), 0, 10, exact).noise_ratio < 1.1
    padded = _measure(noisy[:6], 0, 10).astype(float)
    assert 0.9 < self_check(clean[:6], padded, 0, 10, exact).noise_ratio < 1.1


def _movie(dark_group=None):
    """16 frames (4 groups of B = 4) of a simulated movie at 20 counts per pixel; one group
    blanked (0.05 counts: the beam was off) when asked."""
    _, x = simulate_movie(16, 64, 64, seed=5, dose=20, kind="nanoparticles")
    if dark_group is not None:
        x[dark_group * B:(dark_group + 1) * B] = np.random.default_rng(0).poisson(0.05, (B, 64, 64))
    return x


def _tampered(src, dst, frames, bad):
    """A copy of `src` whose group `bad` was summed with another seed's masks: checksums
    valid, but no decode with the file's masks explains that measurement."""
    with open(src, "rb") as f:
        r = TcsReader(f)
        h, t = r.header, r.trailer
    with open(dst, "wb") as f:
        w = TcsWriter(f, h)
        for g in range(len(frames) // h.B):
            block = frames[g * h.B:(g + 1) * h.B]
            w.write_parts([(0, len(block), _measure(block, h.seed + (g == bad), h.B))])
        w.close(len(frames), t.value_min, t.value_max)


def _decode(tcs, out, method, capsys):
    code = main(["decompress", str(tcs), "-o", str(out), "--method", method, "-q", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 0, err
    report = json.loads(out.with_name(out.name + ".emcodec.json").read_text())
    return report, [line for line in err.splitlines() if "do not trust" in line]


@pytest.mark.parametrize("method", ["gap-tv", "movie"])
def test_a_group_the_decode_cannot_explain_is_flagged_and_a_dark_one_is_not(tmp_path, capsys, method):
    x = _movie()
    api.compress(x, tmp_path / "m.tcs", B=B)
    report, warned = _decode(tmp_path / "m.tcs", tmp_path / "m.tif", method, capsys)
    assert not warned and not any(g["flagged"] for g in report["groups"])  # a normal decode
    assert all(0.5 < g["noise_ratio"] < 1.5 for g in report["groups"])
    assert report["noise_model"]["from"] == "the quantiser in the header"

    _tampered(tmp_path / "m.tcs", tmp_path / "bad.tcs", x, bad=2)
    report, warned = _decode(tmp_path / "bad.tcs", tmp_path / "bad.tif", method, capsys)
    assert [g["flagged"] for g in report["groups"]] == [False, False, True, False]
    assert len(warned) == 1 and warned[0].startswith("warning: group 2 (frames 8-11): the decode leaves")
    assert report["groups"][2]["noise_ratio"] > 2.5

    # after a beam blank: a small measurement with a small noise, decoded as well as the
    # rest (its residual relative to the measurement is large; against its noise it is not)
    api.compress(_movie(dark_group=2), tmp_path / "dark.tcs", B=B)
    report, warned = _decode(tmp_path / "dark.tcs", tmp_path / "dark.tif", method, capsys)
    assert not warned and not any(g["flagged"] for g in report["groups"]), report["groups"]
    assert report["groups"][2]["residual"] > 0.25  # what used to be flagged


def test_a_lossless_file_keeps_its_detector_noise_for_the_self_check(tmp_path, capsys):
    x = _movie(dark_group=1)
    tifffile.imwrite(tmp_path / "m.tif", x)
    assert main(["compress", str(tmp_path / "m.tif"), "-B", str(B), "--quantize", "off", "-q"]) == 0
    with open(tmp_path / "m.tcs", "rb") as f:
        h = TcsReader(f).header
    assert h.quantizer is None and h.metadata["detector_noise"]["gain"] > 0
    report, warned = _decode(tmp_path / "m.tcs", tmp_path / "d.tif", "gap-tv", capsys)
    assert report["noise_model"]["from"] == "the header metadata (stored losslessly)"
    assert not warned and all(g["noise_ratio"] < 1.5 for g in report["groups"])
    # float input without --gain knows no noise: groups are compared with each other, as before
    tifffile.imwrite(tmp_path / "f.tif", _movie().astype(np.float32))
    assert main(["compress", str(tmp_path / "f.tif"), "-B", str(B), "-q"]) == 0
    report, _ = _decode(tmp_path / "f.tcs", tmp_path / "f-d.tif", "gap-tv", capsys)
    assert report["noise_model"] is None and "noise_ratio" not in report["groups"][0]
    assert report["flagged_when"].startswith("no noise model")
    assert main(["compress", str(tmp_path / "f.tif"), "-B", str(B), "--gain", "1", "-o", str(tmp_path / "g.tcs"),
                 "-q"]) == 0
    report, _ = _decode(tmp_path / "g.tcs", tmp_path / "g-d.tif", "gap-tv", capsys)
    assert report["noise_model"]["source"] == "given" and "noise_ratio" in report["groups"][0]


def test_the_flag_rule():
    noisy = [SelfCheck(0.45, 0.9), SelfCheck(0.5, 1.0)]  # low dose: a large relative residual, all noise
    assert flag_groups(noisy) == [False, False]
    high = [SelfCheck(0.06, 3.1), SelfCheck(0.3, 6.0)]  # high dose: the decoders' own few per cent pass
    assert flag_groups(high) == [False, True]
    assert flag_groups([SelfCheck(0.05), SelfCheck(0.4)]) == [False, True]  # no noise model: as before


@pytest.mark.parametrize("value", [{"gain": -1, "offset": 0, "read_noise": 0}, {"gain": 1, "offset": 0},
                                   {"gain": 1, "offset": float("nan"), "read_noise": 0}, "1", [1, 0, 0]])
def test_a_crafted_detector_noise_is_a_corrupt_header(value):
    with pytest.raises(ContainerError, match="detector_noise"):
        check_metadata({"detector_noise": value})
