"""An in-memory array as a movie, so `emcodec.compress(array)` shares the file pipeline.

Not in the FORMATS registry (it has no extension): `emcodec.api` builds one and hands it to
`codec.compress`, which accepts an open StackReader in place of a path.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .base import SUPPORTED_DTYPES, StackInfo, StackReader


class ArrayReader(StackReader):
    """Frames (n, H, W) of an array (a 2-D image is one frame); chunks are views of it."""

    def __init__(self, frames, *, pixel_size: float | tuple[float, float] | None = None,
                 frame_time: float | None = None, name: str = "array", metadata: dict | None = None):
        arr = np.asarray(frames)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or 0 in arr.shape:
            raise InputError(f"{name}: a movie is a (frames, height, width) array, got shape {arr.shape}")
        dtype = np.dtype(arr.dtype.name)  # native byte order
        if dtype == np.float16:
            dtype = np.dtype(np.float32)
        if dtype not in SUPPORTED_DTYPES:
            supported = ", ".join(d.name for d in SUPPORTED_DTYPES)
            raise InputError(f"{name}: unsupported pixel type {arr.dtype.name} (supported: {supported}); "
                             "convert first, e.g. array.astype(np.float32)")
        if arr.dtype != dtype:
            arr = arr.astype(dtype)
        self._arr = arr
        super().__init__(StackInfo(n_frames=arr.shape[0], height=arr.shape[1], width=arr.shape[2], dtype=dtype,
                                   pixel_size=_pixel_size(pixel_size, name), source_format="array",
                                   source_name=name, frame_time=_frame_time(frame_time, name),
                                   metadata=dict(metadata) if metadata else None))

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        return self._arr[start:stop], True

    def close(self) -> None:
        pass


def _pixel_size(value, name: str) -> tuple[float, float] | None:
    """One size (square pixels) or (x, y), in Å; positive and finite."""
    if value is None:
        return None
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, float, np.number)) and math.isfinite(v) and v > 0
                                 for v in pair):
        raise InputError(f"{name}: pixel_size is one positive size or (x, y) in Å, got {value!r}")
    return float(pair[0]), float(pair[1])


def _frame_time(value, name: str) -> float | None:
    if value is None:
        return None
    if not isinstance(value, (int, float, np.number)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name}: frame_time is a positive number of seconds, got {value!r}")
    return float(value)
