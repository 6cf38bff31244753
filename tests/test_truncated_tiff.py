"""A cut-short TIFF is refused by default, or its complete frames compressed with
--allow-truncated (issue 16, item 2)."""

import numpy as np
import pytest
import tifffile

from emcodec.cli import main
from emcodec.formats import ReadOptions, open_stack

KINDS = {"imagej": dict(imagej=True), "plain": dict(photometric="minisblack"),
         "zlib": dict(photometric="minisblack", compression="zlib"),
         "bigtiff-zlib": dict(photometric="minisblack", compression="zlib", bigtiff=True)}


def run(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, err


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_cut_tiff_is_never_read_as_a_shorter_movie_with_exit_0(tmp_path, capsys, kind):
    x = np.random.default_rng(0).poisson(30, (19, 32, 40)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "whole.tif", x, **KINDS[kind])
    data = (tmp_path / "whole.tif").read_bytes()
    named = 0
    for frac in (0.3, 0.55, 0.8):
        cut = tmp_path / "cut.tif"
        cut.write_bytes(data[: int(len(data) * frac)])
        (tmp_path / "cut.tcs").unlink(missing_ok=True)
        code, err = run(["compress", cut, "-B", 4, "-q", "--force"], capsys)
        assert code == 1 and err.count("\n") == 1 and not (tmp_path / "cut.tcs").exists(), err
        if "is truncated" not in err:
            continue  # a decoder error on the cut data: refused all the same
        assert "complete frame(s) found of 19" in err
        named += 1
        code, err = run(["compress", cut, "-B", 4, "-q", "--force", "--allow-truncated"], capsys)
        assert code == 0, err
        assert err.startswith("warning: ") and "is truncated: compressing its" in err and "of 19" in err
        n = int(err.split("compressing its ")[1].split()[0])
        code, out = main(["info", str(tmp_path / "cut.tcs"), "--json"]), capsys.readouterr().out
        assert 1 <= n < 19 and f'"frames": {n}' in out
    assert named == 3  # every cut was recognised as one, not only refused


@pytest.mark.parametrize("kind", sorted({**KINDS, "imagej-zlib": dict(imagej=True, compression="zlib")}))
def test_allow_truncated_keeps_every_complete_frame(tmp_path, capsys, kind):
    # A cut often leaves tifffile a one-page series (an ImageJ file's page directories follow
    # its data; a cut compressed file's shape no longer fits): the complete frames are still
    # all those whose data lies inside the file, and the message names that count.
    kw = {"imagej-zlib": dict(imagej=True, compression="zlib")}.get(kind, KINDS.get(kind))
    x = np.random.default_rng(5).poisson(30, (19, 32, 40)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "whole.tif", x, **kw)
    data = (tmp_path / "whole.tif").read_bytes()
    with tifffile.TiffFile(tmp_path / "whole.tif") as tf:
        ends = [max(int(o) + int(c) for o, c in zip(p.dataoffsets, p.databytecounts)) for p in tf.pages]
    for frac in np.linspace(0.15, 0.95, 9):
        cut = int(len(data) * frac)
        complete = next((i for i, end in enumerate(ends) if end > cut), len(ends))
        (tmp_path / "cut.tif").write_bytes(data[:cut])
        code, err = run(["compress", tmp_path / "cut.tif", "-B", 4, "-q", "--force"], capsys)
        if complete == len(x):  # only directories after the last frame's data were cut: nothing lost
            assert code == 0 and err == "", (frac, err)
            continue
        if f"tifffile cannot read the {complete} frame(s) before it" in err:
            continue  # cut inside the last directories: tifffile opens no series (refused, the count named)
        assert code == 1 and f"is truncated: {complete} complete frame(s) found of 19" in err, (frac, err)
        code, err = run(["compress", tmp_path / "cut.tif", "-B", 4, "-q", "--force", "--allow-truncated"], capsys)
        assert code == 0 and err.count("\n") == 1 and f"compressing its {complete} complete frame(s) of 19" in err, \
            (frac, err)
        with open_stack(str(tmp_path / "cut.tif"), ReadOptions(allow_truncated=True)) as r:
            assert r.info.n_frames == complete
            np.testing.assert_array_equal(r.read(0, complete), x[:complete])


def test_a_whole_tiff_is_not_called_truncated(tmp_path, capsys):
    for kind, kw in KINDS.items():
        x = np.random.default_rng(1).poisson(30, (19, 16, 24)).astype(np.uint16)
        tifffile.imwrite(tmp_path / f"{kind}.tif", x, **kw)
        code, err = run(["compress", tmp_path / f"{kind}.tif", "-B", 4, "-q"], capsys)
        assert code == 0 and err == "", (kind, err)


UNSTATED = {"zlib": dict(compression="zlib"), "zlib-strips": dict(compression="zlib", rowsperstrip=8),
            "bigtiff-zlib": dict(compression="zlib", bigtiff=True), "plain": {}, "tiled": dict(tile=(16, 16))}


@pytest.mark.parametrize("kind", sorted(UNSTATED))
def test_a_cut_tiff_that_states_no_frame_count_is_called_truncated(tmp_path, capsys, kind):
    # no ImageJ or shaped description: only the pages themselves say how many frames there were
    x = np.random.default_rng(4).poisson(30, (19, 32, 40)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "whole.tif", x, photometric="minisblack", metadata=None, **UNSTATED[kind])
    data = (tmp_path / "whole.tif").read_bytes()
    code, err = run(["compress", tmp_path / "whole.tif", "-B", 4, "-q"], capsys)
    assert code == 0 and err == "", err
    for cut in range(300, len(data), max(1, len(data) // 60)):  # inside directories, tag values and data
        (tmp_path / "cut.tif").write_bytes(data[:cut])
        (tmp_path / "cut.tcs").unlink(missing_ok=True)
        code, err = run(["compress", tmp_path / "cut.tif", "-B", 4, "-q"], capsys)
        assert code == 1 and err.count("\n") == 1 and "is truncated" in err, (cut, err)
        assert not (tmp_path / "cut.tcs").exists()
        code, err = run(["compress", tmp_path / "cut.tif", "-B", 4, "-q", "--force", "--allow-truncated"], capsys)
        if code == 1:  # nothing tifffile can read before the cut: refused, in the same words
            assert err.count("\n") == 1 and "is truncated" in err, (cut, err)
            continue
        assert code == 0 and "(the file states no count)" in err, (cut, err)
        n = int(err.split("compressing its ")[1].split()[0])
        with open_stack(str(tmp_path / "cut.tif"), ReadOptions(allow_truncated=True)) as r:
            assert r.info.n_frames == n and 1 <= n < 19
            np.testing.assert_array_equal(r.read(0, n), x[:n])  # the source's first n frames, intact
