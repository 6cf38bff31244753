"""Temporal yardsticks: what a mean PSNR cannot see in a group-wise codec (numpy only).

The encoder sums B masked frames into one measurement per group, so a decoder's errors
repeat every B frames: quality that depends on the position in the group (sawtooth), jumps
at group boundaries (flicker), motion frozen within a group (motion fidelity), and events
smeared over their whole group (event fidelity). Binning, the microscopists' own way of
cutting data, is the baseline each number is compared against. Movies are (n, h, w) arrays;
frames g*B .. g*B+B-1 form group g. Frame pairs are visited one at a time, so memory stays
at a few frames beyond the movies themselves.
"""

from __future__ import annotations

import numpy as np

from emcodec.encoder import ACCUMULATORS
from emcodec.metrics import data_range, imaged_frames, psnr_frames

PSNR_CAP = 200.0  # dB for exact frames, so a perfect decoder scores a 0 dB sawtooth


def _pair(reference, decoded):
    """Both movies as arrays of one shape, or a clear error."""
    ref, dec = np.asarray(reference), np.asarray(decoded)
    if ref.shape != dec.shape or ref.ndim != 3:
        raise ValueError(f"need two movies (n, h, w) of one shape, got {ref.shape} and {dec.shape}")
    return ref, dec


def _steps(movie):
    """Mean |x[t+1] - x[t]| for each t: how much the movie changes between frames."""
    return np.array([np.abs(movie[t + 1].astype(np.float64) - movie[t]).mean() for t in range(len(movie) - 1)])


def sawtooth(reference, decoded, B: int) -> float:
    """Spread (max - min, dB) of the mean PSNR by position in the group, over whole groups.

    A decoder that is good only where its masks are rich, or only at one end of the group,
    repeats that every B frames; the movie's mean PSNR hides it, this shows it.
    """
    ref, dec = _pair(reference, decoded)
    groups = len(ref) // B
    if groups < 1:
        raise ValueError(f"need at least one whole group of B={B} frames, got {len(ref)}")
    n = groups * B
    p = np.minimum(psnr_frames(ref[:n], dec[:n], data_range(ref)), PSNR_CAP)
    p = np.where(imaged_frames(ref[:n]), p, np.nan)  # a blank (beam off) is an event, not a position
    by_position = np.nanmean(p.reshape(groups, B), axis=0)
    return float(by_position.max() - by_position.min())


def _boundary_ratio(movie, B, eps):
    """Median frame-to-frame change across group boundaries over the median change within
    groups: a jump at every boundary moves the median, a single event (a beam blank) does not."""
    steps = _steps(movie)
    at = (np.arange(len(steps)) + 1) % B == 0
    return (np.median(steps[at]) + eps) / (np.median(steps[~at]) + eps)


def boundary_flicker(reference, decoded, B: int) -> float:
    """How much more the decoded movie jumps at group boundaries than the reference: 1 = none.

    Each group is decoded from its own measurement, so errors that differ between groups
    show as a jump every B frames; dividing by the reference's own ratio leaves real motion out.
    """
    ref, dec = _pair(reference, decoded)
    if B < 2 or len(ref) <= B:
        raise ValueError(f"need B >= 2 and more than B frames, got B={B} and {len(ref)} frames")
    eps = 1e-6 * data_range(ref)  # a static reference would otherwise give 0 / 0
    return float(_boundary_ratio(dec, B, eps) / _boundary_ratio(ref, B, eps))


def motion_fidelity(reference, decoded) -> dict:
    """How much of the true frame-to-frame change the decoder reproduces.

    slope: least-squares slope, through the origin, of the decoded change on the true change
    over all pixels and frame pairs (1 = motion kept; a decoder that freezes each group
    scores far below 1). energy: mean |decoded change| over mean |true change| (> 1 when
    noise or flicker adds change). Use the CLEAN movie as the reference: the noisy one's
    change is mostly noise.
    """
    ref, dec = _pair(reference, decoded)
    cross = true2 = dec_abs = ref_abs = 0.0
    for t in range(len(ref) - 1):
        dr = ref[t + 1].astype(np.float64) - ref[t]
        dd = dec[t + 1].astype(np.float64) - dec[t]
        cross += float((dr * dd).sum())
        true2 += float((dr * dr).sum())
        dec_abs += float(np.abs(dd).sum())
        ref_abs += float(np.abs(dr).sum())
    if true2 == 0:
        raise ValueError("the reference does not change: motion fidelity is undefined")
    return {"slope": cross / true2, "energy": dec_abs / ref_abs}


def _dilate(mask, r):
    """The mask grown by a disc of radius r px (numpy only)."""
    h, w = mask.shape
    padded = np.pad(mask, r)
    out = np.zeros_like(mask)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx <= r * r:
                out |= padded[r + dy:r + dy + h, r + dx:r + dx + w]
    return out


