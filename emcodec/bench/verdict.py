"""The verdict: for each B and each measure, who wins at the same bytes, by how much, over noise seeds.

Contestants at one B: every emcodec decoder (the .tcs file's bytes), binning (within them)
and every baseline at its PSNR-best setting within the budget, that setting held for every
measure. One noise realisation can decide a close call, so the movie is benchmarked again
with fresh noise drawn around its clean reference (the detector's gain and read noise
fitted from the first realisation), and measures are averaged over seeds. A difference
under the measure's tie margin (0.2 dB, or 2 %) is a tie.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import numpy as np

DEFAULT_SEEDS = 3

# (key, label, unit, better, tie): better is "higher", "lower" or "near1" (|value - 1| lower);
# tie is ("abs", x) or ("rel", x), the relative one against the larger magnitude.
MEASURES = [
    ("psnr", "PSNR", "dB", "higher", ("abs", 0.2)),
    ("ssim", "SSIM", "", "higher", ("rel", 0.02)),
    ("lattice_kept_freq", "lattice kept up to", "freq", "higher", ("rel", 0.02)),
    ("lattice_cross_power", "median Bragg cross-power", "", "higher", ("rel", 0.02)),
    ("frc_freq", "FRC 0.5 resolution", "freq", "higher", ("rel", 0.02)),
    ("column_rms", "column RMS displacement", "len", "lower", ("rel", 0.02)),
    ("column_missed", "columns missed", "fraction", "lower", ("abs", 0.02)),
    ("column_invented", "columns invented", "fraction", "lower", ("abs", 0.02)),
    ("column_intensity", "column intensity error", "fraction", "lower", ("rel", 0.02)),
    ("spacing_error", "lattice-spacing error", "fraction", "lower_abs", ("abs", 0.002)),
    ("motion_slope", "motion slope", "", "near1", ("abs", 0.02)),
    ("boundary_flicker", "boundary flicker", "", "near1", ("rel", 0.02)),
]


def _num(v):
    return float(v) if isinstance(v, (int, float)) and math.isfinite(float(v)) else None


def entry_measures(entry: dict) -> dict:
    """The verdict's measures of one scored entry (method, binning or a baseline's best)."""
    sci = entry.get("science", {})
    lat, frc, col = sci.get("lattice", {}), sci.get("frc", {}), sci.get("columns", {})
    tmp = entry.get("temporal", {})
    out = {"psnr": entry.get("psnr"), "ssim": entry.get("ssim"),
           "lattice_kept_freq": lat.get("kept_freq"), "lattice_cross_power": lat.get("median_cross_power"),
           "frc_freq": frc.get("freq"), "column_rms": col.get("rms_displacement"),
           "column_missed": col.get("missed"), "column_invented": col.get("invented"),
           "column_intensity": col.get("intensity_error"), "spacing_error": col.get("spacing_error"),
           "motion_slope": tmp.get("motion_slope"), "boundary_flicker": tmp.get("boundary_flicker")}
    return {k: _num(v) for k, v in out.items() if _num(v) is not None}


def contestants(report: dict) -> dict:
    """{B: {name: measures}} for one report's first quantiser setting at each B."""
    out: dict = {}
    for r in report["results"]:
        if r["B"] in out:
            continue
        row = {f"emcodec {m}": entry_measures(d) for m, d in r["methods"].items()}
        bn = r.get("binning") or {}
        if bn.get("fits"):
            row["binning"] = entry_measures(bn)
        for name, b in r["baselines"].items():
            if "best_in_budget" in b:
                best = b["best_in_budget"]
                row[f"{name} ({b['knob']}={best['knob']:g})" if isinstance(best["knob"], (int, float))
                    else f"{name} ({b['knob']}={best['knob']})"] = entry_measures(best)
        out[r["B"]] = row
    return out


def _score(value: float, better: str) -> float:
    """Larger is better, whatever the measure."""
    if better == "higher":
        return value
    if better == "lower":
        return -value
    if better == "lower_abs":
        return -abs(value)
    return -abs(value - 1.0)


