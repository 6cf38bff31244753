"""A .tcs file as a lazy dask array: one chunk per group of B frames.

The movie decoder fits each group against its `window` neighbours on each side. A chunk's
task therefore reads those neighbours' measurements itself (`TcsMovie.group` ->
`decode_movie` reads groups g-K .. g+K): that is the overlap of `map_overlap`, taken from
the file rather than from neighbouring chunks, because a neighbour's measurement is one
frame while its decoded chunk is B frames. Each chunk equals the same frames of a plain
decode (bit-identical at the same --threads).

Tasks name the file and the decoding options, not an open reader, so the graph pickles to
a `distributed` worker; each process opens the file once (`shared`) and decodes one chunk
at a time through it (torch uses the threads itself).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import numpy as np

from .errors import MissingDependencyError


@dataclass(frozen=True)
class Spec:
    """What a chunk task needs to find its movie in any process."""

    path: str
    method: str
    window: int
    device: str
    threads: int | None
    cache_groups: int
    stamp: tuple  # (size, mtime_ns): a rewritten file is a new movie, not a cached one


_open: dict[Spec, object] = {}
_open_lock = threading.Lock()


def shared(spec: Spec):
    """This process's TcsMovie for `spec`, opened on first use."""
    from .reader import TcsMovie

    with _open_lock:
        movie = _open.get(spec)
        if movie is None:
            movie = _open[spec] = TcsMovie(spec.path, method=spec.method, window=spec.window, device=spec.device,
                                           threads=spec.threads, cache_groups=spec.cache_groups)
        return movie


def release() -> None:
    """Close every movie this process holds open for chunk tasks."""
    with _open_lock:
        for movie in _open.values():
            movie.close()
        _open.clear()


def decode_chunk(spec: Spec, g: int) -> np.ndarray:
    """Chunk g: the decoded frames of group g."""
    return shared(spec).group(g)


def require_dask():
    try:
        import dask.array as da
    except ImportError:
        raise MissingDependencyError("lazy arrays need dask: pip install 'emcodec[dask]'") from None
    return da


def to_dask(path, *, method: str | None = None, window: int | None = None, device: str = "auto",
            threads: int | None = None, cache_groups: int = 0):
    """A dask array (frames, height, width) of the decoded movie; nothing is decoded yet."""
    from .codec import DEFAULT_METHOD, DEFAULT_WINDOW, open_tcs

    da = require_dask()
    from dask.base import tokenize

    path = os.path.abspath(os.fspath(path))
    reader = open_tcs(path)
    try:
        h, n = reader.header, reader.trailer.frame_count
        n_groups = reader.n_groups
    finally:
        reader._f.close()
    st = os.stat(path)
    spec = Spec(path, method or DEFAULT_METHOD, DEFAULT_WINDOW if window is None else int(window), device,
                threads, int(cache_groups), (st.st_size, st.st_mtime_ns))
    sizes = tuple(min(h.B, n - g * h.B) for g in range(n_groups))
    name = "emcodec-decode-" + tokenize(spec)
    graph = {(name, g, 0, 0): (decode_chunk, spec, g) for g in range(n_groups)}
    return da.Array(graph, name, chunks=(sizes, (h.height,), (h.width,)), dtype=np.dtype(h.dtype))
