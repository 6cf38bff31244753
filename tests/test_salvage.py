"""decompress --salvage: a damaged or cut-short file gives back every intact group (issue 16, item 4)."""

import json

import numpy as np
import pytest
import tifffile

from emcodec import container
from emcodec.cli import main
from emcodec.container import TcsReader
from emcodec.formats import read_description

B = 4


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def movie(dtype, n=18, h=32, w=40):
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 100 + 60 * np.sin(xx / 5.0) * np.cos(yy / 6.0)
    x = rng.poisson(np.broadcast_to(base, (n, h, w)))
    return x.astype(dtype)


@pytest.fixture(params=["uint16", "float32"])
def tcs(request, tmp_path, capsys):
    tifffile.imwrite(tmp_path / "m.tif", movie(request.param))
    code, _, err = run(["compress", tmp_path / "m.tif", "-B", B, "-q"], capsys)
    assert code == 0, err
    path = tmp_path / "m.tcs"
    code, _, err = run(["decompress", path, "-o", tmp_path / "full.tif", "--method", "gap-tv", "-q"], capsys)
    assert code == 0, err
    return path


def group_offsets(path):
    with open(path, "rb") as f:
        return TcsReader(f).trailer.offsets


def test_a_damaged_group_loses_only_its_frames(tcs, capsys):
    data = bytearray(tcs.read_bytes())
    data[group_offsets(tcs)[1] + container.GROUP.size + container.CRC.size + 3] ^= 0xFF
    bad = tcs.with_name("bad.tcs")
    bad.write_bytes(bytes(data))
    out = tcs.with_name("out.tif")
    code, _, err = run(["decompress", bad, "-o", out, "--method", "gap-tv", "--frames", "0:8", "-q"], capsys)
    assert code == 1 and not out.exists()
    code, _, err = run(["decompress", bad, "-o", out, "--method", "gap-tv", "--salvage", "-q"], capsys)
    assert code == 2, err
    assert "frames 4-7 are damaged or missing" in err
    full, got = tifffile.imread(tcs.with_name("full.tif")), tifffile.imread(out)
    assert got.shape == full.shape == (18, 32, 40)
    lost = got[4:8]
    assert (np.isnan(lost).all() if got.dtype.kind == "f" else (lost == 0).all())
    keep = np.r_[0:4, 8:18]
    np.testing.assert_array_equal(got[keep], full[keep])
    report = json.loads(out.with_name("out.tif.emcodec.json").read_text())
    assert report["salvage"]["missing_frames"] == [[4, 7]] and report["salvage"]["trailer_found"]
    assert [g.get("missing", False) for g in report["groups"]] == [False, True, False, False, False]
    assert "salvaged: frames 4-7" in read_description(out)
    # a range that avoids the damage is complete: exit 0
    code, _, err = run(["decompress", bad, "-o", tcs.with_name("part.tif"), "--method", "gap-tv", "--salvage",
                        "--frames", "8:18", "-q"], capsys)
    assert code == 0, err


def test_a_file_cut_short_decodes_its_complete_groups(tcs, capsys):
    data = tcs.read_bytes()
    cut = tcs.with_name("cut.tcs")
    cut.write_bytes(data[: group_offsets(tcs)[3] + 30])  # inside group 3's record; no trailer
    out = tcs.with_name("out.tif")
    code, _, err = run(["decompress", cut, "-o", out, "--method", "gap-tv", "-q"], capsys)
    assert code == 1 and "end marker" in err
    code, _, err = run(["decompress", cut, "-o", out, "--method", "gap-tv", "--salvage", "-q"], capsys)
    assert code == 2 and "no intact trailer" in err
    got, full = tifffile.imread(out), tifffile.imread(tcs.with_name("full.tif"))
    np.testing.assert_array_equal(got, full[:12])
    report = json.loads(out.with_name("out.tif.emcodec.json").read_text())
    assert report["salvage"]["trailer_found"] is False and report["salvage"]["missing_frames"] == [[12, None]]


def test_a_lost_group_in_the_middle_of_a_stream_keeps_the_indices_after_it(tcs, capsys):
    data = bytearray(tcs.read_bytes())
    offsets = group_offsets(tcs)
    data[offsets[2] + 2] ^= 0x01  # group 2's record tag
    cut = tcs.with_name("cut.tcs")
    cut.write_bytes(bytes(data[: offsets[4]]))  # and no trailer
    out = tcs.with_name("out.tif")
    code, _, err = run(["decompress", cut, "-o", out, "--method", "gap-tv", "--salvage", "-q"], capsys)
    assert code == 2, err
    got, full = tifffile.imread(out), tifffile.imread(tcs.with_name("full.tif"))
    assert got.shape[0] == 16
    np.testing.assert_array_equal(got[np.r_[0:8, 12:16]], full[np.r_[0:8, 12:16]])
    lost = got[8:12]
    assert (np.isnan(lost).all() if got.dtype.kind == "f" else (lost == 0).all())


def test_the_movie_decoder_salvages_around_a_damaged_group(tcs, capsys):
    pytest.importorskip("cv2")
    data = bytearray(tcs.read_bytes())
    data[group_offsets(tcs)[2] + container.GROUP.size + container.CRC.size + 3] ^= 0xFF
    bad = tcs.with_name("bad.tcs")
    bad.write_bytes(bytes(data))
    out = tcs.with_name("movie.tif")
    code, _, err = run(["decompress", bad, "-o", out, "--method", "movie", "--salvage", "--threads", "1", "-q"],
                       capsys)
    assert code == 2, err
    got = tifffile.imread(out).astype(np.float64)
    keep = np.r_[0:8, 12:18]
    assert np.isfinite(got[keep]).all() and (got[keep].mean(axis=(1, 2)) > 50).all()


def test_salvage_of_a_file_with_no_intact_group_fails(tcs, capsys):
    data = tcs.read_bytes()
    cut = tcs.with_name("cut.tcs")
    cut.write_bytes(data[: group_offsets(tcs)[0] + 10])
    code, _, err = run(["decompress", cut, "-o", tcs.with_name("o.tif"), "--method", "gap-tv", "--salvage"], capsys)
    assert code == 1 and "no intact group" in err


def test_a_usage_error_is_not_mistaken_for_a_partial_decode(capsys):
    code, _, _ = run(["decompress", "--no-such-option"], capsys)
    assert code == 1
