"""Folders of single-frame files as one movie (natural order), and the bounded metadata tree."""

import json

import numpy as np
import pytest
import tifffile

from emcodec.cli import main
from emcodec.codec import info as tcs_info
from emcodec.errors import InputError
from emcodec.formats import ReadOptions, open_stack
from emcodec.formats.metadata import NOTE_KEY, bounded_tree
from emcodec.formats.options import default_output
from emcodec.formats.series import natural_key


def frames_folder(tmp_path, n=12):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in range(1, n + 1):  # frame_1 ... frame_12: a plain sort puts frame_10 second
        tifffile.imwrite(folder / f"frame_{k}.tif", np.full((6, 7), k, np.uint16), photometric="minisblack")
    return folder


def test_series_reads_frames_in_natural_order(tmp_path):
    folder = frames_folder(tmp_path)
    (folder / "notes.txt").write_text("not a frame")
    with open_stack(folder, ReadOptions(series=True)) as r:
        assert (r.info.n_frames, r.info.source_format, r.info.source_name) == (12, "series", "frames")
        got = np.concatenate(list(r.iter_chunks(5)))
    np.testing.assert_array_equal(got[:, 0, 0], np.arange(1, 13))
    with open_stack(str(folder / "frame_1*.tif"), ReadOptions(series=True)) as r:  # a glob
        assert r.read(0, r.info.n_frames)[:, 0, 0].tolist() == [1, 10, 11, 12]


def test_series_from_the_command_line(tmp_path):
    folder = frames_folder(tmp_path)
    # without --series a folder is a batch: each file its own movie (issue 18)
    assert main(["compress", str(folder), "-B", "4", "-q", "-o", str(tmp_path / "each")]) == 0
    assert len(list((tmp_path / "each").glob("frame_*.tcs"))) == 12
    assert main(["compress", str(folder) + "/", "--series", "-B", "4", "-q"]) == 0
    facts = tcs_info(tmp_path / "frames.tcs")
    assert facts["frames"] == 12 and facts["metadata"]["source_extra"]["last_file"] == "frame_12.tif"


def test_series_refuses_mixed_or_mismatched_files(tmp_path):
    folder = frames_folder(tmp_path, n=3)
    tifffile.imwrite(folder / "frame_4.tif", np.zeros((5, 7), np.uint16), photometric="minisblack")
    with open_stack(folder, ReadOptions(series=True)) as r:
        with pytest.raises(InputError, match="frame_4.tif' is 5x7 uint16; the first is 6x7 uint16"):
            r.read(0, 4)
    (folder / "frame_5.mrc").write_bytes(b"x")
    with pytest.raises(InputError, match="mixes mrc, tiff files"):
        open_stack(folder, ReadOptions(series=True))
    with pytest.raises(InputError, match="no movie frames"):
        open_stack(tmp_path, ReadOptions(series=True))


def test_natural_key_and_default_output():
    assert sorted(["f10", "F2", "f1"], key=natural_key) == ["f1", "F2", "f10"]
    assert default_output("run/frames/", True) == "run/frames.tcs"
    assert default_output("run/frames/*.dm4", True) == "run/frames.tcs"
    assert default_output("run/movie.dm4", False) == "run/movie.tcs"


def test_metadata_tree_is_bounded_and_says_so():
    deep = node = {}
    for _ in range(40):
        node["k"] = {}
        node = node["k"]
    out = bounded_tree({"a": np.float32(1.5), "b": b"xy", "c": np.arange(3), "nan": float("nan"), "deep": deep})
    assert out["a"] == 1.5 and out["b"] == "xy" and out["c"] == [0, 1, 2] and out["nan"] == "nan"
    assert "deeper than 32" in out[NOTE_KEY]
    big = {f"key{i}": "x" * 1000 for i in range(300)}
    out = bounded_tree(big, max_bytes=50_000)
    assert len(json.dumps(out)) <= 50_000 and "truncated to 50000 bytes" in out[NOTE_KEY]
    assert 30 < len(out) < 300
    assert NOTE_KEY not in bounded_tree({"small": [1, 2, 3]})


def test_metadata_tree_of_many_small_items_stays_within_16_mib():
    """The header's JSON (json.dumps as the container writes it) of a tree cut to size is at
    most MAX_BYTES, however many keys it has (each key's ', ' was not counted: 16 MiB + 32 kB
    from a 22 MB tree of short entries)."""
    from emcodec.formats.metadata import MAX_BYTES

    tree = {f"tag{i}": "v" * 100 for i in range(200_000)}
    out = bounded_tree(tree)
    assert MAX_BYTES - 1000 < len(json.dumps(out, sort_keys=True)) <= MAX_BYTES
    assert "truncated to 16777216 bytes" in out[NOTE_KEY]
    small = bounded_tree({f"k{i}": i for i in range(20_000)}, max_bytes=50_000)
    assert len(json.dumps(small)) <= 50_000
