"""emcodec.open(path).to_dask() (issue 18, item 2): lazy, one chunk per group, equal to a
plain decode with the movie decoder (bit-identical at the same thread count)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import tifffile

da = pytest.importorskip("dask.array")
pytest.importorskip("torch")
pytest.importorskip("cv2")

import emcodec  # noqa: E402
from emcodec import codec, lazy, simulate  # noqa: E402
from emcodec.reader import TcsMovie  # noqa: E402


WINDOW = 1  # the movie decoder with one group on each side: the same code, a third less work


@pytest.fixture(scope="module")
def tcs(tmp_path_factory):
    """45 frames of a drifting 48x48 movie at B = 10 (5 groups, the last short) and its plain decode."""
    d = tmp_path_factory.mktemp("dask")
    _, noisy, _ = simulate.simulate_motion_movie(45, 48, 48, seed=8, dose=40, motion="drift")
    emcodec.compress(noisy, d / "m.tcs", B=10)
    plain = tifffile.imread(codec.decompress(d / "m.tcs", d / "plain.tif", window=WINDOW, device="cpu", threads=1))
    yield d / "m.tcs", plain
    lazy.release()


@pytest.fixture
def calls(monkeypatch):
    """Frame ranges decoded by any TcsMovie in this process."""
    seen = []
    original = TcsMovie._decode

    def counted(self, start, stop):
        seen.append((start, stop))
        return original(self, start, stop)

    monkeypatch.setattr(TcsMovie, "_decode", counted)
    return seen


def test_nothing_is_decoded_until_computed_and_chunks_are_groups(tcs, calls):
    path, plain = tcs
    with emcodec.open(path, window=WINDOW, device="cpu", threads=1) as m:
        arr = m.to_dask()
    assert isinstance(arr, da.Array)
    assert arr.shape == (45, 48, 48) and arr.dtype == plain.dtype
    assert arr.chunks == ((10, 10, 10, 10, 5), (48,), (48,))
    view = arr[12:14, 4:40].mean()
    assert calls == []
    view.compute(scheduler="synchronous")
    assert calls == [(10, 20)]  # one chunk: group 1 (its window is read inside the task)


def test_the_lazy_movie_equals_a_plain_decode(tcs):
    path, plain = tcs
    with emcodec.open(path, window=WINDOW, device="cpu", threads=1) as m:
        arr = m.to_dask()
    assert np.array_equal(arr.compute(scheduler="threads"), plain)


def test_the_graph_pickles_without_an_open_file(tcs):
    """A distributed worker gets the file name and options, not a file handle."""
    path, plain = tcs
    with emcodec.open(path, window=WINDOW, device="cpu", threads=1) as m:
        arr = m.to_dask()
    back = pickle.loads(pickle.dumps(arr))
    lazy.release()  # a fresh process: nothing open
    assert np.array_equal(back[40:45].compute(scheduler="synchronous"), plain[40:45])


def test_a_rewritten_file_is_a_new_graph(tcs, tmp_path):
    path, _ = tcs
    a = lazy.to_dask(path)
    copy = tmp_path / "m.tcs"
    copy.write_bytes(path.read_bytes())
    assert lazy.to_dask(copy).name != a.name
    assert lazy.to_dask(path).name == a.name


def test_another_thread_count_stays_within_one_grey_level(tcs):
    """The default picks threads from the machine's load: a chunk computed with 2 threads
    may differ from a 1-thread plain decode only by rounding (one grey level)."""
    path, plain = tcs
    with emcodec.open(path, window=WINDOW, device="cpu", threads=2) as movie:
        frames = movie.to_dask().compute(scheduler="synchronous")
    assert frames.shape == plain.shape
    assert np.abs(frames.astype(np.int64) - plain.astype(np.int64)).max() <= 1
