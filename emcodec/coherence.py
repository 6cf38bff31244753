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
Measured on simulated movies (128x128, 30 seeds; benchmarks/scene_cuts.py, docs/BENCHMARKS.md
"Scene cuts"): no false cut in 4050 frame pairs; the cut found at 29/30 movies at 10 counts
per pixel per frame and all at 50 and more, but only 5-14/30 at 0.5-2, where one frame
pair's change drowns in the shot noise of the few sampled rows.
"""

from __future__ import annotations

from collections import deque

import numpy as np

BLOCK = 8  # pixels summed along a row (a power of 2): the noise of a value falls 8x, the content much less
SAMPLE_PIXELS = 1 << 12  # rows are skipped until about this many pixels per frame remain
MAX_ROW_STRIDE = 64  # 2048x2048: 32 rows, 8192 values per frame
SIGNIFICANCE = 5.0  # robust standard deviations above the typical change
SIZE = 0.5  # and a change of at least half the two frames' variance
HISTORY = 64  # pairs of earlier groups that set the typical change


class CutDetector:
    """Finds scene cuts group by group; remembers the typical change of earlier groups."""

    def __init__(self, height: int, width: int):
        self.stride = min(max(height * width // SAMPLE_PIXELS, 1), MAX_ROW_STRIDE)  # plain ints: np.clip costs 30 us
        self.block = min(BLOCK, 1 << (width.bit_length() - 1))  # a power of 2 no wider than the frame
        self.width = width - width % self.block
        self._history: deque[float] = deque(maxlen=HISTORY)

    def features(self, frames: np.ndarray) -> np.ndarray:
        """(frames, values) float64 block sums of every `stride`-th row.

        Summed pairwise (1+1, 2+2, 4+4 columns): 2x faster than np.add.reduceat here.
        """
        f = np.asarray(frames)[:, :: self.stride, : self.width]
        if self.block > 1:  # the first pairs straight from the counts: no full-size float copy
            f = np.add(f[..., 0::2], f[..., 1::2], dtype=np.float32)
        else:
            f = f.astype(np.float32)
        while f.shape[-1] > self.width // self.block:
            f = f[..., 0::2] + f[..., 1::2]
        return f.reshape(len(f), -1).astype(np.float64)

    def cuts(self, frames: np.ndarray) -> list[int]:
        """Indices k (0 < k < len(frames)) where frame k starts a new scene."""
        if len(frames) < 2:
            return []
        f = self.features(frames)
        n = f.shape[1]
        d = f[1:] - f[:-1]
        change = np.einsum("ij,ij->i", d, d) / n
        mean = f.sum(axis=1) / n
        var = np.einsum("ij,ij->i", f, f) / n - mean * mean
        relative = (change / np.maximum(np.abs(mean[:-1]) + np.abs(mean[1:]), 1e-12)).tolist()
        size = (SIZE * (var[:-1] + var[1:])).tolist()
        change = change.tolist()
        floor = (8.0 / n) ** 0.5  # relative spread of a mean of n squared noise values
        found, start, earlier = [], 0, list(self._history)
        while start < len(change):  # plain Python: a few dozen numbers, where numpy calls cost more
            pool = sorted(relative[start:] + earlier)
            typical = _median(pool)
            spread = max(1.4826 * _median(sorted(abs(v - typical) for v in pool)), floor * typical)
            cut = next((k for k in range(start, len(change))
                        if relative[k] - typical > SIGNIFICANCE * spread and change[k] > size[k]), None)
            if cut is None:
                break
            found.append(cut + 1)
            start, earlier = cut + 1, []  # a new scene: forget the old one's changes
        if found:
            self._history.clear()
        self._history.extend(relative[found[-1] if found else 0 :])
        return found


def _median(ordered: list[float]) -> float:
    m = len(ordered) // 2
    return ordered[m] if len(ordered) % 2 else 0.5 * (ordered[m - 1] + ordered[m])


def split(n_frames: int, cuts: list[int]) -> list[tuple[int, int]]:
    """(first, count) of each part of a group of `n_frames` cut at `cuts`."""
    bounds = [0, *cuts, n_frames]
    return [(a, b - a) for a, b in zip(bounds, bounds[1:])]
