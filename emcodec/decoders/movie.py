"""The movie decoder: frames that move inside a group and are fused along motion across groups.

Per-group methods (tcsdl, gap-tv) see one measurement alone and return, in effect, the
group's average. This decoder treats the file as a movie:

  stored parts -> first pass (a per-group method) -> motion (emcodec.motion, OpenCV DIS)
    -> one sharp image per part, fitted to the measurements of a window of parts along
       the motion (motion-compensated GAP), with weights that fall where parts disagree
    -> frames: that image moved along the trajectory inside the part
    -> where the window changed (a particle appears, leaves, jumps) the change is put at
       the frame the part's own measurement says, not averaged over the part
    -> the stacks writer

`MovieWindow` holds at most 2K+1 parts at once (the streaming bound).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .. import masks as _masks
from .. import motion
from ..memory import FIT_CHUNK_BYTES, HELD_POINTS_BYTES, release  # the fit's budgets, memory.py
from .normalised import NormalisedMeasurement

DEFAULT_WINDOW = 2
# fit steps per frame of a group, at most MAX_ITERATIONS (on the drifting development movie:
# best near 12 at B = 10 and 24 at B = 20; at B = 30, 18-24; more fit the noise)
ITERATIONS_PER_FRAME = 1.2
MAX_ITERATIONS = 24
# and at most this many per neighbour in the window: with one neighbour (a 40-frame movie at
# B = 20) 24 steps lost 1.1-1.2 dB to 12 (real still 29.36 against 30.55; drift 26.43 / 27.50)
STEPS_PER_NEIGHBOUR = 12
DISAGREE_PATCH = 7  # px, the patch over which parts are compared
# px, the patch over which a change and its frame are found: about an event's size (a 6 px
# radius cluster), so at 10 counts/px/frame the evidence of the whole cluster is pooled
# (7 px: a mid-group appearance kept 0.67 of its strength, a disappearance leaked 0.11 into
# the frames after it; 11 px: 0.74 and 0.01, motion movies unchanged within 0.01 dB)
CHANGE_PATCH = 11
EVENT_Z = 2.5  # a patch whose neighbours differ by this many noise standard deviations changed
DETAIL_TV = 0.7  # TV weight on what the fit adds to the first pass, in its noise std (Haar MAD)
CONSISTENCY = 2.0  # noise standard deviations the final residual may keep per pixel
NOISE_FLOOR = 1.0  # counts^2: quantisation and read noise of a measurement pixel, at least
CANVAS = True  # fit the centre image on a canvas that holds what moves into the frame
FIRST_PASS_SHARE = 0.75  # of a part's decoding time, for progress (measured: ~80 %)
# the canvas's margin: this percentile of the window's displacements, not their maximum (a
# few wild flow vectors, where a part has no texture, would widen every tile's canvas and
# halo; a frame point beyond the canvas samples its border and its measurement is left out)
SHIFT_PERCENTILE = 99.9
TILE = 512  # px: larger frames are fitted tile by tile, so memory does not grow with the frame
HALO = 32  # px around a tile, beyond the largest displacement in its window
# px: where a direct flow departs this far from the flow chained through the parts between,
# it has lost track (DIS finds displacements up to about its coarsest scale; at B = 30 a part
# two groups away on a drifting 192 px movie is ~60 px off and came out 20-60 px wrong)
CHAIN_PX = 1.0
# CHOOSE_TV: pick the TV weight per part from TV_GRID (x Haar-MAD noise) by how well an image
# fitted to the neighbours alone predicts the part's own measurement, instead of DETAIL_TV.
# Measured (docs/BENCHMARKS.md): +2.1 dB on a held-out jittering atomic lattice (where 0.7 is
# 2 dB low and 1.4, its best, costs the real still 2.1 dB), +0.5 dB on the real still, but
# -0.1 to -0.25 dB on most development movies, with more flicker on the sample (2.55 against
# 1.68: neighbouring parts get different weights) and a sawtooth of 0.60 dB on drift at
# B = 10; so it stays off until the choice is shared across a window
CHOOSE_TV = False
TV_GRID = (0.5, 0.7, 1.0, 1.4, 2.0, 2.8)


@dataclass
class Unit:
    """One stored part of a group: frames first..first+n-1, its measurement and first pass."""

    index: int  # running part number in the file
    scene: int  # parts of one scene share a number; windows never cross scenes
    first: int  # absolute frame number of the part's first frame
    n: int
    y: np.ndarray  # measurement, float32
    mean: np.ndarray | None = None  # first-pass average of the part's frames (float32)
    # other part's index -> flow from this part's centre to that part's (motion.HalfFlow; in a
    # Unit cut by `region`, the float32 field itself)
    flows: dict = field(default_factory=dict)

    @property
    def centre(self) -> float:
        return self.first + (self.n - 1) / 2


def effective_masks(masks: np.ndarray, n: int) -> np.ndarray:
    """Masks of a part with n real frames: a padded part repeats its last frame, so that
    frame's mask is the sum of the masks of the padded positions ((n, H, W), uint8 up to
    255 frames: a quarter of float32's bytes in the fit's window; float32 beyond)."""
    dtype = np.uint8 if len(masks) <= 255 else np.float32
    out = masks[:n].astype(dtype)
    if n < len(masks):
        out[n - 1] += masks[n:].sum(0, dtype=dtype)
    return out


def region(u: Unit, top: int, bottom: int, left: int, right: int, shift: int, keep) -> Unit:
    """Part u on rows top:bottom, columns left:right of a canvas `shift` px wider than the
    frame on every side, in float32: measurement 0 outside the frame (its masks are 0
    there), first pass and flows continued from the frame's edges; only the flows to the
    parts in `keep`. Cut per tile, so no full-frame padded copy is ever made."""
    H, W = u.y.shape
    r0, r1 = max(0, top - shift), min(H, bottom - shift)
    c0, c1 = max(0, left - shift), min(W, right - shift)
    pads = ((r0 - (top - shift), bottom - shift - r1), (c0 - (left - shift), right - shift - c1))

    def cut(a, mode):  # a: the array on rows r0:r1, columns c0:c1
        a = np.asarray(a, np.float32)
        p = pads + ((0, 0),) * (a.ndim - 2)
        return np.pad(a, p, mode=mode) if any(sum(p, ())) else a

    return Unit(u.index, u.scene, u.first, u.n, cut(u.y[r0:r1, c0:c1], "constant"), cut(u.mean[r0:r1, c0:c1], "edge"),
                {k: cut(f.full(r0, r1, c0, c1), "edge") for k, f in u.flows.items() if k in keep})


class MaskPlane:
    """The B masks of a frame, made per region when asked: a 4096 x 4096 frame's 30 masks
    are 500 MB, a tile's a few MB."""

    def __init__(self, seed: int, B: int, height: int, width: int):
        self.seed, self.B, self.height, self.width = seed, B, height, width

    def crop(self, top: int, bottom: int, left: int, right: int) -> np.ndarray:
        """bool (B, bottom - top, right - left); 0 outside the frame."""
        out = np.zeros((self.B, bottom - top, right - left), bool)
        r0, r1, c0, c1 = max(0, top), min(self.height, bottom), max(0, left), min(self.width, right)
        if r1 > r0 and c1 > c0:
            out[:, r0 - top:r1 - top, c0 - left:c1 - left] = _masks.make_masks(self.seed, self.B, r0, c0, r1 - r0,
                                                                                 c1 - c0)
        return out


