"""The command line end to end: round trips, metadata, pipes, and every bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from emcodec.cli import cli, main
from emcodec.stacks import open_stack

DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float32"]


def movie_frames(dtype="uint16", n=12, h=24, w=40, seed=0):
    """A smooth drifting pattern plus noise: decodable, in the dtype's range."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([np.sin((xx + 0.5 * i) / 4.0) * np.cos(yy / 5.0) for i in range(n)])
    if dtype == "float32":
        return (base + 0.05 * rng.normal(size=base.shape)).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -100), min(info.max, 200)
    return np.clip(np.rint((base + 1) / 2 * (hi - lo) + lo), lo, hi).astype(dtype)


def emcodec(*args, stdin=None):
    """Run the installed CLI as a user would; returns (exit code, stdout bytes, stderr text)."""
    proc = subprocess.run([sys.executable, "-m", "emcodec", *map(str, args)], input=stdin, capture_output=True)
    return proc.returncode, proc.stdout, proc.stderr.decode()


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tif(tmp_path):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, movie_frames(), imagej=True, resolution=(1 / 0.25, 1 / 0.25), metadata={"unit": "nm"})
    return path


@pytest.fixture
def mrc(tmp_path):
    path = tmp_path / "movie.mrc"
    with mrcfile.new(path) as m:
        m.set_data(movie_frames("int16"))
        m.voxel_size = (1.5, 1.5, 1.5)
    return path


def test_help_has_examples_on_every_command():
    runner = CliRunner()
    for command in ([], ["compress"], ["decompress"], ["info"], ["demo"]):
        result = runner.invoke(cli, command + ["--help"])
        assert result.exit_code == 0
        assert "Example" in result.output


def test_tiff_round_trip_keeps_count_dtype_and_pixel_size(tif, capsys):
    code, _, err = run(["compress", tif, "-B", "5", "-q"], capsys)
    assert code == 0, err
    tcs = tif.with_suffix(".tcs")
    code, out, _ = run(["info", tcs, "--json"], capsys)
    facts = json.loads(out)
    assert facts["frames"] == 12 and facts["groups"] == 3 and facts["B"] == 5
    assert facts["compression_ratio"] == pytest.approx(facts["raw_bytes"] / tcs.stat().st_size)
    assert facts["metadata"]["pixel_size"] == pytest.approx([2.5, 2.5])
    code, _, err = run(["decompress", tcs, "--method", "gap-tv", "-q"], capsys)
    assert code == 0, err
    decoded = tif.with_name("movie.decoded.tif")
    with open_stack(decoded) as r:
        assert (r.info.n_frames, r.info.height, r.info.width) == (12, 24, 40)
        assert r.info.dtype == np.uint16
        assert r.info.pixel_size == pytest.approx((2.5, 2.5))
    with tifffile.TiffFile(decoded) as t:
        text = " ".join(str(p.description) for p in t.pages[:1]) + str(t.imagej_metadata)
    assert "reconstruction" in text and "gap-tv" in text and "B=5" in text


def test_mrc_round_trip(mrc, tmp_path, capsys):
    tcs = tmp_path / "m.tcs"
    assert run(["compress", mrc, "-o", tcs, "-B", "4", "--seed", "9", "-q"], capsys)[0] == 0
    out = tmp_path / "back.mrc"
    assert run(["decompress", tcs, "-o", out, "-q"], capsys)[0] == 0
    with mrcfile.open(out) as m:
        assert m.data.shape == (12, 24, 40) and m.data.dtype == np.int16
        assert float(m.voxel_size.x) == pytest.approx(1.5)
        labels = " ".join(l.decode(errors="ignore") for l in m.header.label[: m.header.nlabl])
    assert "reconstruction" in labels and "seed=9" in labels


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_dtype_round_trips_through_both_formats(dtype, tmp_path, capsys):
    frames = movie_frames(dtype, n=7, h=16, w=20)
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, frames, photometric="minisblack")
    tcs = tmp_path / "in.tcs"
    assert run(["compress", src, "-o", tcs, "-B", "3", "-q"], capsys)[0] == 0
    for ext in (".tif", ".mrc"):
        out = tmp_path / f"out{ext}"
        code, _, err = run(["decompress", tcs, "-o", out, "-q"], capsys)
        assert code == 0, err
        with open_stack(out) as r:
            back = r.read(0, r.info.n_frames)
        assert back.shape == frames.shape
        if ext == ".tif" or dtype not in ("uint8", "int8", "uint32", "int32"):
            assert back.dtype == frames.dtype
        # decoded values stay inside the source's range
        assert back.min() >= frames.min() and back.max() <= frames.max()