def _tied(a: float, b: float, tie, better: str = "higher") -> bool:
    """Under the margin: the difference of the scores (for "lower_abs" and "near1" the distance
    from 0 or 1, so -0.1 % and +0.1 % spacing error tie), a relative margin against the values."""
    kind, x = tie
    d = abs(_score(a, better) - _score(b, better))
    if kind == "abs":
        return d < x
    return d < x * max(abs(a), abs(b), 1e-12)


def _base(name: str) -> str:
    """A baseline's name without its setting, so seeds that pick other settings still pool."""
    return name.split(" (")[0]


def verdict(per_seed: list[dict]) -> list[dict]:
    """One entry per (B, measure): the winner, the best emcodec decoder against the best other
    contestant (means over seeds), the margin, and whether every seed agreed on the sign."""
    out = []
    for B in per_seed[0]:
        names = {}  # pooled name -> shown name (seed 0's setting)
        for seed in per_seed:
            for n in seed.get(B, {}):
                names.setdefault(_base(n), n)
        for key, label, unit, better, tie in MEASURES:
            values = {}
            for pooled, shown in names.items():
                vals = [m[key] for seed in per_seed for n, m in seed.get(B, {}).items()
                        if _base(n) == pooled and key in m]
                if len(vals) == len(per_seed):
                    values[shown] = vals
            if len(values) < 2:
                continue
            mean = {n: float(np.mean(v)) for n, v in values.items()}
            ranked = sorted(mean, key=lambda n: _score(mean[n], better), reverse=True)
            em = [n for n in ranked if n.startswith("emcodec ")]
            other = [n for n in ranked if not n.startswith("emcodec ")]
            entry = {"B": B, "measure": key, "label": label, "unit": unit, "better": better,
                     "tie_margin": list(tie), "seeds": len(per_seed), "values": mean,
                     "winner": ranked[0], "runner_up": ranked[1]}
            entry["tie"] = _tied(mean[ranked[0]], mean[ranked[1]], tie, better)
            if em and other:
                e, o = em[0], other[0]
                gain = _score(mean[e], better) - _score(mean[o], better)  # > 0: emcodec better
                per = [_score(values[e][i], better) - _score(values[o][i], better) for i in range(len(per_seed))]
                entry.update(best_emcodec=e, best_other=o, emcodec_value=mean[e], other_value=mean[o],
                             margin=gain, seeds_agree=bool(all(p > 0 for p in per) or all(p < 0 for p in per)),
                             outcome="tie" if _tied(mean[e], mean[o], tie, better) else ("wins" if gain > 0 else "loses"))
            out.append(entry)
    return out


def verdict_lines(entries: list[dict], freq_unit: str = "1/px", len_unit: str = "px") -> list[str]:
    """The verdict in words: one line per (B, measure); emcodec's losses said as losses."""
    lines = []
    for e in entries:
        if "outcome" not in e:
            continue
        unit = {"freq": f" {freq_unit}", "len": f" {len_unit}", "dB": " dB"}.get(e["unit"], "")
        fmt = ".3f" if e["unit"] in ("freq", "len", "fraction", "") else ".2f"
        ev, ov = format(e["emcodec_value"], fmt), format(e["other_value"], fmt)
        what = f"B={e['B']} {e['label']}:"
        diff = abs(e["margin"])  # in the measure's own sense: for the spacing error, of |error|
        pct = ".2f" if e["tie_margin"][0] == "abs" and e["tie_margin"][1] < 0.01 else ".1f"
        if e["unit"] == "fraction":  # fractions shown as percentages, finer where the margin is finer
            ev, ov = f"{100 * e['emcodec_value']:{pct}} %", f"{100 * e['other_value']:{pct}} %"
        by = f"{diff:.2f} dB" if e["unit"] == "dB" else (
            f"{100 * diff / max(abs(e['emcodec_value']), abs(e['other_value']), 1e-12):.0f} %"
            if e["tie_margin"][0] == "rel" else
            f"{100 * diff:{pct}} points" if e["unit"] == "fraction" else f"{diff:{fmt}}{unit}")
        seeds = "" if e["seeds"] < 2 else (" (every seed agrees)" if e["seeds_agree"] else " (seeds disagree)")
        if e["outcome"] == "tie":
            lines.append(f"{what} tie, {e['best_emcodec']} {ev}{unit} vs {e['best_other']} {ov}{unit}")
        elif e["outcome"] == "wins":
            lines.append(f"{what} {e['best_emcodec']} wins by {by}: {ev}{unit} vs {e['best_other']} {ov}{unit}{seeds}")
        else:
            lines.append(f"{what} emcodec LOSES by {by}: {e['best_other']} {ov}{unit} vs {e['best_emcodec']} "
                         f"{ev}{unit}{seeds}")
    return lines