def _ring(mask, exclude, inner=1, outer=6):
    """An annulus around `mask`, clear of `exclude`: the local background of an event."""
    ring = _dilate(mask, outer) & ~_dilate(mask, inner) & ~exclude
    if not ring.any():
        raise ValueError("no background ring around the event mask")
    return ring


def _signal(movie, frames, mask, ring):
    """Per frame: mean over `mask` above the mean over `ring` (the frame mean if ring is None)."""
    out = []
    for t in frames:
        f = movie[t].astype(np.float64)
        out.append(f[mask].mean() - (f[ring].mean() if ring is not None else 0.0))
    return np.array(out)


def event_fidelity(reference, decoded, event: dict, *, window: int = 4) -> dict:
    """How much of an event the decoder shows when it happens, and how much before (or after).

    The event's presence in a frame is its background-subtracted signal (mean over the mask
    minus the mean over an annulus around it) on the scale where the reference's frames
    without the event are 0 and with it are 1, taking the `window` frames on each side of
    the event's frame. kept = mean presence where the event holds, leak = where it does not:
      appear:    kept over frames f .. f+window-1, leak over f-window .. f-1 (shown too early);
      disappear: mirrored, kept before f (still there), leak from f on (a ghost that stays);
      jump:      an appearance at the new position (mask_after): leak = the cluster shown
                 there before the jump;
      blank:     presence is darkness of the whole frame: kept over the blank frames f .. end-1
                 (1 = as dark as the reference), leak over the window before (early darkening).
    A decoder that averages each group scores kept = leak = 0.5 for an event at mid-group.
    """
    ref, dec = _pair(reference, decoded)
    kind, f, n = event["kind"], int(event["frame"]), len(ref)
    before = range(max(0, f - window), f)
    after = range(f, int(event["end"])) if kind == "blank" else range(f, min(n, f + window))
    if not before or not after:
        raise ValueError(f"event at frame {f} leaves no frames on one side in a {n}-frame movie")
    if kind in ("appear", "jump", "blank"):
        present, absent = after, before
    elif kind == "disappear":
        present, absent = before, after
    else:
        raise ValueError(f"unknown event kind {kind!r}")
    mask = np.asarray(event["mask_after"] if kind == "jump" else event["mask"], dtype=bool)
    ring = None if kind == "blank" else _ring(mask, np.asarray(event["mask"], dtype=bool))
    s_present = _signal(ref, present, mask, ring).mean()
    s_absent = _signal(ref, absent, mask, ring).mean()
    strength = s_present - s_absent
    if strength == 0:
        raise ValueError("the event does not change the reference")

    def presence(frames):
        return float(((_signal(dec, frames, mask, ring) - s_absent) / strength).mean())

    return {"kept": presence(present), "leak": presence(absent)}


def binning(noisy, B: int) -> np.ndarray:
    """Each group's mean frame, shown for all its frames (float32, the movie's shape).

    The microscopists' baseline: summing B frames on the detector also keeps one frame per
    group, but throws away all motion and timing inside the group. A last short group is
    divided by its own frame count.
    """
    x = np.asarray(noisy)
    out = np.empty(x.shape, dtype=np.float32)
    for s in range(0, len(x), B):
        group = x[s:s + B]
        out[s:s + B] = group.sum(axis=0, dtype=np.float64) / len(group)
    return out


def binning_measurements(noisy, B: int) -> list:
    """The plain sum of each group's frames, in the encoder's accumulator dtype (uint16 ->
    uint32), so binning can be stored with emcodec's quantiser and zstd and its bytes counted."""
    x = np.asarray(noisy)
    acc = np.dtype(ACCUMULATORS.get(x.dtype.name, np.float64))
    return [x[s:s + B].sum(axis=0, dtype=acc) for s in range(0, len(x), B)]


def temporal_report(reference, decoded, B: int, events=None) -> dict:
    """All the temporal yardsticks in one dict (reference: the clean movie).

    events (from simulate_events_movie) are scored with a window of B//2 frames each side
    and summarised per kind (mean kept and leak, count); "event_list" keeps each one.
    """
    report = {"sawtooth_db": sawtooth(reference, decoded, B),
              "boundary_flicker": boundary_flicker(reference, decoded, B)}
    try:
        motion = motion_fidelity(reference, decoded)
    except ValueError:  # a static reference (e.g. an events movie without drift)
        motion = {"slope": float("nan"), "energy": float("nan")}
    report["motion_slope"], report["motion_energy"] = motion["slope"], motion["energy"]
    if events:
        scored = []
        for e in events:
            r = event_fidelity(reference, decoded, e, window=max(1, B // 2))
            scored.append({"kind": e["kind"], "timing": e.get("timing"), "frame": int(e["frame"]), **r})
        summary = {}
        for kind in dict.fromkeys(s["kind"] for s in scored):
            mine = [s for s in scored if s["kind"] == kind]
            summary[kind] = {"kept": float(np.mean([s["kept"] for s in mine])),
                             "leak": float(np.mean([s["leak"] for s in mine])), "count": len(mine)}
        report["events"] = summary
        report["event_list"] = scored
    return report
