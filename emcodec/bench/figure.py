"""The benchmark's and the demo's pictures (matplotlib, Agg): rate-distortion, per-frame PSNR,
and frame / error / power-spectrum panels for every B and the best baseline at its budget."""

from __future__ import annotations

import math

import numpy as np

from ..atomic import AtomicFile
from ..metrics import psnr_frames


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def spectrum(frame: np.ndarray) -> np.ndarray:
    """log |FFT| under a Hann window, so the frame's edges do not draw a cross over the spectrum."""
    f = np.asarray(frame, dtype=np.float64)
    win = np.outer(np.hanning(f.shape[0]), np.hanning(f.shape[1]))
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((f - f.mean()) * win))))


def _knob(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def _best_baseline(r: dict):
    """(name, entry) of the baseline whose PSNR-best setting within this budget scores highest."""
    best = [(n, b) for n, b in r["baselines"].items() if "best_in_budget" in b]
    return max(best, key=lambda nb: nb[1]["best_in_budget"]["psnr"]) if best else (None, None)


def _rd_axes(ax, report: dict) -> None:
    """PSNR against bits/px: emcodec joined in order of B; each baseline's scanned settings as
    its own curve (sorted by bytes, so no zig-zag), matched and best-in-budget points marked."""
    colors = __import__("matplotlib").rcParams["axes.prop_cycle"].by_key()["color"]
    several = len({r.get("quantize") for r in report["results"]}) > 1
    series: dict[str, list] = {}
    for r in report["results"]:
        for method, d in r["methods"].items():
            label = f"emcodec {method}" + (f" quantize {r['quantize']}" if several else "")
            series.setdefault(label, []).append((r["B"], r["emcodec"]["bpp"], d["psnr"]))
        bn = r.get("binning") or {}
        if bn.get("fits"):
            series.setdefault("binning", []).append((r["B"], bn["bpp"], bn["psnr"]))
    i = 0
    for label, pts in series.items():
        pts = sorted(p for p in pts if math.isfinite(p[2]))
        if not pts:
            continue
        c = colors[i % len(colors)]
        i += 1
        ax.plot([p[1] for p in pts], [p[2] for p in pts], marker="o", color=c, label=f"{label} (B in order)")
        for B, x, y in pts:
            ax.annotate(f"B={B}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=c)
    n_px = report["movie"]["frames"] * report["movie"]["height"] * report["movie"]["width"]
    names = list(dict.fromkeys(n for r in report["results"] for n in r["baselines"]))
    for name in names:
        c = colors[i % len(colors)]
        i += 1
        scan = {}
        matched, best = [], []
        for r in report["results"]:
            b = r["baselines"].get(name, {})
            for s in b.get("scan", []):
                scan[s["knob"]] = (8 * s["bytes"] / n_px, s["psnr"])
            if "matched" in b:
                matched.append((b["matched"]["bpp"], b["matched"]["psnr"]))
                best.append((b["best_in_budget"]["bpp"], b["best_in_budget"]["psnr"]))
        if not matched:
            continue
        curve = sorted(v for v in scan.values() if math.isfinite(v[1]))
        if curve:
            ax.plot([p[0] for p in curve], [p[1] for p in curve], ls=":", lw=1, color=c, label=f"{name} (settings scanned)")
        ax.plot(*zip(*matched), ls="none", marker="s", color=c, label=f"{name} at matched bytes")
        ax.plot(*zip(*best), ls="none", marker="s", mfc="none", ms=9, color=c, label=f"{name} best PSNR within budget")
    if "raw_frames" in report and math.isfinite(report["raw_frames"]["psnr"]):
        ax.axhline(report["raw_frames"]["psnr"], color="gray", ls="--", lw=1, label="raw noisy frames")
    mv = report["movie"]
    ax.set_xlabel("bits per pixel per frame (actual bytes on disk)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{mv['source']}: {mv['frames']}x{mv['height']}x{mv['width']} {mv['dtype']}; reference: "
                 f"{report['reference']['kind']} (PSNR against noise-free frames rewards denoising)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _per_frame_axes(ax, r: dict, n_frames: int) -> None:
    """Per-frame PSNR at one B: every method, binning and the best baseline, group boundaries dashed."""
    t = np.arange(n_frames)
    for method, d in r["methods"].items():
        ax.plot(t, d["psnr_frames"], lw=1, label=f"emcodec {method}")
    bn = r.get("binning") or {}
    if "psnr_frames" in bn:
        ax.plot(t, bn["psnr_frames"], lw=1, color="gray", label="binning")
    name, b = _best_baseline(r)
    if name and "psnr_frames" in b["best_in_budget"]:
        ax.plot(t, b["best_in_budget"]["psnr_frames"], lw=1, ls="--", color="k",
                label=f"{name} {b['knob']}={_knob(b['best_in_budget']['knob'])}")
    for g in range(r["B"], n_frames, r["B"]):
        ax.axvline(g - 0.5, color="0.7", lw=0.8, ls=":")
    ax.set_title(f"B={r['B']}: PSNR per frame (dotted: group boundaries)", fontsize=8)
    ax.set_xlabel("frame", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)


def _panels(report: dict, movie, r: dict) -> list[tuple[str, np.ndarray]]:
    """(title, middle frame) for one B: reference, raw, each method, binning, the best baseline."""
    idx = len(movie.frames) // 2
    out = []
    if movie.reference_kind != "raw":
        out.append(("reference", movie.reference[idx]))
    out.append(("raw", movie.frames[idx]))
    for method, d in r["methods"].items():
        if "_panel" in d:
            out.append((f"emcodec {method}\n{d['psnr']:.2f} dB", d["_panel"]))
    bn = r.get("binning") or {}
    if "_panel" in bn:
        out.append((f"binning\n{bn['psnr']:.2f} dB", bn["_panel"]))
    name, b = _best_baseline(r)
    if name and "_panel" in b["best_in_budget"]:
        best = b["best_in_budget"]
        out.append((f"{name} {b['knob']}={_knob(best['knob'])}\n(best baseline) {best['psnr']:.2f} dB", best["_panel"]))
    return out


def write_plot(report: dict, movie, path, *, force: bool = True) -> None:
    """Rate-distortion, per-frame PSNR per B, then for every B a frame / error / spectrum panel row."""
    plt = _plt()
    results = [r for r in report["results"] if r["methods"] or r["baselines"]]
    firsts = list({r["B"]: r for r in reversed(results)}.values())[::-1]  # first setting of each B
    blocks = [(r, _panels(report, movie, r)) for r in firsts]
    cols = max([3, len(firsts)] + [len(p) for _, p in blocks])  # one per-frame PSNR axes per B at least
    n_rows = 2 + 3 * len(blocks)
    fig = plt.figure(figsize=(2.6 * cols, 4.5 + 3.0 + 2.5 * 3 * len(blocks)))
    grid = fig.add_gridspec(n_rows, cols, height_ratios=[1.8, 1.2] + [1] * (3 * len(blocks)), hspace=0.35,
                            wspace=0.08, left=0.04, right=0.98, top=0.98, bottom=0.01)
    _rd_axes(fig.add_subplot(grid[0, :max(1, cols - 2)]), report)
    per = max(1, cols // max(1, len(firsts)))
    for k, r in enumerate(firsts):
        if r["methods"]:
            _per_frame_axes(fig.add_subplot(grid[1, k * per:min(cols, (k + 1) * per)]), r, len(movie.frames))
    idx = len(movie.frames) // 2
    lo, hi = np.percentile(movie.reference[idx], [0.5, 99.5])
    err = 3 * float(np.std(movie.frames[idx].astype(np.float64) - movie.reference[idx])) or 1.0
    for b, (r, panels) in enumerate(blocks):
        row = 2 + 3 * b
        specs = [spectrum(f) for _, f in panels]
        slo, shi = np.percentile(specs[0], [1, 99.9])
        for j, (title, frame) in enumerate(panels[:cols]):
            a = fig.add_subplot(grid[row, j])
            a.imshow(frame, cmap="gray", vmin=lo, vmax=hi)
            a.set_title(f"B={r['B']} {title}", fontsize=7)
            a.axis("off")
            a = fig.add_subplot(grid[row + 1, j])
            a.imshow(np.asarray(frame, dtype=np.float64) - movie.reference[idx], cmap="coolwarm", vmin=-err, vmax=err)
            a.set_title("error (decoded - reference)", fontsize=7)
            a.axis("off")
            a = fig.add_subplot(grid[row + 2, j])
            a.imshow(specs[j], cmap="magma", vmin=slo, vmax=shi)
            a.set_title("log power spectrum", fontsize=7)
            a.axis("off")
    with AtomicFile(path, force=force) as f:  # tight: the legend outside the axes is kept whole
        fig.savefig(f, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)


def write_demo_plot(path, clean: np.ndarray, noisy: np.ndarray, decoded: dict, B: int, *, force: bool = True) -> None:
    """The demo's picture: noisy and noise-free frame, each decode, their power spectra, and
    the per-frame PSNR of each against the noise-free frames (group boundaries dotted)."""
    plt = _plt()
    idx = len(clean) // 2
    panels = [("noisy frame", noisy[idx]), ("noise-free frame", clean[idx])]
    panels += [(f"decoded: {m}", d[idx]) for m, d in decoded.items()]
    cols = len(panels)
    fig = plt.figure(figsize=(2.8 * cols, 9))
    grid = fig.add_gridspec(3, cols, height_ratios=[1, 1, 1.1])
    lo, hi = np.percentile(clean[idx], [0.5, 99.5])
    specs = [spectrum(f) for _, f in panels]
    slo, shi = np.percentile(specs[1], [1, 99.9])
    for j, (title, frame) in enumerate(panels):
        a = fig.add_subplot(grid[0, j])
        a.imshow(frame, cmap="gray", vmin=lo, vmax=hi)
        a.set_title(title, fontsize=8)
        a.axis("off")
        a = fig.add_subplot(grid[1, j])
        a.imshow(specs[j], cmap="magma", vmin=slo, vmax=shi)
        a.set_title("log power spectrum", fontsize=8)
        a.axis("off")
    ax = fig.add_subplot(grid[2, :])
    t = np.arange(len(clean))
    ax.plot(t, np.minimum(psnr_frames(clean, noisy), 200), color="gray", lw=1, label="noisy frames")
    for m, d in decoded.items():
        ax.plot(t, np.minimum(psnr_frames(clean, d), 200), lw=1, label=m)
    for g in range(B, len(clean), B):
        ax.axvline(g - 0.5, color="0.7", lw=0.8, ls=":")
    ax.set_xlabel("frame (dotted: group boundaries)")
    ax.set_ylabel("PSNR against noise-free (dB)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with AtomicFile(path, force=force) as f:
        fig.savefig(f, format="png", dpi=72, bbox_inches="tight")
    plt.close(fig)
