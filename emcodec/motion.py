"""Motion between the groups of a movie, and warping along it (OpenCV).

Optical flow is OpenCV's DIS (Kroeger et al. 2016): dense, local (not only a global shift),
sub-pixel through its variational refinement, and ~50 ms for a 512x512 pair on one core, so
a flow per pair of neighbouring groups costs little next to the decode. Flows follow
OpenCV's convention: a float32 (H, W, 2) field of (dx, dy) with a(p) ~ b(p + flow(p)).
"""

from __future__ import annotations

import numpy as np

try:
    import cv2
except ImportError:  # pragma: no cover - the decode extra installs it
    cv2 = None

from .errors import MissingDependencyError

LIBRARY = f"opencv {cv2.__version__} DIS optical flow" if cv2 is not None else "opencv (missing)"
PRESET = "medium"  # DIS preset
# Chosen on simulator movies with known drift and deformation at 1, 10, 100 counts/px/frame
# (benchmarks/movie_decoder.py --flow-only): against the preset's smoothness (alpha 20, 5
# refinement steps), the median error fell from 0.44 to 0.25 px (drift, 1 count) and 1.74 to
# 1.02 px (deformation, 1 count). Larger patches (12, 16 px) lowered the median error further
# but cost 2-4 dB of decoded PSNR on drifting movies (worse flow near the edges).
SMOOTHNESS = 200.0
REFINEMENT_STEPS = 10


def require_cv2():
    if cv2 is None:
        raise MissingDependencyError("motion estimation needs OpenCV: pip install opencv-python-headless")
    return cv2


def to_uint8(img: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """8-bit image of `img` over [lo, hi]: DIS works on 8-bit grey levels."""
    scale = 255.0 / (hi - lo) if hi > lo else 1.0
    return np.clip((img - lo) * scale + 0.5, 0, 255).astype(np.uint8)


def estimate_flow(a: np.ndarray, b: np.ndarray, lo: float, hi: float, preset: str = PRESET) -> np.ndarray:
    """Dense flow from image a to image b (both float, the same range [lo, hi])."""
    cv = require_cv2()
    presets = {"fast": cv.DISOPTICAL_FLOW_PRESET_FAST, "medium": cv.DISOPTICAL_FLOW_PRESET_MEDIUM,
               "ultrafast": cv.DISOPTICAL_FLOW_PRESET_ULTRAFAST}
    dis = cv.DISOpticalFlow_create(presets[preset])
    if preset == "medium":  # a smoother refinement: first-pass means are noisy
        dis.setVariationalRefinementAlpha(SMOOTHNESS)
        dis.setVariationalRefinementIterations(REFINEMENT_STEPS)
    return dis.calc(to_uint8(a, lo, hi), to_uint8(b, lo, hi), None)


def grid(height: int, width: int) -> np.ndarray:
    """Pixel coordinates (x, y) as a float32 (H, W, 2) map, the identity for `warp`."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.dstack([xs, ys])


def warp(img: np.ndarray, flow: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """img sampled at p + flow(p) (bilinear, edges replicated): brings b into a's grid."""
    cv = require_cv2()
    base = grid(*img.shape[:2]) if base is None else base
    return cv.remap(np.ascontiguousarray(img, dtype=np.float32), base + flow, None, cv.INTER_LINEAR,
                    borderMode=cv.BORDER_REPLICATE)


def compose(first: np.ndarray, second: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """The flow of following `first`, then `second` (defined on first's target grid)."""
    return first + warp(second, first, base)


class HalfFlow:
    """A flow kept at half resolution in float16: an eighth of the bytes of the float32 field
    (at 4096 x 4096 a window's 14 flows are 1.9 GB in float32, 235 MB so). Little is lost:
    DIS's medium preset estimates at half resolution (finest scale 1) and upsamples
    bilinearly; the 2 x 2 mean of that field is the field it upsampled, and `full` upsamples
    it the same way, on any crop (the same values whichever tiles ask)."""

    def __init__(self, flow: np.ndarray):
        h, w = flow.shape[:2]
        even = np.pad(flow, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        self.data = even.reshape(even.shape[0] // 2, 2, even.shape[1] // 2, 2, 2).mean((1, 3), dtype=np.float32)
        self.data = self.data.astype(np.float16)
        self.shape = (h, w)

    def max_abs(self, percentile: float = 100.0) -> float:
        """The largest displacement component (bilinear values never exceed it), or that
        percentile of them."""
        if not self.data.size:
            return 0.0
        a = np.abs(self.data.astype(np.float32))
        return float(a.max() if percentile >= 100 else np.percentile(a, percentile))

    def full(self, r0: int = 0, r1: int | None = None, c0: int = 0, c1: int | None = None) -> np.ndarray:
        """The float32 field on rows r0:r1, columns c0:c1 of the full grid (inside it)."""
        cv = require_cv2()
        r1 = self.shape[0] if r1 is None else r1
        c1 = self.shape[1] if c1 is None else c1
        h2, w2 = self.data.shape[:2]
        i0, i1 = max(0, (r0 - 1) // 2), min(h2, (r1 - 1) // 2 + 2)
        j0, j1 = max(0, (c0 - 1) // 2), min(w2, (c1 - 1) // 2 + 2)
        src = self.data[i0:i1, j0:j1].astype(np.float32)
        # full-grid pixel p sits at (p - 0.5) / 2 on the half grid: 1/4 steps, exact in remap's 1/32 px
        ys = (np.arange(r0, r1, dtype=np.float32) - 0.5) / 2 - i0
        xs = (np.arange(c0, c1, dtype=np.float32) - 0.5) / 2 - j0
        mx = np.ascontiguousarray(np.broadcast_to(xs[None, :], (r1 - r0, c1 - c0)))
        my = np.ascontiguousarray(np.broadcast_to(ys[:, None], (r1 - r0, c1 - c0)))
        return cv.remap(src, mx, my, cv.INTER_LINEAR, borderMode=cv.BORDER_REPLICATE)


def within_group(forward, dt_forward, backward, dt_backward, n: int) -> list:
    """Displacement of each of a part's n frames relative to the part's centre image.

    `forward` is the flow from this part's centre image to the next part's, whose centre is
    dt_forward frames later; `backward` likewise to the previous part. Frame k lies at
    tau = k - (n - 1) / 2 frames from the centre, tau / dt of the way along the flow on its
    side: a centre pixel p is at p + s * flow(p) then, so the frame's pixel q shows the
    centre image at q - s * flow(q) (first order), ready for `warp`. At the ends of a scene
    the one side's flow is mirrored; with neither, frames do not move (None).
    """
    if forward is None and backward is None:
        return [None] * n
    if forward is None:
        forward, dt_forward = -backward, dt_backward
    if backward is None:
        backward, dt_backward = -forward, dt_forward
    c = (n - 1) / 2
    out = []
    for k in range(n):
        tau = k - c
        out.append((-tau / dt_forward) * forward if tau >= 0 else (tau / dt_backward) * backward)
    return out
