"""Quality metrics, defined once for the demo, the benchmark and the tests.

PSNR and SSIM are computed per frame with the data range of the whole reference movie
(max - min), then averaged over frames, so every method is scored on the same scale.
"""

from __future__ import annotations

import numpy as np


def data_range(reference: np.ndarray) -> float:
    span = float(np.max(reference)) - float(np.min(reference))
    return span if span > 0 else 1.0


def psnr_frames(reference: np.ndarray, test: np.ndarray, peak: float | None = None) -> np.ndarray:
    """PSNR of each frame in dB (inf where a frame is exact)."""
    ref = np.asarray(reference, dtype=np.float64)
    tst = np.asarray(test, dtype=np.float64)
    if ref.shape != tst.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {tst.shape}")
    peak = data_range(ref) if peak is None else peak
    mse = ((ref - tst) ** 2).reshape(len(ref), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(peak**2 / mse)


def imaged_frames(reference: np.ndarray) -> np.ndarray:
    """Which frames of a movie (n, h, w) hold an image: not one value throughout (a blank)."""
    flat = np.asarray(reference).reshape(len(reference), -1)
    imaged = flat.max(axis=1) > flat.min(axis=1)
    return imaged if imaged.any() else np.ones(len(flat), bool)


def mean_psnr(per_frame: np.ndarray, reference: np.ndarray) -> float:
    """Mean of per-frame PSNRs over the frames that hold an image.

    Blank reference frames (the beam blanked) are left out: a codec that returns them exactly
    would score infinity there and hide every other frame; the event yardstick
    (bench/temporal.py) judges blanks instead.
    """
    return float(np.mean(np.asarray(per_frame)[imaged_frames(reference)]))


def psnr(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean over the imaged frames of the per-frame PSNR (peak = max - min of the reference)."""
    ref = np.asarray(reference)
    if ref.ndim != 3:
        return float(np.mean(psnr_frames(reference, test)))
    return mean_psnr(psnr_frames(ref, test), ref)


def ssim(reference: np.ndarray, test: np.ndarray) -> float:
    """Mean over frames of scikit-image's SSIM with the reference movie's data range."""
    return float(np.mean(ssim_frames(reference, test)))


def ssim_frames(reference: np.ndarray, test: np.ndarray) -> np.ndarray:
    """scikit-image's SSIM of each frame, with the data range of the whole reference movie."""
    from skimage.metrics import structural_similarity

    ref = np.asarray(reference, dtype=np.float64)
    tst = np.asarray(test, dtype=np.float64)
    if ref.shape != tst.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {tst.shape}")
    rng = data_range(ref)
    return np.array([structural_similarity(r, t, data_range=rng) for r, t in zip(ref, tst)])
