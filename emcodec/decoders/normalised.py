"""A part's normalised measurement: blurred Y over blurred S, the masked frames' average.

No network and no torch. It is the preview's image, and the movie decoder's default first
pass: once the movie decoder's fit converged (exact gradient steps), starting it from a
TCS-DL decode instead changed its PSNR by -0.25 to +0.08 dB while costing ~80 % of the
decoding time (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np

from .. import masks as _masks

BLUR = 1.0  # px, Gaussian sigma on Y and S: the mask pattern and shot noise, softened


class NormalisedMeasurement:
    """First pass of the movie decoder without a network (`name` for the provenance)."""

    name = "measurement"
    labels = [f"first pass: Gaussian-blurred Y / blurred S (sigma {BLUR} px)"]

    def __init__(self):
        self._totals: dict = {}

    def total(self, B: int, seed: int, n: int, shape) -> np.ndarray:
        """Blurred mask count S of a part with n real frames (cached: one per n and shape)."""
        from .movie import effective_masks

        key = (B, seed, n, tuple(shape))
        if key not in self._totals:
            self._totals[key] = blur(effective_masks(_masks.make_masks(seed, B, 0, 0, *shape), n).sum(0))
        return self._totals[key]

    def image(self, y: np.ndarray, B: int, seed: int, n: int) -> np.ndarray:
        """The part's average frame, from its measurement alone."""
        return blur(y) / np.maximum(self.total(B, seed, n, y.shape), 1e-3)


def blur(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(np.asarray(img, np.float32), (0, 0), BLUR, borderType=cv2.BORDER_REFLECT)
