"""The benchmark's three outputs: a rich table, a JSON file with every number, a PNG figure."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..atomic import AtomicFile


def _fmt(v, spec: str = ".2f") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not math.isfinite(v):
        return "inf" if v > 0 else ("-inf" if v < 0 else "nan")
    return format(v, spec)


def _knob(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) else str(v)


def _setting(r: dict) -> str:
    """emcodec's setting at one point: B and the quantiser (older reports have no quantiser)."""
    return f"B={r['B']}" + (f" q={r['quantize']}" if "quantize" in r else "")


def print_report(report: dict, console=None) -> None:
    """The table a microscopist reads: every method and baseline per B, then the encoder cost."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # a file or a pipe: do not squeeze the table into 80 columns
            console = Console(width=170)
    mv, ref = report["movie"], report["reference"]
    console.print(f"[bold]emcodec benchmark[/bold]: {mv['source']}, {mv['frames']} frames of "
                  f"{mv['height']}x{mv['width']} {mv['dtype']}; reference: {ref['description']}")
    table = Table(show_lines=False)
    for col, just in [("B", "right"), ("codec", "left"), ("setting", "left"), ("bytes", "right"),
                      ("bits/px", "right"), ("ratio", "right"), ("PSNR", "right"), ("SSIM", "right"),
                      ("best PSNR ≤ budget", "right"), ("enc CPU\nms/frame", "right"), ("enc\nfps", "right"),
                      ("dec\nfps", "right")]:
        table.add_column(col, justify=just)
    for r in report["results"]:
        e = r["emcodec"]
        for i, (method, d) in enumerate(r["methods"].items()):
            table.add_row(str(r["B"]) if i == 0 else "", f"emcodec {method}", _setting(r), str(e["bytes"]),
                          _fmt(e["bpp"], ".3f"), _fmt(e["ratio"], ".1f"), _fmt(d["psnr"]), _fmt(d["ssim"], ".3f"),
                          "", _fmt(1e3 * e["encode_cpu_s_per_frame"], ".3f"), _fmt(e["encode_fps"], ".0f"),
                          _fmt(d["decode_fps"], ".2f"))
        if not r["methods"]:
            table.add_row(str(r["B"]), "emcodec (not decoded)", _setting(r), str(e["bytes"]), _fmt(e["bpp"], ".3f"),
                          _fmt(e["ratio"], ".1f"), "", "", "", _fmt(1e3 * e["encode_cpu_s_per_frame"], ".3f"),
                          _fmt(e["encode_fps"], ".0f"), "")
        bn = r.get("binning")
        if bn and bn.get("fits"):
            table.add_row("", "binning", f"step={_knob(bn['step'])}", str(bn["bytes"]), _fmt(bn["bpp"], ".3f"),
                          _fmt(bn["ratio"], ".1f"), _fmt(bn["psnr"]), _fmt(bn["ssim"], ".3f"), "", "", "", "")
        elif bn:
            table.add_row("", "binning", "cannot fit", str(bn["tried"][-1]["bytes"]), "", "", "", "", "", "", "", "")
        for name, b in r["baselines"].items():
            if "matched" not in b:
                table.add_row("", name, "cannot fit", str(b["smallest_bytes"]), "", "", "", "", "", "", "", "")
                continue
            m, best = b["matched"], b["best_in_budget"]
            flag = "" if m["fraction_of_budget"] >= 0.9 else (" (step)" if b["within_tolerance"] else " (<90%)")
            table.add_row("", name, f"{b['knob']}={_knob(m['knob'])}{flag}", str(m["bytes"]), _fmt(m["bpp"], ".3f"),
                          _fmt(m["ratio"], ".1f"), _fmt(m["psnr"]), _fmt(m["ssim"], ".3f"),
                          f"{_fmt(best['psnr'])} ({b['knob']}={_knob(best['knob'])})",
                          _fmt(1e3 * m["encode_cpu_s_per_frame"], ".3f"), _fmt(m["encode_fps"], ".0f"),
                          _fmt(m["decode_fps"], ".1f"))
        table.add_section()
    console.print(table)
    print_temporal(report, console)
    if "raw_frames" in report:
        console.print(f"raw (noisy) frames against the reference: PSNR {_fmt(report['raw_frames']['psnr'])} dB, "
                      f"SSIM {_fmt(report['raw_frames']['ssim'], '.3f')}")
    cost = report["encoder_cost"]
    for row in cost["per_B"]:
        parts = [f"{name} {_fmt(v['ratio_to_emcodec'], '.1f')}x" for name, v in row["baselines"].items()]
        bars = [f"{name}: {'holds' if v['holds'] else 'FAILS'}" for name, v in row["bars"].items()]
        console.print(f"encoder CPU, {_setting(row)}: emcodec {_fmt(1e3 * row['emcodec'], '.3f')} ms/frame; "
                      f"baselines cost {', '.join(parts) or '-'} as much" + (f" [{'; '.join(bars)}]" if bars else ""))
    for note in report["notes"]:
        console.print(f"note: {note}")
    for r in report["results"]:
        for name, b in r["baselines"].items():
            if "note" in b:
                console.print(f"note: {_setting(r)} {name}: {b['note']}")


def temporal_rows(report: dict) -> list[tuple]:
    """(B, codec, yardsticks) for every scored method and binning that has them."""
    rows = []
    for r in report["results"]:
        for method, d in r["methods"].items():
            if "temporal" in d:
                rows.append((r["B"], f"emcodec {method}", d["temporal"]))
        bn = r.get("binning") or {}
        if "temporal" in bn:
            rows.append((r["B"], "binning", bn["temporal"]))
    return rows


def print_temporal(report: dict, console) -> None:
    """Sawtooth, boundary flicker and motion fidelity (emcodec/bench/temporal.py)."""
    from rich.table import Table

    rows = temporal_rows(report)
    if not rows:
        return
    table = Table(title="temporal yardsticks (1.0 / 0 dB = like the reference)")
    for col in ("B", "codec", "sawtooth dB", "boundary flicker", "motion slope", "motion energy"):
        table.add_column(col, justify="left" if col == "codec" else "right")
    for B, name, t in rows:
        table.add_row(str(B), name, _fmt(t.get("sawtooth_db")), _fmt(t.get("boundary_flicker")),
                      _fmt(t.get("motion_slope")), _fmt(t.get("motion_energy")))
    console.print(table)


def _clean(value):
    """JSON-able: private keys (`_frames`) dropped, numpy scalars unwrapped, inf/nan as strings."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if isinstance(value, Path):
        return str(value)
    return value


