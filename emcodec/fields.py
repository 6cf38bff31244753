"""Checks of header fields that a checksum cannot vouch for (a crafted file, a buggy writer).

The CRCs prove the bytes are as written, not that the writer wrote sense. Everything a
decoder later relies on is checked here when the file is read, so a bad value is one
ContainerError naming the field, never a TypeError or OverflowError deep inside.
"""

from __future__ import annotations

import math

import numpy as np

from .errors import ContainerError
from .quantize import MAX_DETECTOR, MIN_GAIN

MAX_SIDE = 1 << 20  # the mask counter holds y and x in 20 bits (docs/format.md, Masks)
MAX_OFFSET = 1 << 62  # a stored offset plus an unsigned 32-bit value stays inside int64


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_shape(height: int, width: int, density: float) -> None:
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise ContainerError(f"header is corrupt (frame size {height} x {width} is out of range)")
    if not (math.isfinite(density) and 0 < density < 1):
        raise ContainerError(f"header is corrupt (mask density {density} is out of range)")


def check_metadata(meta: dict) -> None:
    """The metadata keys emcodec reads back have the types it writes (unknown keys pass)."""
    def bad(key):
        raise ContainerError(f"header metadata field {key!r} is invalid: the file is corrupt")

    ps = meta.get("pixel_size")
    if ps is not None and not (isinstance(ps, list) and len(ps) == 2 and all(_finite(v) and v > 0 for v in ps)):
        bad("pixel_size")
    for key in ("source_name", "source_format", "pixel_unit", "quantize", "scene_cuts", "encoder", "mask_scheme"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            bad(key)
    ft = meta.get("frame_time")
    if ft is not None and not (_finite(ft) and ft > 0):
        bad("frame_time")
    for key in ("source_extra", "original_metadata"):
        if meta.get(key) is not None and not isinstance(meta[key], dict):
            bad(key)
    noise = meta.get("detector_noise")  # a lossless file's detector noise, for the self-check
    if noise is not None and not (isinstance(noise, dict) and all(_finite(noise.get(k)) for k in
                                                                  ("gain", "offset", "read_noise"))
                                  and MIN_GAIN <= noise["gain"] <= MAX_DETECTOR
                                  and abs(noise["offset"]) <= MAX_DETECTOR
                                  and 0 <= noise["read_noise"] <= MAX_DETECTOR):
        bad("detector_noise")


def check_value_range(vmin: float, vmax: float, dtype: str) -> None:
    """The trailer's value range: ordered, not NaN, and inside the input dtype's range."""
    if math.isnan(vmin) or math.isnan(vmax) or vmin > vmax:
        raise ContainerError("trailer is corrupt (value range is not a range)")
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        if vmin < info.min or vmax > info.max:
            raise ContainerError(f"trailer is corrupt (value range outside {dtype})")


def check_record(index: int, code_kind: str, offset: int, header_dtype: str, quantised: bool) -> None:
    """A part's stored type agrees with the header: float input stored as floats, integers
    (or quantiser codes) as unsigned integers plus a bounded offset."""
    want_float = np.dtype(header_dtype).kind == "f" and not quantised
    if (code_kind == "f") != want_float or abs(offset) > MAX_OFFSET or (want_float and offset):
        raise ContainerError(f"group {index} record is corrupt (stored type does not match the header)")


def check_measurement(y: np.ndarray, B: int, vmin: float, vmax: float, index: int) -> None:
    """A measurement must be a sum of B values within the trailer's range (with slack for the
    quantiser's rounding); a range that cannot explain it (crafted) is refused."""
    lo, hi = B * min(vmin, 0.0), B * max(vmax, 0.0)
    slack = 0.05 * (hi - lo) + 64 + 4 * math.sqrt(max(abs(lo), abs(hi)))
    y_lo, y_hi = float(np.min(y)), float(np.max(y))
    if not (math.isfinite(y_lo) and math.isfinite(y_hi)) or y_lo < lo - slack or y_hi > hi + slack:
        raise ContainerError(f"group {index} measurement is outside the value range in the trailer: "
                             "the file is inconsistent")
