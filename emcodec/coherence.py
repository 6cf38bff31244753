"""Scene cuts inside a group: where the frames stop being one scene.

A group's measurement sums B frames; if the beam is blanked, the stage jumps or the focus
changes inside it, no decoder can take the two scenes apart again. The encoder asks
`CutDetector.cuts` for the frames where a new scene starts and stores the group split
there, each part padded to B frames like a short last group (docs/format.md).

The test is cheap: a few rows of each frame, summed in blocks of 8 pixels, and the mean
squared change between consecutive frames, divided by their brightness (shot noise grows
with it). Noise and drift change every pair of frames by about the same amount; a cut
changes one pair far more than the spread of the others (significance) and by as much as
the frames' own contrast (size). After a cut, the new scene sets its own typical change.
Measured on simulated movies (128x128, 30 seeds, docs/BENCHMARKS.md "Scene cuts"): no false
cut in 4050 pairs; all cuts found at 10 or more counts per pixel, a third to a half at 0.5-2.
"""

from __future__ import annotations

from collections import deque

import numpy as np

BLOCK = 8  # pixels summed along a row: the noise of a value falls 8x, the content much less
SAMPLE_PIXELS = 1 << 15  # rows are skipped until about this many pixels per frame remain
MAX_ROW_STRIDE = 16
SIGNIFICANCE = 5.0  # robust standard deviations above the typical change
SIZE = 0.5  # and a change of at least half the two frames' variance
HISTORY = 64  # pairs of earlier groups that set the typical change


class CutDetector:
    """Finds scene cuts group by group; remembers the typical change of earlier groups."""

    def __init__(self, height: int, width: int):
        self.stride = int(np.clip(height * width // SAMPLE_PIXELS, 1, MAX_ROW_STRIDE))
        self.block = min(BLOCK, width)
        self.width = width - width % self.block
        self._history: deque[float] = deque(maxlen=HISTORY)

    def features(self, frames: np.ndarray) -> np.ndarray:
        """(frames, rows, blocks) float64 block sums of every `stride`-th row."""
        rows = np.asarray(frames)[:, :: self.stride, : self.width]
        m, r, w = rows.shape
        return rows.reshape(m, r, w // self.block, self.block).sum(axis=-1, dtype=np.float64)

    def cuts(self, frames: np.ndarray) -> list[int]:
        """Indices k (0 < k < len(frames)) where frame k starts a new scene."""
        if len(frames) < 2:
            return []
        f = self.features(frames).reshape(len(frames), -1)
        change = np.mean(np.diff(f, axis=0) ** 2, axis=1)
        mean, var = f.mean(axis=1), f.var(axis=1)
        relative = change / np.maximum(np.abs(mean[:-1]) + np.abs(mean[1:]), 1e-12)
        floor = np.sqrt(8.0 / f.shape[1])  # relative spread of a mean of squared noise
        found, start, earlier = [], 0, np.asarray(self._history)
        while start < len(change):
            pool = np.concatenate([relative[start:], earlier])
            typical = float(np.median(pool))
            spread = max(1.4826 * float(np.median(np.abs(pool - typical))), floor * typical)
            hits = [k for k in range(start, len(change))
                    if relative[k] - typical > SIGNIFICANCE * spread and change[k] > SIZE * (var[k] + var[k + 1])]
            if not hits:
                break
            found.append(hits[0] + 1)
            start, earlier = hits[0] + 1, np.zeros(0)  # a new scene: forget the old one's changes
        if found:
            self._history.clear()
        self._history.extend(relative[found[-1] if found else 0 :])
        return found


def split(n_frames: int, cuts: list[int]) -> list[tuple[int, int]]:
    """(first, count) of each part of a group of `n_frames` cut at `cuts`."""
    bounds = [0, *cuts, n_frames]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:])]
