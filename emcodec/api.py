"""The Python API on arrays and files: `emcodec.compress`, `emcodec.decompress`, `emcodec.open`.

Thin on purpose: arrays become a StackReader (formats/array.py) and files go through the
same pipelines as the command line (codec.py), so the API and the CLI cannot disagree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Callable, overload

import numpy as np

from .codec import DEFAULT_METHOD, DEFAULT_WINDOW, CompressResult
from .encoder import DEFAULT_B
from .reader import TcsMovie

__all__ = ["compress", "decompress", "open"]

def compress(
    source: str | os.PathLike | np.ndarray,
    out: str | os.PathLike | BinaryIO | None = None,
    *,
    B: int = DEFAULT_B,
    pixel_size: float | tuple[float, float] | None = None,
    frame_time: float | None = None,
    name: str = "array",
    force: bool = False,
    **options,
) -> CompressResult:
    """Compress a movie file or an array (frames, height, width) into a .tcs file.

    `out`: the .tcs path (a file source defaults to its name with .tcs; an array needs one),
    `-` for stdout, or an open binary file. For an array, `pixel_size` (Å per pixel, one
    value or (x, y)), `frame_time` (s) and `name` are recorded in the header as a file's
    would be. Other keywords are those of `codec.compress` (seed, level, quantize, gain,
    offset, read_noise, split_cuts, read_options, verify_written, progress, warn).

    >>> emcodec.compress(frames, "movie.tcs", B=10, pixel_size=0.5)   # doctest: +SKIP
    """
    from .codec import compress as run
    from .errors import InputError

    if isinstance(source, (str, os.PathLike)):
        if pixel_size is not None or frame_time is not None:
            raise InputError("pixel_size and frame_time are read from a file; give them with an array")
        if out is None:
            from .formats.options import default_output

            out = default_output(os.fspath(source), bool(getattr(options.get("read_options"), "series", False)))
        return run(source, out, B=B, force=force, **options)
    from .formats.array import ArrayReader

    if out is None:
        raise InputError("compressing an array needs out= (a .tcs path, '-' or an open binary file)")
    reader = ArrayReader(source, pixel_size=pixel_size, frame_time=frame_time, name=name)
    return run(reader, out, B=B, force=force, **options)


@overload
def decompress(source: str | os.PathLike, out: None = None, **kw) -> np.ndarray: ...
@overload
def decompress(source: str | os.PathLike, out: str | os.PathLike | bool, **kw) -> Path: ...


def decompress(
    source: str | os.PathLike,
    out: str | os.PathLike | bool | None = None,
    *,
    method: str = DEFAULT_METHOD,
    frames: str | slice | tuple[int, int] | None = None,
    window: int = DEFAULT_WINDOW,
    device: str = "auto",
    threads: int | None = None,
    force: bool = False,
    warn: Callable[[str], None] | None = None,
    **options,
) -> np.ndarray | Path:
    """Decode a .tcs file: to an array (frames, height, width) in the source's dtype, or,
    with `out`, into a TIFF/MRC/zarr/HDF5 file (returns its path; a `.emcodec.json`
    self-check is written beside it). `out=True`: the default name beside the source,
    `<name>.decoded.<source extension>` (what the command line writes without -o).

    `frames`: "A:B", (A, B) or slice(A, B): only those frames (and the groups their decode
    needs). Other keywords are those of `codec.decompress` (salvage, missing, progress, ...).
    """
    if out is not None and out is not False:
        from .codec import decompress as run

        spec = frames if frames is None or isinstance(frames, str) else "%s:%s" % _bounds(frames)
        return run(source, None if out is True else out, method=method, frames=spec, window=window, device=device, threads=threads,
                   force=force, warn=warn, **options)
    if options:
        raise TypeError(f"decompress to an array takes no {', '.join(sorted(options))}")
    with TcsMovie(source, method=method, window=window, device=device, threads=threads, warn=warn) as movie:
        if frames is None:
            return movie[:]
        if isinstance(frames, str):
            from .codec import parse_frames

            return movie.read(*parse_frames(frames, len(movie)))
        return movie[frames if isinstance(frames, slice) else slice(*frames)]


def _bounds(frames) -> tuple:
    if isinstance(frames, slice):
        if frames.step not in (None, 1):
            raise ValueError("frames: a slice with a step is not a frame range")
        return ("" if frames.start is None else frames.start, "" if frames.stop is None else frames.stop)
    a, b = frames
    return a, b


def open(path: str | os.PathLike, *, method: str = DEFAULT_METHOD, window: int = DEFAULT_WINDOW,  # noqa: A001
         device: str = "auto", threads: int | None = None, cache_groups: int = 0,
         warn: Callable[[str], None] | None = None) -> TcsMovie:
    """Open a .tcs file as a lazy movie: `len`, `shape`, `dtype`, `metadata`, `pixel_size`,
    `frame_time`; `movie[100:200]` decodes only the groups it needs; `movie.to_dask()`.

    >>> with emcodec.open("movie.tcs") as movie:                      # doctest: +SKIP
    ...     part = movie[100:200]
    """
    return TcsMovie(path, method=method, window=window, device=device, threads=threads,
                    cache_groups=cache_groups, warn=warn)