def fit_noise(clean: np.ndarray, noisy: np.ndarray) -> tuple[float, float]:
    """(gain, read-noise variance) of var(noisy - clean) = gain * clean + read, by least squares
    over bins of the clean value: the detector model the extra seeds are drawn from."""
    c = np.asarray(clean, dtype=np.float64).ravel()
    r = np.asarray(noisy, dtype=np.float64).ravel() - c
    edges = np.unique(np.quantile(c, np.linspace(0, 1, 21)))
    idx = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, len(edges) - 2)
    mx = np.array([c[idx == i].mean() for i in range(len(edges) - 1) if (idx == i).sum() > 10])
    vy = np.array([r[idx == i].var() for i in range(len(edges) - 1) if (idx == i).sum() > 10])
    if len(mx) < 2 or np.ptp(mx) == 0:
        return max(float(vy.mean() / max(mx.mean(), 1e-12)), 1e-6), 0.0
    gain, read = np.polyfit(mx, vy, 1, w=1 / np.maximum(vy, 1e-12))  # a variance scatters in proportion to itself
    if gain <= 0:
        return 1e-6, max(float(vy.mean()), 0.0)
    return float(gain), max(float(read), 0.0)


def redraw_noise(clean: np.ndarray, noisy: np.ndarray, seed: int) -> np.ndarray:
    """Fresh noise around the clean frames with the noisy movie's fitted detector
    (scaled Poisson + Gaussian read noise), rounded and clipped to its dtype."""
    gain, read = fit_noise(clean, noisy)
    rng = np.random.default_rng(seed)
    c = np.maximum(np.asarray(clean, dtype=np.float64), 0)
    out = gain * rng.poisson(c / gain) + (rng.normal(0, math.sqrt(read), c.shape) if read > 0 else 0)
    dt = np.asarray(noisy).dtype
    if dt.kind in "ui":
        info = np.iinfo(dt)
        return np.clip(np.rint(out), info.min, info.max).astype(dt)
    return out.astype(dt)


def run_with_seeds(movie, config, seeds: int = DEFAULT_SEEDS, *, log=lambda s: None) -> dict:
    """run_benchmark on the movie, then on `seeds - 1` fresh noise draws (no encoder timing),
    with the verdict over all of them in report["verdict"]."""
    from .run import run_benchmark

    report = run_benchmark(movie, config, log=log)
    reports = [report]
    if seeds > 1 and movie.reference_kind != "clean":
        report["notes"].append(f"verdict on one noise realisation: {seeds} seeds need a noise-free reference "
                               "to draw fresh noise around")
    elif seeds > 1:
        quiet = replace(config, timing=False)
        for k in range(1, seeds):
            log(f"noise seed {k + 1} of {seeds}: fresh noise around the reference")
            other = copy.copy(movie)
            other.frames = redraw_noise(movie.reference, movie.frames, seed=1000 + k)
            other.notes = []
            reports.append(run_benchmark(other, quiet, log=log))
        gain, read = fit_noise(movie.reference, movie.frames)
        draws = f"{seeds - 1} fresh draw" + ("s" if seeds > 2 else "")
        report["notes"].append(f"verdict over {seeds} noise seeds: the movie as given, then {draws} "
                               f"(gain {gain:.3g} x Poisson + read noise variance {read:.3g}, fitted to it)")
    per_seed = [contestants(r) for r in reports]
    report["verdict"] = {"seeds": len(reports), "rule": "each baseline at its PSNR-best setting within the "
                         "budget, held for every measure; means over seeds; under 0.2 dB, 2 % (or the "
                         "measure's absolute margin) is a tie", "entries": verdict(per_seed),
                         "per_seed": per_seed}
    return report
