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
    print_verdict(report, console)
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
    print_science(report, console)
    print_temporal(report, console)
    if "raw_frames" in report:
        console.print(f"raw (noisy) frames against the reference: PSNR {_fmt(report['raw_frames']['psnr'])} dB, "
                      f"SSIM {_fmt(report['raw_frames']['ssim'], '.3f')}")
    for line in encoder_cost_lines(report):
        console.print(line)
    for note in report["notes"] + reading_notes(report):
        console.print(f"note: {note}")
    for r in report["results"]:
        for name, b in r["baselines"].items():
            if "note" in b:
                console.print(f"note: {_setting(r)} {name}: {b['note']}")


def encoder_cost_lines(report: dict) -> list[str]:
    """One plain sentence per setting: emcodec's encoder CPU and what each baseline takes against it."""
    cost = report.get("encoder_cost")
    lines = []
    for row in (cost or {}).get("per_B", []):
        parts = [f"{name} takes {_fmt(v['ratio_to_emcodec'], '.1f')}x that" for name, v in row["baselines"].items()]
        bars = [f"{name} bar {'holds' if v['holds'] else 'FAILS'}" for name, v in row["bars"].items()]
        lines.append(f"encoder CPU at {_setting(row)}: emcodec {_fmt(1e3 * row['emcodec'], '.3f')} ms/frame"
                     + (f"; {', '.join(parts)}" if parts else "; no baseline fits this budget")
                     + (f" ({'; '.join(bars)})" if bars else ""))
    return lines


KNOB_MEANINGS = {
    "quality": "JPEG quality 1-100: higher keeps more, takes more bytes",
    "psnr_target_db": "JPEG 2000 target PSNR of the layer in dB: higher takes more bytes",
    "distance": "JPEG XL butteraugli distance: lower keeps more, takes more bytes",
    "crf": "video constant rate factor (H.264/H.265 0-51, AV1 0-63): lower keeps more, takes more bytes",
    "step": "binning's quantiser step in noise standard deviations (off = exact sums): smaller takes more bytes",
}


def reading_notes(report: dict) -> list[str]:
    """How to read the table: what PSNR rewards, and what each settings column means."""
    notes = []
    if report["reference"]["kind"] != "raw":
        notes.append("PSNR and SSIM against noise-free frames reward denoising: a codec that smooths the noise "
                     "away scores well even where it also smooths the specimen; the lattice, FRC and column "
                     "measures say what survives")
    else:
        notes.append("the reference is the raw (noisy) frames: PSNR rewards reproducing the noise, and a "
                     "denoising decoder loses for what makes it useful")
    knobs = {b["knob"] for r in report["results"] for b in r["baselines"].values()}
    if any(r.get("binning") for r in report["results"]):
        knobs.add("step")
    notes.extend(f"setting {k}: {KNOB_MEANINGS[k]}" for k in sorted(knobs) if k in KNOB_MEANINGS)
    notes.append("emcodec's setting: B = frames summed per measurement, q = its quantiser (auto: one noise "
                 "standard deviation per step; off: exact)")
    return notes


def science_rows(report: dict) -> list[tuple]:
    """(B, codec, science dict) for every scored method, binning, baseline (at its PSNR-best
    setting within the budget) and the raw frames."""
    rows = []
    for r in report["results"]:
        for method, d in r["methods"].items():
            if "science" in d:
                rows.append((r["B"], f"emcodec {method}", d["science"]))
        bn = r.get("binning") or {}
        if "science" in bn:
            rows.append((r["B"], f"binning step={_knob(bn['step'])}", bn["science"]))
        for name, b in r["baselines"].items():
            best = b.get("best_in_budget", {})
            if "science" in best:
                rows.append((r["B"], f"{name} {b['knob']}={_knob(best['knob'])}", best["science"]))
    if "science" in report.get("raw_frames", {}):
        rows.append(("-", "raw noisy frames", report["raw_frames"]["science"]))
    return rows


def science_cells(s: dict) -> list[str]:
    """Table cells: lattice kept-up-to, median cross-power, amplified peaks, FRC, columns."""
    lat, frc, col = s.get("lattice", {}), s.get("frc", {}), s.get("columns", {})
    if "kept_freq" in lat:
        kept = f"{_fmt(lat['kept_freq'], '.3f')}" + (" (all)" if lat["all_kept"] else "")
        cells = [kept, _fmt(lat["median_cross_power"]), str(lat["amplified"])]
    else:
        cells = ["-", "-", "-"]
    cells.append(_fmt(frc.get("freq"), ".3f"))
    if "rms_displacement" in col:
        cells += [_fmt(col["rms_displacement"], ".3f"), f"{100 * col['missed']:.1f}", f"{100 * col['invented']:.1f}",
                  f"{100 * col['intensity_error']:.1f}", f"{100 * col['spacing_error']:+.2f}"]
    else:
        cells += ["-"] * 5
    return cells


