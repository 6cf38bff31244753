"""A part's normalised measurement: blurred Y over blurred S, the masked frames' average.

No network and no torch. It is the preview's image, and the movie decoder's default first
pass: once the movie decoder's fit converged (exact gradient steps), starting it from a
TCS-DL decode instead changed its PSNR by -0.25 to +0.08 dB while costing ~80 % of the
decoding time (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import numpy as np

BLUR = 1.0  # px, Gaussian sigma on Y and S: the mask pattern and shot noise, softened


class NormalisedMeasurement:
    """First pass of the movie decoder without a network (`name` for the provenance)."""

    name = "measurement"
    labels = [f"first pass: Gaussian-blurred Y / blurred S (sigma {BLUR} px)"]

    def __init__(self):
        self._totals: dict = {}

    def total(self, B: int, seed: int, shape) -> np.ndarray:
        """Blurred mask count S of a part (cached per shape). A padded part's last frame
        carries the padded positions' masks, so S is the sum of all B masks for any n;
        made strip by strip (a 4096 x 4096 frame's 30 masks at once are 500 MB)."""
        from .measurement import mask_sum

        key = (B, seed, tuple(shape))
        if key not in self._totals:
            self._totals[key] = blur(mask_sum(seed, B, *shape))
        return self._totals[key]

    def image(self, y: np.ndarray, B: int, seed: int, n: int) -> np.ndarray:
        """The part's average frame, from its measurement alone."""
        return blur(y) / np.maximum(self.total(B, seed, y.shape), 1e-3)


def blur(img: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(np.asarray(img, np.float32), (0, 0), BLUR, borderType=cv2.BORDER_REFLECT)
