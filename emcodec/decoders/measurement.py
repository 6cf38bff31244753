"""The forward model on whole frames in numpy (no torch): S, sum_k C_k x_k, and the
self-check residual. Torch-free so that the preview decoder and `info` stay light."""

from __future__ import annotations

import numpy as np

from .. import masks as _masks

STRIP_BITS = 1 << 22  # mask bits made at once when a whole-frame quantity is needed


def _row_strips(n_frames: int, height: int, width: int):
    """Row ranges small enough that one strip of masks stays at STRIP_BITS."""
    rows = max(1, STRIP_BITS // (n_frames * width))
    for y0 in range(0, height, rows):
        yield y0, min(rows, height - y0)


def mask_sum(seed: int, n_frames: int, height: int, width: int) -> np.ndarray:
    """S = sum_k C_k over a whole frame (int32), made strip by strip to bound memory."""
    s = np.empty((height, width), dtype=np.int32)
    for y0, rows in _row_strips(n_frames, height, width):
        s[y0 : y0 + rows] = _masks.make_masks(seed, n_frames, y0, 0, rows, width).sum(0)
    return s


def apply_masks(x: np.ndarray, seed: int) -> np.ndarray:
    """The measurement sum_k C_k x_k of frames x (B, H, W), in float64 (exact for counts)."""
    n_frames, height, width = x.shape
    y = np.empty((height, width), dtype=np.float64)
    for y0, rows in _row_strips(n_frames, height, width):
        m = _masks.make_masks(seed, n_frames, y0, 0, rows, width)
        y[y0 : y0 + rows] = np.where(m, x[:, y0 : y0 + rows], 0).sum(0, dtype=np.float64)
    return y


def measurement_residual(x: np.ndarray, y: np.ndarray, seed: int) -> float:
    """RMS(sum_k C_k x_k - Y) / RMS(Y): how far decoded frames are from explaining Y.

    Noise makes this non-zero even for a perfect decode; it is a self-check, not a quality score.
    """
    y = np.asarray(y, dtype=np.float64)
    diff = apply_masks(np.asarray(x), seed) - y
    scale = np.sqrt(np.mean(y**2))
    return float(np.sqrt(np.mean(diff**2)) / scale) if scale > 0 else float(np.sqrt(np.mean(diff**2)))
