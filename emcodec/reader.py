"""`emcodec.open`: a .tcs file as a sliceable movie that decodes only what is asked for.

`movie[100:200]` reads and decodes the groups holding those frames and, for the movie
decoder, the `window` groups on each side that their fit needs (decoders/movie.py
`decode_movie`), so the values are those of the same frames in a full decode. Frames come
back as `codec.decompress` writes them: the source's dtype, rounded and clipped to its
range, NaN at recorded bad pixels.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import InputError


class TcsMovie:
    """A .tcs file opened for reading frames; use as a context manager (or call close).

    `method`, `window`, `device` and `threads` are those of `emcodec decompress`; the decoder
    is built at the first decode, so opening a file for its metadata never imports torch.
    `cache_groups`: decoded groups kept by `group()` (least recently used dropped first).
    """

    def __init__(self, path: str | os.PathLike, *, method: str | None = None, window: int | None = None,
                 device: str = "auto", threads: int | None = None, cache_groups: int = 0,
                 warn: Callable[[str], None] | None = None):
        from .codec import DEFAULT_METHOD, DEFAULT_WINDOW, open_tcs

        if str(path) == "-":
            raise InputError("emcodec.open needs a .tcs file, not standard input")
        self.path = Path(path)
        self.method = method or DEFAULT_METHOD
        self.window = DEFAULT_WINDOW if window is None else int(window)
        self.device, self.threads = device, threads
        self._warn = warn or (lambda message: None)
        self._reader = open_tcs(self.path)
        self._decoder = None
        self._lock = threading.RLock()  # one file position and one decoder per movie
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.cache_groups = int(cache_groups)
        self.decoded_groups = 0  # groups decoded for callers (the cache's misses)

    # ------------------------------------------------------------ what the file holds

    @property
    def header(self):
        return self._reader.header

    @property
    def B(self) -> int:
        return self.header.B

    @property
    def n_groups(self) -> int:
        return self._reader.n_groups

    @property
    def shape(self) -> tuple[int, int, int]:
        h = self.header
        return (self._reader.trailer.frame_count, h.height, h.width)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.header.dtype)

    @property
    def metadata(self) -> dict:
        """The header's metadata: source name and format, pixel size (Å), frame time, ..."""
        return self.header.metadata

    @property
    def pixel_size(self) -> tuple[float, float] | None:
        """(x, y) in Å per pixel, or None when the source stated none."""
        ps = self.metadata.get("pixel_size")
        return (float(ps[0]), float(ps[1])) if ps else None

    @property
    def frame_time(self) -> float | None:
        """Seconds from one frame to the next, or None."""
        ft = self.metadata.get("frame_time")
        return float(ft) if isinstance(ft, (int, float)) and ft > 0 else None

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"<emcodec.TcsMovie {str(self.path)!r} shape={self.shape} dtype={self.dtype.name} B={self.B}>"

    # ------------------------------------------------------------ frames

    def __getitem__(self, key) -> np.ndarray:
        """Frames by index or slice along time; a tuple indexes y and x of those frames."""
        rest = ()
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        n = len(self)
        if isinstance(key, (int, np.integer)):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"frame {key} out of range for {n} frames")
            out = self.read(i, i + 1)[0]
        elif isinstance(key, slice):
            frames = np.arange(*key.indices(n))
            if not len(frames):
                return np.empty((0, *self.shape[1:]), self.dtype)[(slice(None),) + rest]
            lo, hi = int(frames.min()), int(frames.max()) + 1
            block = self.read(lo, hi)
            out = block if key.step in (None, 1) else block[frames - lo]
        else:
            raise TypeError(f"frames are indexed by an integer or a slice, not {type(key).__name__}")
        return out[(slice(None),) * (out.ndim - 2) + rest] if rest else out

    def read(self, start: int, stop: int) -> np.ndarray:
        """Frames [start, stop) decoded, reading only the groups they (and their window) need."""
        n = len(self)
        if not 0 <= start < stop <= n:
            raise IndexError(f"frames [{start}, {stop}) outside the file's [0, {n})")
        with self._lock:
            return self._decode(start, stop)

    def group(self, g: int) -> np.ndarray:
        """The decoded frames of group g, through the LRU cache of `cache_groups` groups."""
        if not 0 <= g < self.n_groups:
            raise IndexError(f"group {g} out of range for {self.n_groups} groups")
        with self._lock:
            hit = self._cache.get(g)
            if hit is not None:
                self._cache.move_to_end(g)
                return hit
            frames = self._decode(g * self.B, min((g + 1) * self.B, len(self)))
            if self.cache_groups > 0:
                self._cache[g] = frames
                while len(self._cache) > self.cache_groups:
                    self._cache.popitem(last=False)
            return frames

    def _decode(self, start: int, stop: int) -> np.ndarray:
        decoder, device = self._ready()
        out, groups = decode_range(self._reader, decoder, self.method, start, stop, device)
        self.decoded_groups += groups
        return out

    def _ready(self):
        """The decoder and device, built once (torch and the weights load here)."""
        if self._decoder is None:
            from .codec import MOVIE_METHODS, choose_decoder
            from .decoders.base import resolve_device, set_cpu_threads

            device = resolve_device(self.device)
            if device.type == "cpu":
                self.threads = set_cpu_threads(self.threads)
            decoder = choose_decoder(self.method, self.B, self._warn, window=self.window)
            if self.method in MOVIE_METHODS:
                decoder.device = device
            self._decoder, self._device = decoder, device
        return self._decoder, self._device

    # ------------------------------------------------------------ lazy array

    def to_dask(self, *, cache_groups: int | None = None):
        """A lazy dask array of the decoded movie, one chunk per group (emcodec/lazy.py)."""
        from .lazy import to_dask

        return to_dask(self.path, method=self.method, window=self.window, device=self.device,
                       threads=self.threads, cache_groups=self.cache_groups if cache_groups is None else cache_groups)

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._reader._f.close()
        self._cache.clear()

    def __enter__(self) -> "TcsMovie":
        return self

    def __exit__(self, *exc) -> bool:
        self.close()
        return False


def decode_range(reader, decoder, method: str, start: int, stop: int, device) -> tuple[np.ndarray, int]:
    """Frames [start, stop) of an open TcsReader as `codec.decompress` writes them (the
    source's dtype and range, NaN at bad pixels), and how many groups were decoded."""
    from .codec import MOVIE_METHODS, Output, _as_movie, _per_group, _restore_bad_pixels

    h, t = reader.header, reader.trailer
    output = Output(np.dtype(h.dtype), t.value_min, t.value_max)
    movie = method in MOVIE_METHODS  # its frames come converted
    if movie:
        decoded = _as_movie(reader, decoder, start, stop, output=output)
    else:
        decoded = _per_group(reader, decoder, range(start // h.B, (stop - 1) // h.B + 1), device)
    out = np.empty((stop - start, h.height, h.width), h.dtype)
    n = 0
    for g, group, x, _residual in decoded:
        first = g * h.B
        lo, hi = max(start, first), min(stop, first + group.n_valid)
        part = x[lo - first:hi - first] if movie else output.convert(x[lo - first:hi - first])
        _restore_bad_pixels(part, group, lo - first)
        out[lo - start:hi - start] = part
        n += 1
    return out, n
