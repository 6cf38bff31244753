"""The forward model on whole frames in numpy (no torch): S, sum_k C_k x_k, and the
self-check residual. Torch-free so that the preview decoder and `info` stay light."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Noise:
    """What a measurement pixel's noise should be: per frame, variance gain * (x - offset) +
    read_noise^2 (the law the quantiser is built on; at least the rounding of integer
    frames), plus the quantiser's rounding of the sum (`quantizer`, None: stored exactly)."""

    gain: float
    offset: float = 0.0
    read_noise: float = 0.0
    integer: bool = True
    quantizer: object | None = None


@dataclass(frozen=True)
class SelfCheck:
    """A decode's self-check: `residual` RMS(sum_k C_k x_k - Y) / RMS(Y), and `noise_ratio`
    the same RMS over the RMS noise that the measurement should hold (None without a noise
    model). A decode that explains its measurement leaves about the noise: ratio near 1."""

    residual: float
    noise_ratio: float | None = None

    def worst(self, other: "SelfCheck") -> "SelfCheck":
        ratios = [r for r in (self.noise_ratio, other.noise_ratio) if r is not None]
        return SelfCheck(max(self.residual, other.residual), max(ratios) if ratios else None)


def self_check(x: np.ndarray, y: np.ndarray, seed: int, B: int, noise: Noise | None = None) -> SelfCheck:
    """The self-check of a part's decoded real frames x (n <= B, the encoder repeated the
    last to pad to B) against its stored measurement y.

    The expected variance of a pixel is taken from y itself (an unbiased estimate of the
    sum's mean), not from the decode, so a decode that is wrong cannot excuse its residual.
    A padded frame adds its noise coherently: e_k^2 weights it, not e_k.
    """
    x = np.asarray(x)  # the writer's dtype (uint16 frames of a 4096 x 4096 group: not copied to float)
    y = np.asarray(y, dtype=np.float64)
    n, height, width = x.shape
    sq, var = 0.0, 0.0
    for y0, rows in _row_strips(B, height, width):
        m = _masks.make_masks(seed, B, y0, 0, rows, width).astype(np.float32)
        if n < B:
            m[n - 1] += m[n:].sum(0)
        m = m[:n]
        part = y[y0 : y0 + rows]
        pred = np.einsum("khw,khw->hw", m, x[:, y0 : y0 + rows], dtype=np.float64)
        sq += float(np.square(pred - part).sum())
        if noise is not None:
            var += float(expected_variance(part, m.sum(0, dtype=np.float64), np.square(m).sum(0, dtype=np.float64),
                                           noise).sum())
    size = height * width
    scale = np.sqrt(np.mean(y**2))
    rms = np.sqrt(sq / size)
    residual = float(rms / scale) if scale > 0 else float(rms)
    if noise is None:
        return SelfCheck(residual)
    expected = np.sqrt(var / size)
    ratio = float(rms / expected) if expected > 0 else (0.0 if rms == 0 else float("inf"))
    return SelfCheck(residual, ratio)


def expected_variance(y: np.ndarray, s: np.ndarray, q: np.ndarray, noise: Noise) -> np.ndarray:
    """Per pixel: the variance a measurement y of s frame-samples (q = sum of squared mask
    weights) should have under `noise` (float64; 0 where no frame was sampled)."""
    level = np.divide(y, s, out=np.zeros_like(y), where=s > 0) - noise.offset  # per frame, above the offset
    # integer frames cannot be told apart more finely than their rounding (1/12), even where dark
    var = q * np.maximum(noise.gain * np.maximum(level, 0.0) + noise.read_noise**2, 1 / 12 if noise.integer else 0.0)
    quantizer = noise.quantizer
    if quantizer is not None:  # each code stands for a run of `width` integer Ys, stored as its centre
        g = quantizer.gain
        arg = np.maximum(g * y + quantizer._shift, 0.375 * g * g)
        width = quantizer.step * np.sqrt(arg)
        var += np.maximum(width * width - 1.0, 0.0) / 12
    return var