SCIENCE_COLUMNS = ("lattice kept ≤", "Bragg x-power", "amplified", "FRC 0.5", "col RMS", "missed %", "invented %",
                   "col int err %", "spacing err %")


def print_science(report: dict, console) -> None:
    """Lattice, resolution and atom columns per codec (emcodec/bench/science.py)."""
    from rich.table import Table

    rows = science_rows(report)
    if not rows:
        return
    st = report.get("science_settings", {})
    unit = st.get("unit", "1/px and px")
    table = Table(title=f"what a microscopist measures ({unit}; {st.get('bragg_peaks', 0)} Bragg peaks in the "
                        "reference; baselines at their PSNR-best setting within the budget)")
    for col in ("B", "codec") + SCIENCE_COLUMNS:
        table.add_column(col, justify="left" if col == "codec" else "right")
    for B, name, s in rows:
        table.add_row(str(B), name, *science_cells(s))
    console.print(table)
    cols = st.get("columns", {})
    if cols and not cols.get("resolved", True):
        console.print(f"atom columns not scored: {cols.get('reason')}")


def print_verdict(report: dict, console) -> None:
    """The verdict first: per B and measure, who wins at the same bytes (emcodec/bench/verdict.py)."""
    v = report.get("verdict")
    if not v:
        return
    from .verdict import verdict_lines

    unit = "1/Å" if report.get("science_settings", {}).get("unit", "").startswith("1/Å") else "1/px"
    console.print(f"[bold]verdict[/bold] ({v['seeds']} noise seed{'s' if v['seeds'] > 1 else ''}; {v['rule']}):")
    for line in verdict_lines(v["entries"], unit, unit[2:]):
        console.print(f"  {line}")


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
        for name, b in r["baselines"].items():
            best = b.get("best_in_budget", {})
            if "temporal" in best:
                rows.append((r["B"], f"{name} {b['knob']}={_knob(best['knob'])}", best["temporal"]))
    return rows


def print_temporal(report: dict, console) -> None:
    """Sawtooth, boundary flicker and motion fidelity (emcodec/bench/temporal.py)."""
    from rich.table import Table

    rows = temporal_rows(report)
    if not rows:
        return
    events = any("events" in t for _, _, t in rows)  # simulator movies with known events
    table = Table(title="temporal yardsticks (1.0 / 0 dB = like the reference)")
    for col in ("B", "codec", "sawtooth dB", "boundary flicker", "motion slope", "motion energy"):
        table.add_column(col, justify="left" if col == "codec" else "right")
    if events:
        table.add_column("events kept/leak (1/0 = like the reference)", justify="left")
    for B, name, t in rows:
        cells = [_fmt(t.get("sawtooth_db")), _fmt(t.get("boundary_flicker")), _fmt(t.get("motion_slope")),
                 _fmt(t.get("motion_energy"))]
        if events:
            cells.append(", ".join(f"{kind} {_fmt(e['kept'])}/{_fmt(e['leak'])}"
                                   for kind, e in t.get("events", {}).items()) or "-")
        table.add_row(str(B), name, *cells)
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


def write_plot(report: dict, movie, path, *, force: bool = True) -> None:
    """The PNG: rate-distortion, per-frame PSNR and the panels of every B (emcodec/bench/figure.py)."""
    from .figure import write_plot as _write

    _write(report, movie, path, force=force)


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
    cost = report.get("encoder_cost") or {"per_B": []}
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


def science_markdown(report: dict) -> str:
    """The lattice, resolution and column table (and the verdict) as Markdown, for docs/BENCHMARKS.md."""
    st = report.get("science_settings", {})
    out = ""
    v = report.get("verdict")
    if v:
        from .verdict import verdict_lines

        unit = "1/Å" if st.get("unit", "").startswith("1/Å") else "1/px"
        out += f"Verdict ({v['seeds']} noise seeds):\n\n" + "".join(
            f"- {line}\n" for line in verdict_lines(v["entries"], unit, unit[2:])) + "\n"
    rows = science_rows(report)
    if rows:
        out += ("| B | codec | " + " | ".join(SCIENCE_COLUMNS) + " |\n|" + "---|" * (len(SCIENCE_COLUMNS) + 2) + "\n")
        for B, name, s in rows:
            out += f"| {B} | {name} | " + " | ".join(science_cells(s)) + " |\n"
    return out