def test_32_bit_counts_at_full_scale_compress_with_the_default_quantiser(tmp_path, capsys):
    """Counts scaled to ~1e9 (summed or gain-scaled 32-bit data) once ran out of memory."""
    rng = np.random.default_rng(5)
    pattern = movie_frames("uint8", n=12, h=32, w=32).astype(np.float64)  # 0..200
    frames = (rng.poisson(20 + pattern) * 20_000_000).astype(np.uint32)
    src, tcs, out = tmp_path / "wide.tif", tmp_path / "wide.tcs", tmp_path / "wide.out.tif"
    tifffile.imwrite(src, frames, photometric="minisblack")
    assert run(["compress", src, "-o", tcs, "-B", "4", "-q"], capsys)[0] == 0
    assert run(["info", tcs, "--json"], capsys)[1].count('"generalised-anscombe"') == 1
    code, _, err = run(["decompress", tcs, "-o", out, "--method", "gap-tv", "-q"], capsys)
    assert code == 0, err
    back = tifffile.imread(out).astype(np.float64)
    assert back.shape == frames.shape and np.corrcoef(back.ravel(), pattern.ravel())[0, 1] > 0.8
    assert abs(back.mean() / frames.mean() - 1) < 0.05  # the counts' scale survives the transform


def test_frame_count_not_a_multiple_of_B_and_shorter_than_B(tmp_path, capsys):
    for n in (1, 3, 11):
        src = tmp_path / f"n{n}.tif"
        tifffile.imwrite(src, movie_frames(n=n), photometric="minisblack")
        assert run(["compress", src, "-B", "4", "-q"], capsys)[0] == 0
        assert run(["decompress", src.with_suffix(".tcs"), "-q"], capsys)[0] == 0
        with open_stack(src.with_name(f"n{n}.decoded.tif")) as r:
            assert r.info.n_frames == n


def test_frames_option_decodes_only_that_range(tif, tmp_path, capsys):
    run(["compress", tif, "-B", "5", "-q"], capsys)
    out = tmp_path / "part.tif"
    assert run(["decompress", tif.with_suffix(".tcs"), "--frames", "6:9", "-o", out, "-q"], capsys)[0] == 0
    full = tmp_path / "full.tif"
    run(["decompress", tif.with_suffix(".tcs"), "-o", full, "-q"], capsys)
    part, whole = tifffile.imread(out), tifffile.imread(full)
    assert part.shape[0] == 3
    np.testing.assert_array_equal(part, whole[6:9])


def test_pipe_out_and_in(tif, tmp_path):
    code, data, err = emcodec("compress", tif, "-o", "-", "-B", "4")
    assert code == 0, err
    assert data[:4] == b"\x89TCS"
    out = tmp_path / "piped.tif"
    code, _, err = emcodec("decompress", "-", "-o", out, stdin=data)
    assert code == 0, err
    assert tifffile.imread(out).shape == (12, 24, 40)


