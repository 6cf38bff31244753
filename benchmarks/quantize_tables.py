"""The quantiser's rate-distortion tables of docs/BENCHMARKS.md, read from rate_distortion.py's JSON.

    python benchmarks/rate_distortion.py --vs jpeg,jpegxl,av1 --method tcsdl --quantize off,0.5,auto,2 --out bench-q
    python benchmarks/quantize_tables.py bench-q

One table per movie: each B and --quantize setting with its .tcs bytes, TCS-DL's PSNR/SSIM,
the baselines' PSNR at matched bytes (and AV1's best within the budget), and the encoder
CPU per frame of the same run with JPEG's CPU at its matched quality over emcodec's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ("sample", "sim-atomic-dose10", "still-dose20", "still-dose100")


def _psnr(entry: dict | None) -> str:
    return "n/a" if not entry or entry.get("psnr") is None else f"{entry['psnr']:.2f}"


def table(name: str, report: dict) -> str:
    movie, raw = report["movie"], report["raw_frames"]
    cost = {(r["B"], str(r["quantize"])): r for r in report["encoder_cost"]["per_B"]}
    lines = [f"**{name}** ({movie['frames']} frames of {movie['height']}x{movie['width']}; "
             f"raw noisy frames {raw['psnr']:.2f} dB)", "",
             "| B | --quantize | bytes | bits/px | TCS-DL PSNR / SSIM | AV1 matched | AV1 best within budget "
             "| JPEG XL matched | JPEG matched | emcodec enc CPU ms/frame | JPEG CPU / emcodec |",
             "|" + "---|" * 11]
    for r in report["results"]:
        base, tcsdl = r["baselines"], r["methods"].get("tcsdl", {})
        c = cost[(r["B"], str(r["quantize"]))]
        jpeg = c["baselines"].get("jpeg")
        lines.append(
            f"| {r['B']} | {r['quantize']} | {r['emcodec']['bytes']} | {r['emcodec']['bpp']:.3f} "
            f"| {tcsdl.get('psnr', float('nan')):.2f} / {tcsdl.get('ssim', float('nan')):.3f} "
            f"| {_psnr(base.get('av1', {}).get('matched'))} | {_psnr(base.get('av1', {}).get('best_in_budget'))} "
            f"| {_psnr(base.get('jpegxl', {}).get('matched'))} | {_psnr(base.get('jpeg', {}).get('matched'))} "
            f"| {1e3 * c['emcodec']:.3f} | {'n/a' if jpeg is None else format(jpeg['ratio_to_emcodec'], '.2f') + 'x'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    folder = Path((argv if argv is not None else sys.argv[1:] or ["bench-q"])[0])
    reports = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    names = [n for n in ORDER if n in reports] + sorted(set(reports) - set(ORDER))
    if not names:
        print(f"no rate_distortion JSON files in {folder}", file=sys.stderr)
        return 1
    print("\n\n".join(table(n, reports[n]) for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