def frame_rect(total: np.ndarray) -> tuple[int, int, int, int] | None:
    """Where a canvas holds the frame, (row0, row1, col0, col1): the rectangle of pixels with
    any mask weight (a pixel inside it may have none, when all B masks are 0 there)."""
    rows, cols = np.flatnonzero(total.any(1)), np.flatnonzero(total.any(0))
    return (rows[0], rows[-1] + 1, cols[0], cols[-1] + 1) if rows.size else None


def in_frame(total: np.ndarray) -> np.ndarray:
    """frame_rect as a boolean map."""
    out = np.zeros(total.shape, bool)
    rect = frame_rect(total)
    if rect is not None:
        out[rect[0]:rect[1], rect[2]:rect[3]] = True
    return out


def box(img: np.ndarray, size: int = DISAGREE_PATCH) -> np.ndarray:
    import cv2

    return cv2.blur(np.ascontiguousarray(img, dtype=np.float32), (size, size), borderType=cv2.BORDER_REFLECT)


def noise_gain(r: np.ndarray, pred: np.ndarray) -> float:
    """Variance of the measurement per count (the detector gain for shot noise), robustly
    from residuals r against predictions: median(r^2 / pred) over the median of chi^2_1."""
    ratio = (r * r) / np.maximum(pred, 1.0)
    return float(np.median(ratio) / 0.4549)


def haar_sigma(img: np.ndarray) -> float:
    """White-noise standard deviation from the finest diagonal Haar details (Donoho's MAD)."""
    a = img[: img.shape[0] // 2 * 2, : img.shape[1] // 2 * 2]
    hh = (a[0::2, 0::2] - a[0::2, 1::2] - a[1::2, 0::2] + a[1::2, 1::2]) / 2
    return float(np.median(np.abs(hh)) / 0.6745)


def tv_plain(img: np.ndarray, lam: float, steps: int = 40) -> np.ndarray:
    """2-D isotropic TV denoising (Chambolle's projection, from gap-tv) in the image's units."""
    import torch
    from .gaptv import tv_denoise

    t = torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32))[None, None]
    u, _ = tv_denoise(t, float(lam), 0.0, steps)
    return u[0, 0].numpy()