def test_compress_never_imports_torch(tif, tmp_path):
    code = (
        "import sys; from emcodec.cli import main; "
        f"rc = main(['compress', {str(tif)!r}, '-o', {str(tmp_path / 'x.tcs')!r}, '-q']); "
        f"rc |= main(['info', {str(tmp_path / 'x.tcs')!r}]); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_decode_without_torch_says_what_to_install(tif, tmp_path):
    main(["compress", str(tif), "-q"])
    code = (
        "import sys; sys.modules['torch'] = None; from emcodec.cli import main; "
        f"sys.exit(main(['decompress', {str(tif.with_suffix('.tcs'))!r}, '-q']))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "emcodec[decode]" in proc.stderr and "Traceback" not in proc.stderr


def bad_input_cases(tmp_path, tif):
    """(name, argv) pairs that must each fail with one clean line."""
    main(["compress", str(tif), "-q"])
    tcs = tif.with_suffix(".tcs")
    data = tcs.read_bytes()
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((4, 8, 8, 3), np.uint8), photometric="rgb")
    four = tmp_path / "4d.tif"
    tifffile.imwrite(four, np.zeros((2, 3, 8, 8), np.uint16), photometric="minisblack")
    empty = tmp_path / "empty.tif"
    empty.write_bytes(b"")
    text = tmp_path / "notes.tif"
    text.write_text("not a tiff")
    weird = tmp_path / "movie.avi"
    weird.write_bytes(b"RIFF")
    truncated = tmp_path / "trunc.tcs"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flip.tcs"
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x10
    flipped.write_bytes(bytes(bad))
    newer = tmp_path / "newer.tcs"
    import struct
    import zlib

    meta_len = struct.unpack_from("<I", data, 44)[0]
    head = bytearray(data[: 48 + meta_len])
    struct.pack_into("<H", head, 8, 99)
    newer.write_bytes(bytes(head) + struct.pack("<I", zlib.crc32(bytes(head))) + data[52 + meta_len :])
    out = tmp_path / "o.tif"
    floats = tmp_path / "floats.tif"
    tifffile.imwrite(floats, movie_frames("float32"))
    return [
        ("bad quantize", ["compress", tif, "--quantize", "lots", "--force"]),
        ("step too large", ["compress", tif, "--quantize", "100", "--force"]),
        ("step on floats", ["compress", floats, "--quantize", "0.5"]),
        ("gain not positive", ["compress", tif, "--gain", "0", "--force"]),
        ("negative read noise", ["compress", tif, "--gain", "1", "--read-noise", "-1", "--force"]),
        ("missing", ["compress", tmp_path / "nope.tif"]),
        ("rgb", ["compress", rgb]),
        ("4-D", ["compress", four]),
        ("empty", ["compress", empty]),
        ("not a tiff", ["compress", text]),
        ("extension", ["compress", weird]),
        ("B low", ["compress", tif, "-B", "1", "--force"]),
        ("B high", ["compress", tif, "-B", "65", "--force"]),
        ("exists", ["compress", tif]),
        ("unwritable", ["compress", tif, "-o", tmp_path / "no" / "dir" / "x.tcs"]),
        ("truncated", ["decompress", truncated, "-o", out]),
        ("bit flip", ["decompress", flipped, "-o", out]),
        ("newer version", ["decompress", newer, "-o", out]),
        ("not tcs", ["decompress", tif, "-o", out]),
        ("missing tcs", ["info", tmp_path / "nope.tcs"]),
        ("onto input", ["decompress", tcs, "-o", tcs, "--force"]),
        ("bad frames", ["decompress", tcs, "--frames", "x:y", "-o", out]),
        ("bad method", ["decompress", tcs, "--method", "magic", "-o", out]),
        ("truncated info", ["info", truncated]),
    ]


def test_bad_inputs_fail_cleanly_and_write_nothing(tif, tmp_path, capsys):
    for name, argv in bad_input_cases(tmp_path, tif):
        before = sorted(p.name for p in tmp_path.iterdir())
        code, out, err = run(argv, capsys)
        assert code != 0, name
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (name, err)
        assert "Traceback" not in err
        assert sorted(p.name for p in tmp_path.iterdir()) == before, name


def test_a_real_process_prints_no_traceback(tmp_path):
    bad = tmp_path / "x.tcs"
    bad.write_bytes(b"\x89TCS\r\n\x1a\n" + bytes(10))
    code, _, err = emcodec("decompress", bad, "-o", tmp_path / "y.tif")
    assert code == 1 and err.startswith("error:") and "Traceback" not in err


def test_existing_output_is_kept_without_force_and_replaced_with_it(tif, capsys):
    tcs = tif.with_suffix(".tcs")
    tcs.write_bytes(b"precious")
    assert run(["compress", tif, "-q"], capsys)[0] != 0
    assert tcs.read_bytes() == b"precious"
    assert run(["compress", tif, "-q", "--force"], capsys)[0] == 0
    assert tcs.read_bytes()[:4] == b"\x89TCS"


def test_failure_midway_leaves_no_partial_file(tif, tmp_path, monkeypatch):
    from emcodec import codec
    from emcodec.errors import EmcodecError

    def explode(self, *a, **k):
        raise EmcodecError("disk on fire")

    monkeypatch.setattr(codec.TcsWriter, "write_parts", explode)
    out = tmp_path / "half.tcs"
    assert main(["compress", str(tif), "-o", str(out), "-q"]) == 1
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_info_says_how_the_measurement_is_stored_and_old_files_decode(tif, tmp_path, capsys):
    poisson = tmp_path / "counts.tif"
    tifffile.imwrite(poisson, np.random.default_rng(0).poisson(30, (12, 32, 40)).astype(np.uint16))
    for args, expected in [([], "on"), (["--quantize", "off"], "off"), (["--gain", "1", "--quantize", "0.5"], "on")]:
        out = tmp_path / "c.tcs"
        assert run(["compress", poisson, "-o", out, "-q", "--force", *args], capsys)[0] == 0
        facts = json.loads(run(["info", out, "--json"], capsys)[1])
        assert facts["format_version"] == 2 and facts["measurement"]["quantize"] == expected
        if args[:2] == ["--gain", "1"]:
            assert facts["measurement"]["gain"] == 1.0 and facts["measurement"]["step"] == 0.5
    code, text, _ = run(["info", out], capsys)
    assert "quantised: generalised-anscombe transform, step 0.5" in text and "split_groups" in text
    floats = tmp_path / "f.tif"
    tifffile.imwrite(floats, movie_frames("float32"))
    run(["compress", floats, "-q"], capsys)
    facts = json.loads(run(["info", floats.with_suffix(".tcs"), "--json"], capsys)[1])
    assert facts["measurement"]["quantize"] == "off" and "float input" in facts["metadata"]["quantize"]
    old = Path(__file__).parent / "data" / "format-v1.tcs"
    code, text, _ = run(["info", old], capsys)
    assert code == 0 and "format_version     1" in text and "lossless" in text
    target = tmp_path / "old.tif"
    assert run(["decompress", old, "-o", target, "--method", "gap-tv", "-q"], capsys)[0] == 0
    assert tifffile.imread(target).shape == (13, 32, 48)


def test_progress_counts_the_frames_asked_for_and_follows_stderr(tmp_path, monkeypatch, capsys):
    """The bar is shown when stderr is a terminal (stdout may be the data, -o -) and counts
    the frames of --frames, not the file's."""
    import contextlib
    import sys

    import numpy as np
    import tifffile

    from emcodec import cli

    frames = np.random.default_rng(0).poisson(40, (30, 16, 24)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", frames)
    assert main(["compress", str(tmp_path / "m.tif"), "-B", "5", "-q"]) == 0
    seen = {}
    real = cli.progress_bar

    @contextlib.contextmanager
    def spy(total, label, quiet):
        seen["total"] = total
        with real(total, label, quiet) as advance:
            yield advance

    monkeypatch.setattr(cli, "progress_bar", spy)
    assert main(["decompress", str(tmp_path / "m.tcs"), "-o", str(tmp_path / "d.tif"), "--frames", "5:17",
                 "--method", "gap-tv", "--device", "cpu"]) == 0
    assert seen["total"] == 12
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False, raising=False)
    with real(10, "decode", False) as advance:
        assert advance is not None  # shown: a person watches stderr even when stdout is a pipe
