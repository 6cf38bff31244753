"""Adding a format is one module and one line in FORMATS (issue 17, item 6): a toy format
registered that way, and nothing else, is compressed from the command line with what it
states (frames, pixel size with its unit, frame time, metadata), named in the unsupported-type
message, walked by a batch and read as a --series."""

import sys
import types

import numpy as np
import pytest

from emcodec import formats
from emcodec.cli import main
from emcodec.codec import info as tcs_info
from emcodec.formats.base import StackInfo, StackReader


class _NpyReader(StackReader):
    """The whole module a format needs: a reader whose frames are a memory-mapped .npy."""

    def __init__(self, path, name):
        self._a = np.load(path, mmap_mode="r")
        n, height, width = self._a.shape
        super().__init__(StackInfo(n_frames=n, height=height, width=width, dtype=np.dtype(self._a.dtype),
                                   pixel_size=(15.0, 15.0), source_format="toy", source_name=name,
                                   frame_time=0.25, pixel_unit="nm", metadata={"camera": "toy"}))

    def _get(self, start, stop):
        return self._a[start:stop], True

    def close(self):
        self._a = None


@pytest.fixture
def toy_format(monkeypatch):
    module = types.ModuleType("emcodec.formats.toy")
    module.open_reader = lambda path, name, options, fmt: _NpyReader(path, name)
    monkeypatch.setitem(sys.modules, "emcodec.formats.toy", module)  # the module
    monkeypatch.setattr(formats, "FORMATS", formats.FORMATS + (formats.Format("toy", (".npy",), "toy"),))  # the line


def test_a_format_is_one_module_and_one_registry_line(toy_format, tmp_path, capsys):
    frames = np.random.default_rng(0).poisson(30, (6, 16, 20)).astype(np.uint16)
    np.save(tmp_path / "movie.npy", frames)
    assert main(["compress", str(tmp_path / "movie.npy"), "-B", "2", "-q"]) == 0
    facts = tcs_info(tmp_path / "movie.tcs")
    md = facts["metadata"]
    assert facts["frames"] == 6 and md["source_format"] == "toy"
    assert (md["pixel_size"], md["pixel_unit"], md["frame_time"]) == ([15.0, 15.0], "nm", 0.25)
    assert md["original_metadata"] == {"camera": "toy"}
    assert main(["info", str(tmp_path / "movie.tcs")]) == 0
    assert "1.5 nm (15 Å) per pixel" in capsys.readouterr().out

    (tmp_path / "movie.xyz").write_bytes(b"")
    assert main(["compress", str(tmp_path / "movie.xyz")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unsupported file type 'movie.xyz'") and err.endswith(".hdf5, .npy")

    folder = tmp_path / "frames"
    folder.mkdir()
    for k in (1, 2, 10):  # natural order: frame 10 last
        np.save(folder / f"f{k}.npy", np.full((1, 8, 8), k, np.uint16))
    assert main(["compress", str(folder), "-o", str(tmp_path / "each"), "-B", "2", "-q"]) == 0  # a batch
    assert sorted(p.name for p in (tmp_path / "each").iterdir()) == ["f1.tcs", "f10.tcs", "f2.tcs"]
    assert main(["compress", str(folder), "--series", "-B", "3", "-q"]) == 0
    series = tcs_info(tmp_path / "frames.tcs")["metadata"]
    assert series["source_extra"]["frame_format"] == "toy" and series["source_extra"]["last_file"] == "f10.npy"
