"""The preview decoder: a watchable motion-compensated movie at scrolling speed.

For browsing a long acquisition, not for measuring: each part's image is its normalised
measurement (blurred Y over blurred S, the masked frames' average), and its frames are that
image moved along the motion to the neighbouring parts (OpenCV DIS, ultrafast preset, at
half resolution). No first pass, no fit: no torch work at all. It reuses the movie
decoder's window and trajectory, so the frames move inside a group as in `movie`.
"""

from __future__ import annotations

import numpy as np

from .. import motion
from .movie import MovieDecoder, Unit, region
from .normalised import NormalisedMeasurement

FLOW_SCALE = 2  # motion at 1/FLOW_SCALE resolution: drift and slow deformation are smooth


class PreviewDecoder(MovieDecoder):
    """Normalised measurements moved along the motion between neighbouring parts."""

    name = "preview"
    uses_torch = False

    def __init__(self, device="cpu"):
        super().__init__(first_pass=None, window=1, iterations=0, preset="ultrafast", device=device)
        self.normalised = NormalisedMeasurement()

    @property
    def labels(self) -> list[str]:
        return [f"preview: blurred Y/S per part moved along {motion.LIBRARY} (ultrafast, 1/{FLOW_SCALE} scale); "
                "not for measurement"]

    def prepare(self, unit: Unit, B: int, seed: int, progress=None) -> None:
        unit.mean = self.normalised.image(unit.y, B, seed, unit.n)

    def estimate(self, a: Unit, b: Unit) -> np.ndarray:
        import cv2

        lo, hi = np.percentile(np.stack([a.mean, b.mean]), [0.5, 99.5])
        h, w = a.mean.shape
        small = [cv2.resize(m, (w // FLOW_SCALE, h // FLOW_SCALE), interpolation=cv2.INTER_AREA)
                 for m in (a.mean, b.mean)]
        flow = motion.estimate_flow(*small, float(lo), float(hi), self.preset)
        return cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) * FLOW_SCALE

    def reconstruct(self, unit: Unit, neighbours: list[Unit], masks, B: int,
                    progress=None, output=None) -> np.ndarray:
        prev = next((u for u in neighbours if u.index == unit.index - 1), None)
        nxt = next((u for u in neighbours if u.index == unit.index + 1), None)
        h, w = unit.mean.shape
        whole = region(unit, 0, h, 0, w, 0, {u.index for u in (prev, nxt) if u is not None})
        traj = self.trajectory(whole, prev, nxt)
        base = motion.grid(*unit.mean.shape)
        frames = np.stack([self._warp(unit.mean, traj[k], base) for k in range(unit.n)])
        return frames if output is None else output.convert(frames)

