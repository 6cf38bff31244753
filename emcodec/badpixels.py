"""Non-finite input pixels (dead or hot pixels as NaN / inf in float movies).

One NaN in a frame would make the sum of B frames NaN there and every decoder's output NaN
around it, so the encoder fills such pixels before summing and records where they were: a
bad-pixel map per stored part (pixels non-finite in any of its frames). The decoder writes
NaN there again (docs/format.md, version 3).
"""

from __future__ import annotations

import numpy as np
import zstandard

MAX_MAP_OVERHEAD = 1 << 16  # zstd framing beyond the packed bits, for the length check


def find(frames: np.ndarray) -> np.ndarray | None:
    """Per-frame non-finite pixels (n, H, W) of float frames, or None when all are finite.

    One float64 sum of the group is the cheap test: it is finite exactly when every value is.
    """
    if frames.dtype.kind != "f":
        return None
    with np.errstate(invalid="ignore", over="ignore"):
        if np.isfinite(np.add.reduce(frames, axis=None, dtype=np.float64)):
            return None
    return ~np.isfinite(frames)


def fill(frames: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """A copy with every pixel that is bad in any frame set, in each frame, to that frame's
    mean over the good pixels (a neutral value that keeps the measurement finite)."""
    union = bad.any(axis=0)
    out = np.array(frames, dtype=frames.dtype, copy=True)
    good = ~union
    for k in range(len(out)):
        values = out[k][good]
        out[k][union] = values.mean(dtype=np.float64) if values.size else 0.0
    return out


def pack(bad_map: np.ndarray, level: int = 3) -> bytes:
    """A (H, W) bool map as zstd-compressed bits (row-major, most significant bit first)."""
    return zstandard.ZstdCompressor(level=level).compress(np.packbits(bad_map.reshape(-1)).tobytes())


def max_packed(shape: tuple[int, int]) -> int:
    """The largest stored map a frame of this shape can need (bounds the record's length field)."""
    return (shape[0] * shape[1] + 7) // 8 + (shape[0] * shape[1] >> 7) + MAX_MAP_OVERHEAD


def unpack(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """The map stored by `pack`; raises ValueError when the bytes are not one."""
    n = shape[0] * shape[1]
    try:
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=(n + 7) // 8)
    except zstandard.ZstdError as exc:
        raise ValueError(f"bad-pixel map cannot be decompressed: {exc}") from None
    if len(raw) != (n + 7) // 8:
        raise ValueError("bad-pixel map has the wrong length")
    return np.unpackbits(np.frombuffer(raw, np.uint8), count=n).astype(bool).reshape(shape)


def restore(frames: np.ndarray, bad_map: np.ndarray | None) -> np.ndarray:
    """Decoded float frames with NaN written back at the map's pixels (in place)."""
    if bad_map is not None and frames.dtype.kind == "f":
        frames[:, bad_map] = np.nan
    return frames
