"""zarr (OME-Zarr) and HDF5 outputs and inputs, and the numcodecs codec (issue 18, item 4)."""

from __future__ import annotations

import json

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")
h5py = pytest.importorskip("h5py")
numcodecs = pytest.importorskip("numcodecs")

import emcodec  # noqa: E402
from emcodec import codec  # noqa: E402
from emcodec.cli import main  # noqa: E402
from emcodec.formats import create_stack, open_stack  # noqa: E402

META = {"microscope": {"voltage_kV": 300}}


def _frames(n=23, seed=0):
    return np.random.default_rng(seed).poisson(30, (n, 24, 32)).astype(np.uint16)


def _write(path, frames, **kw):
    with create_stack(path, height=24, width=32, dtype=frames.dtype, n_frames=len(frames), pixel_size=(2.5, 2.5),
                      description="emcodec reconstruction; method=gap-tv", labels=["method=gap-tv B=10"],
                      frame_time=0.04, pixel_unit="nm", source_metadata=META, **kw) as w:
        w.write(frames[:10])
        w.write(frames[10:])


@pytest.mark.parametrize("ext", [".zarr", ".h5"])
def test_written_movies_read_back_with_their_metadata(tmp_path, ext):
    frames = _frames()
    _write(tmp_path / f"m{ext}", frames)
    assert [p.name for p in tmp_path.iterdir()] == [f"m{ext}"]  # no temporary left
    with open_stack(tmp_path / f"m{ext}") as r:
        info = r.info
        assert np.array_equal(r.read(0, 23), frames)
    assert (info.n_frames, info.height, info.width, info.dtype) == (23, 24, 32, np.uint16)
    assert info.pixel_size == (2.5, 2.5) and info.pixel_unit == "nm" and info.frame_time == 0.04
    assert info.metadata == META


def test_zarr_is_ome_ngff_with_the_pixel_size_as_scale(tmp_path):
    _write(tmp_path / "m.zarr", _frames())
    group = zarr.open_group(tmp_path / "m.zarr", mode="r")
    ome = group.attrs["ome"]
    ms = ome["multiscales"][0]
    assert ome["version"] == "0.5"
    assert [a["name"] for a in ms["axes"]] == ["t", "y", "x"]
    assert [a.get("unit") for a in ms["axes"]] == ["second", "nanometer", "nanometer"]
    scale = ms["datasets"][0]["coordinateTransformations"][0]["scale"]
    assert scale == [0.04, 0.25, 0.25]  # 2.5 Å = 0.25 nm
    assert group[ms["datasets"][0]["path"]].shape == (23, 24, 32)
    assert group.attrs["emcodec"]["labels"] == ["method=gap-tv B=10"]


def test_hdf5_states_the_voxel_size_for_fiji(tmp_path):
    _write(tmp_path / "m.h5", _frames())
    with h5py.File(tmp_path / "m.h5") as f:
        ds = f["movie"]
        assert ds.shape == (23, 24, 32)
        assert list(ds.attrs["element_size_um"]) == pytest.approx([1.0, 2.5e-4, 2.5e-4])
        assert json.loads(ds.attrs["emcodec"])["description"].startswith("emcodec reconstruction")


def test_a_zarr_store_is_replaced_only_with_force_and_a_failure_keeps_the_old_one(tmp_path):
    _write(tmp_path / "m.zarr", _frames(seed=1))
    with pytest.raises(emcodec.errors.OutputError, match="--force"):
        _write(tmp_path / "m.zarr", _frames(seed=2))
    with pytest.raises(ValueError, match="only 10 of 23"):
        with create_stack(tmp_path / "m.zarr", height=24, width=32, dtype=np.uint16, n_frames=23, force=True) as w:
            w.write(_frames(seed=2)[:10])
    with open_stack(tmp_path / "m.zarr") as r:
        assert np.array_equal(r.read(0, 23), _frames(seed=1))
    _write(tmp_path / "m.zarr", _frames(seed=2), force=True)
    with open_stack(tmp_path / "m.zarr") as r:
        assert np.array_equal(r.read(0, 23), _frames(seed=2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.zarr"]


pytest.importorskip("torch")


@pytest.mark.parametrize("ext", [".zarr", ".h5"])
def test_decompress_to_zarr_and_hdf5_carries_what_tiff_carries(tmp_path, ext, capsys):
    frames = _frames(25, seed=3)
    emcodec.compress(frames, tmp_path / "m.tcs", B=10, pixel_size=1.5, frame_time=0.01)
    assert main(["decompress", str(tmp_path / "m.tcs"), "-o", str(tmp_path / f"m{ext}"), "--method", "gap-tv",
                 "--threads", "1", "-q"]) == 0
    with open_stack(tmp_path / f"m{ext}") as r:
        assert r.info.pixel_size == (1.5, 1.5) and r.info.frame_time == 0.01
        decoded = r.read(0, 25)
    with emcodec.open(tmp_path / "m.tcs", method="gap-tv", threads=1) as m:
        assert np.array_equal(decoded, m[:])
    assert (tmp_path / f"m{ext}.emcodec.json").exists()
    # and a zarr / HDF5 movie compresses like any other
    assert main(["compress", str(tmp_path / f"m{ext}"), "-o", str(tmp_path / "again.tcs"), "-q"]) == 0
    assert emcodec.open(tmp_path / "again.tcs").pixel_size == (1.5, 1.5)


def test_the_numcodecs_codec_is_found_by_entry_point_and_stores_a_zarr_array(tmp_path):
    codec_ = numcodecs.get_codec({"id": "emcodec_tcs", "B": 10, "method": "gap-tv"})
    assert "neighbouring chunks" in type(codec_).__doc__
    frames = _frames(25, seed=4)
    arr = zarr.create_array(tmp_path / "a.zarr", shape=frames.shape, chunks=(10, 24, 32), dtype=frames.dtype,
                            filters=[codec_], compressors=None, zarr_format=2)
    arr[:] = frames
    back = zarr.open_array(tmp_path / "a.zarr", mode="r")
    assert back.filters[0].get_config()["id"] == "emcodec_tcs"
    decoded = back[:]
    assert decoded.shape == frames.shape and decoded.dtype == frames.dtype
    # lossy, but each chunk is its group's per-group decode: the same as decoding a .tcs of those frames
    emcodec.compress(frames[:10], tmp_path / "g.tcs", B=10)
    assert np.array_equal(decoded[:10], emcodec.decompress(tmp_path / "g.tcs", method="gap-tv", threads=1))
    stored = sum(p.stat().st_size for p in (tmp_path / "a.zarr").rglob("*") if p.is_file())
    assert stored < frames.nbytes / 3
    with pytest.raises(ValueError, match="one chunk at a time"):
        numcodecs.get_codec({"id": "emcodec_tcs", "method": "movie"})