def tv_refine(z: np.ndarray, z0: np.ndarray, weight: float | None = None) -> np.ndarray:
    """The TV prior step: of what the fit added to z0, keep what TV calls structure."""
    weight = DETAIL_TV if weight is None else weight
    delta = z - z0
    sigma = haar_sigma(delta)
    return z0 + tv_plain(delta, weight * sigma) if weight > 0 and sigma > 0 else z


def restore(unit: Unit, total: np.ndarray, size: int = 3) -> np.ndarray:
    """A part's first-pass mean with the contrast it lost given back from its own
    measurement (the first pass smooths small features): plus box(Y - S * mean) / box(S)."""
    return unit.mean + box(unit.y - total * unit.mean, size) / np.maximum(box(total, size), 1e-6)


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation from the median absolute deviation (events do not inflate it)."""
    v = values.ravel()
    return float(1.4826 * np.median(np.abs(v - np.median(v)))) + 1e-12


class MovieDecoder:
    """Decode a .tcs movie along motion.

    first_pass: a per-group decoder (TcsDl or GapTV) whose group averages start the fit and
    give the motion. window: K parts on each side. iterations: fit steps (None: `steps(B)`).
    """

    def __init__(self, first_pass, window: int = DEFAULT_WINDOW, iterations: int | None = None,
                 preset: str = motion.PRESET, device="cpu", prior=None, prior_entry: dict | None = None):
        if window < 0 or (iterations is not None and iterations < 0):
            raise ValueError("window and iterations must be >= 0")
        self.first_pass = first_pass
        self.window = int(window)
        self.iterations = None if iterations is None else int(iterations)  # None: steps(B)
        self.preset = preset
        self.device = device
        self.prior = prior  # a learned refine step (emcodec.model.prior.RefineNet); None: TV
        self.prior_entry = prior_entry  # its weights/prior.json entry (sha256 for the provenance)

    @property
    def name(self) -> str:
        """The --method that gives this decoder: the learned prior is `movie-learned`."""
        return "movie" if self.prior is None else "movie-learned"

    @property
    def labels(self) -> list[str]:
        prior = "learned (" + self.prior.architecture["name"] + ")" if self.prior is not None else "TV"
        steps = self.iterations if self.iterations is not None else f"{ITERATIONS_PER_FRAME}/frame<={MAX_ITERATIONS}"
        return [f"first pass={self.first_pass.name} window={self.window} iterations={steps} "
                f"prior={prior} motion={motion.LIBRARY} preset={self.preset}"] + list(getattr(self.first_pass, "labels", []))

    # ------------------------------------------------------------ per part

    def prepare(self, unit: Unit, B: int, seed: int, progress=None) -> None:
        """First pass of one part: the average of its decoded frames (`progress(fraction)`
        after each batch of its tiles)."""
        if isinstance(self.first_pass, NormalisedMeasurement):
            unit.mean = self.first_pass.image(unit.y, B, seed, unit.n)
            return
        from .base import decode_group  # torch: imported when a first pass runs, not for preview

        unit.mean = decode_group(self.first_pass, unit.y, B, seed, device=self.device, mean_of=unit.n,
                                 progress=progress)

    def link(self, a: Unit, b: Unit, via: Unit | None = None) -> None:
        """Flow from part a's centre image to part b's, kept on a (8-bit over both's range).

        `via`: a part between them already linked to both (a -> via -> b). The flow chained
        through it replaces the direct estimate wherever the two differ by more than
        CHAIN_PX (blended over one px more): there the estimator lost a large displacement
        (at B = 20 on a drifting movie, 10 % of a direct flow two parts apart was 5-10 px
        off, the chained one 0.5-1.4 px); where they agree the direct one is kept.
        """
        flow = self.estimate(a, b)
        if via is not None:
            chained = motion.compose(a.flows[via.index].full(), via.flows[b.index].full())
            apart = np.hypot(*np.moveaxis(flow - chained, -1, 0))
            lost = np.clip(apart - CHAIN_PX, 0.0, 1.0)[..., None]  # 0 up to CHAIN_PX, 1 from one px more
            flow = flow + lost * (chained - flow)
        a.flows[b.index] = motion.HalfFlow(flow)

    def estimate(self, a: Unit, b: Unit) -> np.ndarray:
        """The flow from a's first-pass image to b's, estimated directly."""
        lo, hi = np.percentile(np.stack([a.mean, b.mean]), [0.5, 99.5])
        return motion.estimate_flow(a.mean, b.mean, float(lo), float(hi), self.preset)

    # ------------------------------------------------------------ the fit

    def reconstruct(self, unit: Unit, neighbours: list[Unit], masks: MaskPlane, B: int,
                    progress=None, output=None) -> np.ndarray:
        """Frames (n, H, W) of `unit` from itself and its window `neighbours` (same scene).

        The centre image is fitted on a canvas wider than the frame by the largest
        displacement in the window: content that drifts into the frame during the window is
        seen by some measurement, and without room for it every frame's edge would be
        filled by repeating the border (outside the frame the measurements are 0 with masks
        of 0, so they constrain nothing there). Canvases larger than TILE are fitted in
        tiles with a halo as wide as that displacement plus HALO, so that every tile sees
        the content that moves into it; the fit's memory (a displacement field per frame of
        the window) then stays that of one tile. Parts, masks and canvas are cut per tile
        (`region`, `MaskPlane.crop`): the only full-frame array made here is the output.
        `output`: an Output (the writer's dtype and rounding), applied tile by tile so that
        the full-frame array is already the writer's (at 4096 x 4096 x 30: 1 GB of uint16
        instead of 2 GB of float32); None: float32 as fitted.
        """
        members = [unit] + neighbours
        # flows between members only: a member's flows beyond this window depend on how much
        # of the file is read (--frames, lazy chunks), the decoded values must not
        inside = {u.index for u in members}
        shift = int(np.ceil(max((f.max_abs(SHIFT_PERCENTILE) for u in members for k, f in u.flows.items()
                                 if k in inside), default=0.0))) if CANVAS else 0
        H, W = unit.y.shape
        h, w = H + 2 * shift, W + 2 * shift  # the canvas
        reach = HALO + shift
        if h <= TILE + 2 * reach and w <= TILE + 2 * reach:
            tiles = [(0, h, 0, w, 0, h, 0, w)]
        else:  # (region with its halo, the tile inside it), tiles wholly in the margin left out
            tiles = [(max(0, y0 - reach), min(h, y0 + TILE + reach), max(0, x0 - reach), min(w, x0 + TILE + reach),
                      y0, min(h, y0 + TILE), x0, min(w, x0 + TILE))
                     for y0 in range(0, h, TILE) for x0 in range(0, w, TILE)
                     if y0 < shift + H and y0 + TILE > shift and x0 < shift + W and x0 + TILE > shift]
        out = np.empty((unit.n, H, W), np.float32 if output is None else output.dtype)
        for done, (a0, a1, b0, b1, y0, y1, x0, x1) in enumerate(tiles, 1):
            crop = lambda u: region(u, a0, a1, b0, b1, shift, inside)  # noqa: E731
            x = self.fit(crop(unit), [crop(u) for u in neighbours],
                         masks.crop(a0 - shift, a1 - shift, b0 - shift, b1 - shift), B)
            r0, r1, c0, c1 = max(y0, shift), min(y1, shift + H), max(x0, shift), min(x1, shift + W)
            x = x[:, r0 - a0:r1 - a0, c0 - b0:c1 - b0]
            out[:, r0 - shift:r1 - shift, c0 - shift:c1 - shift] = x if output is None else output.convert(x)
            del x
            release()
            if progress is not None:
                progress(done / len(tiles))
        return out

    def fit(self, unit: Unit, neighbours: list[Unit], masks: np.ndarray, B: int) -> np.ndarray:
        """`reconstruct` on one region (the whole frame, or a tile with its halo)."""
        h, w = unit.y.shape
        base = motion.grid(h, w)
        before = [u for u in neighbours if u.index < unit.index]
        after = [u for u in neighbours if u.index > unit.index]
        prev = max(before, key=lambda u: u.index) if before else None
        nxt = min(after, key=lambda u: u.index) if after else None
        # displacement of frame k of member j, relative to this unit's centre image, in float16:
        # the window's displacements are the fit's largest term (steps of 0.03 px at 32-64 px)
        half = lambda d: None if d is None else d.astype(np.float16)  # noqa: E731
        traj = [half(e) for e in self.trajectory(unit, prev, nxt)]
        members = [unit] + neighbours
        disp = {}  # member index -> (n, h, w, 2) float16
        for j in members:
            tj = traj if j is unit else self.trajectory(j, *self._sides(j, members))
            to_me = None if j is unit else j.flows[unit.index]
            disp[j.index] = d = np.zeros((j.n, h, w, 2), np.float16)
            for k in range(j.n):
                e = tj[k]
                moved = e if to_me is None else to_me if e is None else motion.compose(e, to_me, base)
                if moved is not None:
                    d[k] = moved
        weights = self.agreement(unit, neighbours, base)
        z = self.fuse(unit, neighbours, weights)
        z0 = z
        eff = {j.index: effective_masks(masks, j.n) for j in members}
        s2 = {j.index: np.maximum(np.square(eff[j.index], dtype=np.float32).sum(0), 1e-6) for j in members}
        z_fit, _ = self.solve(z, members, disp, eff, s2, weights, base, self.steps(B, len(members)))
        z = z_fit.copy()
        measured = s2[unit.index] > 1e-6
        seen = in_frame(measured)  # a canvas's margin has no measurement
        near = self.needed(measured, traj)
        tv = None  # DETAIL_TV
        if CHOOSE_TV and neighbours and self.prior is None:
            tv = self.choose_tv(z0, unit, members, disp, eff, s2, weights, base, B, traj, near)
        z[near] = self.refine(z_fit[near], z0[near], unit, B, tv)
        frames = np.stack([self._warp(z, traj[k], base) for k in range(unit.n)])
        if prev is not None and nxt is not None:
            self.keep_changes(frames, unit, prev, nxt, eff[unit.index], traj, base, seen)
        if CONSISTENCY > 0:
            self.make_consistent(frames, unit.y, eff[unit.index], s2[unit.index], seen)
        return frames

    @staticmethod
    def needed(total: np.ndarray, traj: list):
        """The slices of a canvas that this part's frames show: its frame_rect grown by
        the part's own largest displacement (the prior's noise estimate and normalisation
        then come from what the frames show, not from the canvas's unmeasured margin)."""
        grow = 2 + int(np.ceil(max((float(np.abs(e).max()) for e in traj if e is not None), default=0.0)))
        rect = frame_rect(total)
        if rect is None:
            return slice(None), slice(None)
        return slice(max(0, rect[0] - grow), rect[1] + grow), slice(max(0, rect[2] - grow), rect[3] + grow)

    def refine(self, z: np.ndarray, z0: np.ndarray, unit: Unit, B: int, tv: float | None = None) -> np.ndarray:
        """The prior on the fitted centre image z (z0: the fused first pass it started from):
        keep of what the fit adds only what TV says is structure, not noise (or, with a learned
        prior, what the network keeps)."""
        if self.prior is not None:
            from ..model.prior import refine_image

            return refine_image(self.prior, z, z0)
        return tv_refine(z, z0, tv)

    def choose_tv(self, z0, unit, members, disp, eff, s2, weights, base, B, traj, near) -> float:
        """The TV weight that best predicts this part's own measurement from an image fitted
        to its neighbours' alone (their noise is independent of it): a held-out check."""
        others = [j for j in members if j is not unit]
        z_cv, _ = self.solve(z0, others, disp, eff, s2, weights, base, self.steps(B, len(members)))
        c = eff[unit.index]
        ok = (s2[unit.index] > 1e-3) & in_frame(s2[unit.index] > 1e-6)
        best = None
        for g in TV_GRID:
            z = z_cv.copy()
            z[near] = tv_refine(z_cv[near], z0[near], g)
            pred = np.einsum("khw,khw->hw", c, np.stack([self._warp(z, traj[k], base) for k in range(unit.n)]))
            risk = float((((unit.y - pred) ** 2) / s2[unit.index])[ok].sum())
            if best is None or risk < best[0]:
                best = (risk, g)
        return best[1]

    @staticmethod
    def make_consistent(frames, y, eff, s2, seen) -> None:
        """Give back to the frames the part of the measurement the fit leaves unexplained
        beyond the noise (soft threshold at CONSISTENCY noise standard deviations), as a
        GAP projection does: the masked sum of the frames then agrees with Y within the
        noise. Edits `frames` in place."""
        pred = np.einsum("khw,khw->hw", eff, frames)
        r = y - pred
        sigma = np.sqrt(noise_gain(r[seen], pred[seen]) * np.maximum(pred, 0) + NOISE_FLOOR)
        excess = np.sign(r) * np.maximum(np.abs(r) - CONSISTENCY * sigma, 0.0)
        frames += eff * (excess / s2).astype(np.float32)

    def keep_changes(self, frames, unit, prev, nxt, eff, traj, base, seen) -> None:
        """Where the parts before and after disagree beyond the noise, something changed
        (a particle appeared, left, jumped): give each frame the side it belongs to, at the
        frame where this part's measurement puts the change, instead of an average.

        The change frame e is chosen per pixel among 0..n by the least squared residual of
        Y against "before-side content in frames < e, after-side content from e", summed
        over a patch. Edits `frames` in place.
        """
        total = eff.sum(0, dtype=np.float32)  # S: the same for every part, padded or not
        before = motion.warp(restore(prev, total), unit.flows[prev.index], base)
        after = motion.warp(restore(nxt, total), unit.flows[nxt.index], base)
        # only where both neighbours saw this patch: beyond their frames' edges (a canvas's
        # margin) their images are repeated borders that differ without any change
        frame = seen.astype(np.float32)
        both_saw = (box(motion.warp(frame, unit.flows[prev.index], base)) > 0.999) & (
            box(motion.warp(frame, unit.flows[nxt.index], base)) > 0.999) & (box(frame) > 0.999)
        if not both_saw.any():
            return
        d = box(after - before, CHANGE_PATCH)
        score = np.abs(d) / robust_sigma(d[both_saw])
        changed = np.where(both_saw, np.clip((score - EVENT_Z) / EVENT_Z, 0.0, 1.0), 0.0).astype(np.float32)
        if not changed.any():
            return
        upto = np.concatenate([np.zeros(eff[:1].shape, np.float32), np.cumsum(eff, 0, dtype=np.float32)])  # frames < e
        total = upto[-1]
        cost = np.stack([box((unit.y - before * upto[e] - after * (total - upto[e])) ** 2, CHANGE_PATCH)
                         for e in range(unit.n + 1)])
        e_star = cost.argmin(0)
        for k in range(unit.n):
            side = np.where(k < e_star, before, after)
            moved = self._warp(side, traj[k], base)
            frames[k] += changed * (moved - frames[k])

    @staticmethod
    def _sides(j: Unit, members: list[Unit]):
        before = [u for u in members if u.index == j.index - 1]
        after = [u for u in members if u.index == j.index + 1]
        return (before[0] if before else None), (after[0] if after else None)

    @staticmethod
    def _warp(img, flow, base):
        return img if flow is None else motion.warp(img, flow, base)

    def trajectory(self, unit: Unit, prev: Unit | None, nxt: Unit | None) -> list:
        """Displacement of each frame of `unit` relative to its centre image."""
        fwd = unit.flows.get(nxt.index) if nxt is not None else None
        bwd = unit.flows.get(prev.index) if prev is not None else None
        dt_f = (nxt.centre - unit.centre) if nxt is not None else None
        dt_b = (unit.centre - prev.centre) if prev is not None else None
        return motion.within_group(fwd, dt_f, bwd, dt_b, unit.n)

    def steps(self, B: int, members: int = 2 * DEFAULT_WINDOW + 1) -> int:
        """Fit steps for parts of B frames fitted with `members` parts' measurements: the
        early stop is the fit's only regulariser (the prior comes after); a longer coded
        exposure needs more steps to undo, and fewer measurements overfit sooner."""
        if self.iterations is not None:
            return self.iterations
        return min(MAX_ITERATIONS, int(round(ITERATIONS_PER_FRAME * B)), STEPS_PER_NEIGHBOUR * max(1, members - 1))

    @staticmethod
    def solve(z, members, disp, eff, s2, weights, base, steps: int):
        """The centre image that fits every member's measurement along its displacements,
        from z: weighted least squares (members by their agreement, pixels by 1/S), by
        preconditioned gradient steps (the GAP step size) with Nesterov extrapolation and
        restarts. Returns (image, misfit before each plain step).

        The gradient is exact (torch's grid_sample and its backward). The earlier
        back-projection, the residual moved back along the negated flow, is not the
        operator's adjoint near a canvas's edges or where flows vary: at B = 20-30 its misfit
        rose again after ~15 steps and PSNR fell; with the exact gradient B = 20 gained 1.2-3
        dB on the development movies (docs/BENCHMARKS.md).
        """
        import torch
        import torch.nn.functional as F

        h, w = z.shape
        scale = torch.tensor([2.0 / max(w - 1, 1), 2.0 / max(h - 1, 1)], dtype=torch.float32)
        grid0 = torch.from_numpy(base)
        # frames sampled per chunk of this many bytes: a whole part's sampled frames, their
        # products and gradients (~60-120 MB each on a 900 px tile at B = 30) were mapped and
        # zeroed anew at every step (glibc maps anything over 32 MB), half the CPU time
        chunk = max(1, FIT_CHUNK_BYTES // (h * w * 8))

        def sample_points(j, k0, k1, into=None):
            """Where frames k0:k1 of member j sample z, in grid_sample's [-1, 1] units (float32;
            torch widens the float16 displacements ~10x faster than numpy)."""
            source = torch.from_numpy(disp[j.index][k0:k1])
            points = source.to(torch.float32, copy=True) if into is None else into[:k1 - k0].copy_(source)
            points += grid0
            points *= scale
            points -= 1.0
            return points

        # held for every member when small (a third of the fit's time went to building them),
        # built chunk by chunk at each step otherwise (a 30-frame part's on a 900 px tile is ~190 MB)
        held = sum(j.n for j in members) * h * w * 8 <= HELD_POINTS_BYTES
        points = {j.index: sample_points(j, 0, j.n) for j in members} if held else {}
        reused = None if held else torch.empty((chunk, h, w, 2))

        def chunks(j):
            for k0 in range(0, j.n, chunk):
                k1 = min(j.n, k0 + chunk)
                grid = points[j.index][k0:k1] if held else sample_points(j, k0, k1, reused)
                yield k0, k1, grid.reshape(1, (k1 - k0) * h, w, 2)

        parts, den = [], np.zeros_like(z)
        for j in members:
            # a measurement pixel counts only where every frame it sums is inside z's canvas:
            # elsewhere part of it comes from content z does not hold (a tile's surroundings)
            inside = np.ones((h, w), bool)
            for k0, k1, grid in chunks(j):
                within = (grid.reshape(k1 - k0, h, w, 2).abs() <= 1.0 + 1e-6).all(-1)
                inside &= (within | torch.from_numpy(eff[j.index][k0:k1] == 0)).all(0).numpy()
            per_pixel = np.where((s2[j.index] > 1e-3) & inside, weights[j.index] / s2[j.index], 0.0)
            parts.append((j, torch.from_numpy(np.ascontiguousarray(eff[j.index])),  # uint8: promoted per chunk
                          torch.from_numpy(np.ascontiguousarray(j.y, np.float32)),
                          torch.from_numpy(per_pixel.astype(np.float32))))
            den += weights[j.index] * j.n
        # at least one whole part's step: where the members' agreement is ~0 in z's grid their
        # moved measurements still pull (the weights sit in z's grid, the residual in theirs)
        den = torch.from_numpy(np.maximum(den, max(j.n for j in members)).astype(np.float32))

        def misfit_and_step(x):
            """Misfit and the preconditioned step -A^T P (A x - y) / den; the exact gradient of
            grid_sample (its backward), chunk by chunk: two passes over each part's frames,
            the first for its residual, the second for the gradient along it."""
            total, grad = 0.0, torch.zeros_like(x)
            for j, mask, y, per_pixel in parts:
                pred = torch.zeros((h, w))
                for k0, k1, grid in chunks(j):
                    frames = F.grid_sample(x, grid, mode="bilinear", padding_mode="border",
                                           align_corners=True).reshape(k1 - k0, h, w)
                    pred += (mask[k0:k1] * frames).sum(0)
                r = per_pixel * (y - pred)
                total += 0.5 * float((r * (y - pred)).sum())
                for k0, k1, grid in chunks(j):
                    upstream = (mask[k0:k1] * r).reshape(1, 1, (k1 - k0) * h, w)
                    grad += torch.ops.aten.grid_sampler_2d_backward(
                        upstream, x, grid, 0, 1, True, [True, False])[0]  # bilinear, border
            return total, grad / den

        x = torch.from_numpy(np.ascontiguousarray(z, np.float32))[None, None].clone()
        x_prev, t_prev, last, history = x, 1.0, np.inf, []
        for _ in range(steps):
            misfit, step = misfit_and_step(x)
            if misfit > last:  # the extrapolation overshot: restart from the last plain iterate
                x, t_prev = x_prev, 1.0
                misfit, step = misfit_and_step(x)
            last = misfit
            history.append(misfit)
            x_new = x + step
            t = (1 + (1 + 4 * t_prev * t_prev) ** 0.5) / 2
            x, x_prev, t_prev = x_new + ((t_prev - 1) / t) * (x_new - x_prev), x_new, t
        return x_prev[0, 0].numpy(), history

    def fuse(self, unit: Unit, neighbours: list[Unit], weights) -> np.ndarray:
        """Average of the parts' first-pass images moved into this part's grid, weighted."""
        num = unit.mean.astype(np.float32).copy()
        den = np.ones_like(num)
        for j in neighbours:
            num += weights[j.index] * motion.warp(j.mean, unit.flows[j.index])
            den += weights[j.index]
        return num / den

    def agreement(self, unit: Unit, neighbours: list[Unit], base) -> dict[int, np.ndarray]:
        """Weight of each part's data at every pixel of this part's image: 1 where it agrees
        with this part's first pass, falling to 0 where it differs beyond the noise."""
        out = {unit.index: np.ones_like(unit.mean)}
        for j in neighbours:
            moved = motion.warp(j.mean, unit.flows[j.index], base)
            d = box(moved - unit.mean)
            z = d / (EVENT_Z * robust_sigma(d))
            out[j.index] = np.exp(-0.5 * z * z).astype(np.float32)
        return out


def _share(progress, unit: Unit, lo: float, hi: float):
    """A unit's progress(fraction) for one stage of its work, spanning [lo, hi] of it."""
    return None if progress is None else (lambda fraction: progress(unit, lo + (hi - lo) * fraction))


class MovieWindow:
    """Streams parts through the decoder, holding at most 2K+1 of them."""

    def __init__(self, decoder: MovieDecoder, B: int, seed: int, height: int, width: int, output=None):
        self.decoder, self.B, self.seed, self.output = decoder, B, seed, output
        self.masks = MaskPlane(seed, B, height, width)
        self.held: deque[Unit] = deque()
        self.peak_held = 0

    def frames(self, units, progress=None, wanted=None):
        """Yield (unit, frames) for every unit of the iterable, in order; frames None for a
        unit that `wanted(unit)` declines (read only for its neighbours' windows: a range
        of frames fits only its own parts).

        `progress(unit, fraction)`: how much of a unit's work is done, its first pass
        counted as FIRST_PASS_SHARE (most of the CPU time), then its fit tile by tile.
        """
        K = self.decoder.window
        pending: deque[Unit] = deque()  # units waiting for their right-hand neighbours
        for unit in units:
            self.decoder.prepare(unit, self.B, self.seed, progress=_share(progress, unit, 0.0, FIRST_PASS_SHARE))
            via = None  # the part just before this one: farther parts are also chained through it
            for other in reversed(self.held):  # nearest first
                if other.scene == unit.scene and unit.index - other.index <= K:
                    self.decoder.link(other, unit, via)
                    self.decoder.link(unit, other, via)
                    via = via or other
            release()
            self.held.append(unit)
            pending.append(unit)
            self.peak_held = max(self.peak_held, len(self.held))
            while pending and (pending[0].scene != unit.scene or unit.index - pending[0].index >= K):
                done = pending.popleft()
                yield done, self._emit(done, progress) if wanted is None or wanted(done) else None
                self._drop(pending[0] if pending else unit, K if pending else K - 1)
        while pending:
            done = pending.popleft()
            yield done, self._emit(done, progress) if wanted is None or wanted(done) else None

    def _emit(self, unit: Unit, progress=None) -> np.ndarray:
        K = self.decoder.window
        nb = [u for u in self.held if u is not unit and u.scene == unit.scene and abs(u.index - unit.index) <= K]
        return self.decoder.reconstruct(unit, nb, self.masks, self.B,
                                        progress=_share(progress, unit, FIRST_PASS_SHARE, 1.0), output=self.output)

    def _drop(self, oldest_pending: Unit, keep_left: int) -> None:
        """Forget parts that no pending or future part's window reaches."""
        while self.held and (self.held[0].scene != oldest_pending.scene
                             or self.held[0].index < oldest_pending.index - keep_left):
            gone = self.held.popleft()
            for u in self.held:  # and the flows to it: no window reaches it again
                u.flows.pop(gone.index, None)


def units_of(reader, groups: range):
    """The stored parts of these groups as Units, numbered in order; a split starts a scene."""
    B = reader.header.B
    index, scene = 0, 0
    for g in groups:
        group = reader.read_group(g)
        units = []
        for p, part in enumerate(group.parts):
            scene += p > 0
            units.append(Unit(index, scene, g * B + part.first, part.n_frames, np.asarray(part.measurement, np.float32)))
            index += 1
        group = part = None  # their float64 measurements: not held while the parts are decoded
        while units:
            yield g, units.pop(0)


def decode_movie(reader, decoder: MovieDecoder, start: int, stop: int, *, window: MovieWindow | None = None,
                 progress=None, output=None):
    """Yield (group index, part first frame, frames) covering frames [start, stop).

    `progress(group, fraction)`: work done on a group that is yielded (fractions of its
    parts' work, a group of several parts reporting each part's).

    Only the groups of those frames and K groups on each side are read (a part needs its K
    neighbours on each side in its scene, and a group holds at least one part), so a frame
    range gives the same values as those frames of a full decode; the neighbours get their
    first pass and motion, only the asked groups' parts are fitted.
    """
    h = reader.header
    n_groups = len(reader.trailer.offsets)
    g0 = max(0, start // h.B - decoder.window)
    g1 = min(n_groups, (stop - 1) // h.B + 1 + decoder.window)
    window = window or MovieWindow(decoder, h.B, h.seed, h.height, h.width, output)
    group_of = {}

    def tagged():
        for g, unit in units_of(reader, range(g0, g1)):
            group_of[unit.index] = g
            yield unit

    wanted = range(start // h.B, (stop - 1) // h.B + 1)

    def told(unit, fraction):
        g = group_of.get(unit.index)
        if g in wanted:
            progress(g, fraction)

    for unit, frames in window.frames(tagged(), progress=told if progress is not None else None,
                                      wanted=lambda u: group_of[u.index] in wanted):
        if group_of[unit.index] in wanted:
            yield group_of.pop(unit.index), unit, frames
            del frames  # not held while the next part decodes
        else:
            group_of.pop(unit.index, None)
