"""The Python API (issue 18, item 1): emcodec.compress on arrays, emcodec.decompress to an
array, emcodec.open with lazy slicing that decodes only the groups it needs."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import emcodec
from emcodec import codec, simulate
from emcodec.errors import InputError

B = 10


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """A drifting 48x48 movie of 45 frames (5 groups, the last short), from an array."""
    d = tmp_path_factory.mktemp("api")
    _, noisy, _ = simulate.simulate_motion_movie(45, 48, 48, seed=5, dose=50, motion="drift")
    result = emcodec.compress(noisy, d / "m.tcs", B=B, pixel_size=(0.8, 0.9), frame_time=0.025, name="sim.tif")
    return d, noisy, result


def test_an_array_compresses_with_its_metadata(movie):
    d, noisy, result = movie
    assert (result.frames, result.groups) == (45, 5)
    with emcodec.open(d / "m.tcs") as m:
        assert len(m) == 45 and m.shape == (45, 48, 48) and m.dtype == noisy.dtype
        assert m.pixel_size == (0.8, 0.9) and m.frame_time == 0.025
        assert m.metadata["source_name"] == "sim.tif" and m.metadata["source_format"] == "array"
        assert (m.B, m.n_groups) == (B, 5)


def test_array_compress_equals_compressing_the_same_frames_from_a_file(movie, tmp_path):
    d, noisy, _ = movie
    tifffile.imwrite(tmp_path / "m.tif", noisy)
    codec.compress(tmp_path / "m.tif", tmp_path / "f.tcs", B=B)
    a, f = codec.open_tcs(d / "m.tcs"), codec.open_tcs(tmp_path / "f.tcs")
    try:
        for g in range(5):
            assert np.array_equal(a.read_group(g).measurement, f.read_group(g).measurement)
    finally:
        a._f.close(), f._f.close()


def test_bad_arrays_are_one_clear_error_and_write_nothing(tmp_path):
    with pytest.raises(InputError, match="float64.*astype"):
        emcodec.compress(np.zeros((12, 8, 8)), tmp_path / "x.tcs")
    with pytest.raises(InputError, match=r"\(frames, height, width\)"):
        emcodec.compress(np.zeros((2, 3, 8, 8), np.uint16), tmp_path / "x.tcs")
    with pytest.raises(InputError, match="needs out="):
        emcodec.compress(np.zeros((12, 8, 8), np.uint16))
    with pytest.raises(InputError, match="pixel_size"):
        emcodec.compress(np.zeros((12, 8, 8), np.uint16), tmp_path / "x.tcs", pixel_size=-1)
    assert list(tmp_path.iterdir()) == []


def test_existing_output_needs_force(movie):
    d, noisy, _ = movie
    with pytest.raises(emcodec.errors.OutputError, match="--force"):
        emcodec.compress(noisy, d / "m.tcs")


pytest.importorskip("torch")
pytest.importorskip("cv2")


@pytest.fixture(scope="module")
def decoded(movie):
    """The plain decode of the whole file with the default (movie) decoder, one thread."""
    d, _, _ = movie
    target = codec.decompress(d / "m.tcs", d / "full.tif", device="cpu", threads=1, force=True)
    return tifffile.imread(target)


def test_slices_equal_the_same_frames_of_a_full_decode(movie, decoded):
    d, _, _ = movie
    with emcodec.open(d / "m.tcs", device="cpu", threads=1) as m:
        assert np.array_equal(m[12:27], decoded[12:27])
        assert np.array_equal(m[-1], decoded[-1])
        assert np.array_equal(m[3:40:7, 10:20, ::2], decoded[3:40:7, 10:20, ::2])
        assert m[5:5].shape == (0, 48, 48)
        with pytest.raises(IndexError):
            m[45]


def test_a_slice_reads_only_its_groups_and_the_window(movie, monkeypatch):
    d, _, _ = movie
    with emcodec.open(d / "m.tcs", device="cpu", threads=1, window=2) as m:
        read = []
        original = m._reader.read_group
        monkeypatch.setattr(m._reader, "read_group", lambda g, *a, **k: read.append(g) or original(g, *a, **k))
        m[0:5]  # group 0: its window reaches groups 1 and 2
        assert set(read) == {0, 1, 2}
        read.clear()
        m[41:43]  # group 4, the last: groups 2 and 3 before it
        assert set(read) == {2, 3, 4}


def test_decompress_to_an_array_equals_the_decoded_file(movie, decoded):
    d, _, _ = movie
    whole = emcodec.decompress(d / "m.tcs", device="cpu", threads=1)
    assert whole.dtype == decoded.dtype and np.array_equal(whole, decoded)
    assert np.array_equal(emcodec.decompress(d / "m.tcs", frames="30:", device="cpu", threads=1), decoded[30:])


def test_decompress_with_out_writes_the_file(movie, tmp_path):
    d, _, _ = movie
    target = emcodec.decompress(d / "m.tcs", tmp_path / "g.tif", method="gap-tv", frames=(0, 20), device="cpu",
                                threads=1)
    frames = tifffile.imread(target)
    assert frames.shape == (20, 48, 48)
    with emcodec.open(d / "m.tcs", method="gap-tv", device="cpu", threads=1) as m:
        assert np.array_equal(m[0:20], frames)


def test_the_array_api_compresses_without_torch_or_dask(tmp_path):
    """`pip install emcodec` (no extras) is enough to compress: nothing heavy is imported."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, emcodec; "
            f"emcodec.compress(np.ones((12, 16, 16), np.uint16), r'{tmp_path / 'x.tcs'}', B=4); "
            "m = emcodec.open(r'%s'); assert len(m) == 12; " % (tmp_path / "x.tcs")
            + "heavy = [k for k in ('torch', 'dask', 'zarr', 'h5py', 'cv2') if k in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)
