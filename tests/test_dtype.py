"""decompress --dtype float32: low-dose integer movies are not posterised (issue 16, item 10)."""

import json

import numpy as np
import tifffile

from emcodec.cli import main


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_float32_output_keeps_what_rounding_throws_away(tmp_path, capsys):
    frames = np.random.default_rng(4).poisson(5, (8, 24, 32)).astype(np.uint16)  # 5 counts/px/frame
    tifffile.imwrite(tmp_path / "low.tif", frames, photometric="minisblack")
    assert run(["compress", tmp_path / "low.tif", "-B", 4, "-q"], capsys)[0] == 0
    tcs = tmp_path / "low.tcs"
    code, out, _ = run(["info", tcs], capsys)
    assert code == 0 and "grey levels: decoded integers posterise" in out and "--dtype float32" in out
    code, out, _ = run(["info", tcs, "--json"], capsys)
    levels = json.loads(out)["grey_levels"]
    assert levels == int(frames.max()) - int(frames.min()) + 1
    common = ["--method", "gap-tv", "--threads", 1, "-q"]
    assert run(["decompress", tcs, "-o", tmp_path / "i.tif", *common], capsys)[0] == 0
    code, _, err = run(["decompress", tcs, "-o", tmp_path / "f.tif", "--dtype", "float32", *common], capsys)
    assert code == 0, err
    ints, floats = tifffile.imread(tmp_path / "i.tif"), tifffile.imread(tmp_path / "f.tif")
    assert ints.dtype == np.uint16 and floats.dtype == np.float32 and floats.shape == ints.shape
    np.testing.assert_array_equal(np.rint(floats).astype(np.uint16), ints)  # the same decode, unrounded
    assert len(np.unique(floats[0])) > 20 * len(np.unique(ints[0]))
    assert floats.min() >= frames.min() and floats.max() <= frames.max()  # still the source's range


def test_a_wide_integer_range_is_not_called_posterised(tmp_path, capsys):
    frames = np.random.default_rng(4).integers(0, 60000, (8, 16, 16)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "wide.tif", frames, photometric="minisblack")
    assert run(["compress", tmp_path / "wide.tif", "-B", 4, "-q"], capsys)[0] == 0
    code, out, _ = run(["info", tmp_path / "wide.tcs", "--json"], capsys)
    assert json.loads(out)["grey_levels"] is None