def to_json(report: dict) -> dict:
    return _clean(report)


def write_json(report: dict, path, *, force: bool = True) -> None:
    with AtomicFile(path, force=force) as f:
        f.write((json.dumps(to_json(report), indent=2) + "\n").encode("utf-8"))


def _spectrum(frame: np.ndarray) -> np.ndarray:
    """log |FFT| under a Hann window, so the frame's edges do not draw a cross over the spectrum."""
    f = np.asarray(frame, dtype=np.float64)
    win = np.outer(np.hanning(f.shape[0]), np.hanning(f.shape[1]))
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2((f - f.mean()) * win))))


def write_plot(report: dict, movie, path, *, force: bool = True) -> None:
    """PSNR against bits per pixel for every method and B, and a frame/FFT panel (paper, Fig. 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panel = report["results"][0] if report["results"] else None
    for r in report["results"]:
        if any("_frames" in d for d in list(r["methods"].values()) + list(r["baselines"].values())):
            panel = r
            break
    panels = []  # (title, frame)
    idx = len(movie.frames) // 2
    if movie.reference_kind != "raw":
        panels.append(("reference", movie.reference[idx]))
    panels.append(("raw", movie.frames[idx]))
    for r in report["results"]:
        if r is not panel:
            continue
        for method, d in r["methods"].items():
            if "_frames" in d:
                panels.append((f"emcodec {method}, {_setting(r)}\n{_fmt(d['psnr'])} dB", d["_frames"][idx]))
        names = list(r["baselines"])
        pick = "jpeg" if "jpeg" in names else (names[0] if names else None)
        if pick and "_frames" in r["baselines"][pick]:
            b = r["baselines"][pick]
            panels.append((f"{pick} at matched bytes\n{_fmt(b['matched']['psnr'])} dB", b["_frames"][idx]))

    cols = max(len(panels), 3)
    fig = plt.figure(figsize=(3.0 * cols, 11.5))
    grid = fig.add_gridspec(3, cols, height_ratios=[1.6, 1, 1])
    ax = fig.add_subplot(grid[0, :])
    series: dict[str, list] = {}
    best: dict[str, list] = {}
    several = len({r.get("quantize") for r in report["results"]}) > 1
    for r in report["results"]:
        for method, d in r["methods"].items():
            label = f"emcodec {method}" + (f" quantize {r['quantize']}" if several else "")
            series.setdefault(label, []).append((r["emcodec"]["bpp"], d["psnr"], r["B"]))
        for name, b in r["baselines"].items():
            if "matched" in b:
                series.setdefault(name, []).append((b["matched"]["bpp"], b["matched"]["psnr"], r["B"]))
                best.setdefault(name, []).append((b["best_in_budget"]["bpp"], b["best_in_budget"]["psnr"], r["B"]))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (label, pts) in enumerate(series.items()):
        pts = sorted(p for p in pts if math.isfinite(p[1]))
        if not pts:
            continue
        c = colors[i % len(colors)]
        marker = "o" if label.startswith("emcodec") else "s"
        if several and label.startswith("emcodec"):
            marker = "o^vD<>"[sorted(s for s in series if s.startswith("emcodec")).index(label) % 6]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=marker, color=c, label=f"{label} (matched)"
                if not label.startswith("emcodec") else label)
        for x, y, B in pts:
            ax.annotate(f"B={B}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7, color=c)
        if label in best:
            bp = sorted(p for p in best[label] if math.isfinite(p[1]))
            ax.plot([p[0] for p in bp], [p[1] for p in bp], marker=marker, mfc="none", ls=":", color=c,
                    label=f"{label} (best PSNR within budget)")
    if "raw_frames" in report and math.isfinite(report["raw_frames"]["psnr"]):
        ax.axhline(report["raw_frames"]["psnr"], color="gray", ls="--", lw=1, label="raw noisy frames")
    mv = report["movie"]
    ax.set_xlabel("bits per pixel per frame (actual bytes on disk)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{mv['source']}: {mv['frames']}x{mv['height']}x{mv['width']} {mv['dtype']}; "
                 f"reference: {report['reference']['kind']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    lo, hi = np.percentile(movie.reference[idx], [0.5, 99.5])
    for j, (title, frame) in enumerate(panels[:cols]):
        a = fig.add_subplot(grid[1, j])
        a.imshow(frame, cmap="gray", vmin=lo, vmax=hi)
        a.set_title(title, fontsize=8)
        a.axis("off")
        a = fig.add_subplot(grid[2, j])
        a.imshow(_spectrum(frame), cmap="magma")
        a.set_title("log |FFT|", fontsize=8)
        a.axis("off")
    fig.tight_layout()
    with AtomicFile(path, force=force) as f:
        fig.savefig(f, format="png", dpi=90)
    plt.close(fig)


def markdown_tables(report: dict) -> str:
    """The rate-distortion and encoder-cost tables as Markdown, for docs/BENCHMARKS.md."""
    lines = ["| B | codec | setting | bytes | bits/px | ratio | PSNR dB | SSIM | best PSNR ≤ budget (setting) "
             "| enc CPU ms/frame | enc fps | dec fps |", "|" + "---|" * 12]
    for r in report["results"]:
        e = r["emcodec"]
        for method, d in r["methods"].items():
            lines.append(f"| {r['B']} | **emcodec {method}** | {_setting(r)} | {e['bytes']} | {_fmt(e['bpp'], '.3f')} | "
                         f"{_fmt(e['ratio'], '.1f')} | {_fmt(d['psnr'])} | {_fmt(d['ssim'], '.3f')} | | "
                         f"{_fmt(1e3 * e['encode_cpu_s_per_frame'], '.3f')} | {_fmt(e['encode_fps'], '.0f')} | "
                         f"{_fmt(d['decode_fps'], '.2f')} |")
        bn = r.get("binning")
        if bn and bn.get("fits"):
            lines.append(f"| {r['B']} | binning | step={_knob(bn['step'])} | {bn['bytes']} | {_fmt(bn['bpp'], '.3f')} | "
                         f"{_fmt(bn['ratio'], '.1f')} | {_fmt(bn['psnr'])} | {_fmt(bn['ssim'], '.3f')} | | | | |")
        for name, b in r["baselines"].items():
            if "matched" not in b:
                lines.append(f"| {r['B']} | {name} | cannot fit (fewest: {b['smallest_bytes']} bytes) | | | | | | | | | |")
                continue
            m, best = b["matched"], b["best_in_budget"]
            pct = f" ({m['fraction_of_budget']:.0%})" if m["fraction_of_budget"] < 0.9 else ""
            lines.append(f"| {r['B']} | {name} | {b['knob']}={_knob(m['knob'])} | {m['bytes']}{pct} | "
                         f"{_fmt(m['bpp'], '.3f')} | {_fmt(m['ratio'], '.1f')} | {_fmt(m['psnr'])} | "
                         f"{_fmt(m['ssim'], '.3f')} | {_fmt(best['psnr'])} ({_knob(best['knob'])}) | "
                         f"{_fmt(1e3 * m['encode_cpu_s_per_frame'], '.3f')} | {_fmt(m['encode_fps'], '.0f')} | "
                         f"{_fmt(m['decode_fps'], '.1f')} |")
    out = "\n".join(lines) + "\n"
    cost = report["encoder_cost"]
    names = sorted({n for row in cost["per_B"] for n in row["baselines"]},
                   key=lambda n: list(report["settings"]["baselines"]).index(n))
    if names:
        out += ("\n| setting | emcodec CPU ms/frame | " + " | ".join(f"{n} ms/frame (x emcodec)" for n in names)
                + " | bars |\n|" + "---|" * (len(names) + 3) + "\n")
        for row in cost["per_B"]:
            cells = []
            for n in names:
                v = row["baselines"].get(n)
                cells.append(f"{_fmt(1e3 * v['cpu_s_per_frame'], '.3f')} ({_fmt(v['ratio_to_emcodec'], '.2f')}x)"
                             if v else "-")
            bars = "; ".join(f"{k}: {'holds' if v['holds'] else 'fails'} ({_fmt(v['ratio'], '.2f')}x)"
                             for k, v in row["bars"].items())
            out += f"| {_setting(row)} | {_fmt(1e3 * row['emcodec'], '.3f')} | " + " | ".join(cells) + f" | {bars or '-'} |\n"
    return out
