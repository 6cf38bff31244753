"""The TCS-DL quality bar of issue 3, read from rate_distortion.py's JSON files.

    python benchmarks/rate_distortion.py --out bench-results    # writes bench-results/*.json
    python benchmarks/quality_bar.py bench-results               # prints the Markdown table

Per movie and B: TCS-DL, GAP-TV and JPEG at matched bytes (PSNR dB / SSIM), the best PSNR
JPEG and AV1 reach with any setting within the same budget, and TCS-DL's margins (over the
matched JPEG, as the issue defines the bar). The bar: TCS-DL at least 2 dB over JPEG and
over GAP-TV at every B on every movie; AV1 is the distance still to go.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BAR_DB = 2.0


def rows_of(report: dict) -> list[dict]:
    out = []
    for r in report["results"]:
        m, base = r["methods"], r["baselines"]
        if "tcsdl" not in m or "gap-tv" not in m:
            continue
        jpeg = base.get("jpeg", {}).get("matched") or {}
        av1 = base.get("av1", {})
        row = {"B": r["B"], "bpp": r["emcodec"]["bpp"],
               "tcsdl": (m["tcsdl"]["psnr"], m["tcsdl"]["ssim"]), "gap-tv": (m["gap-tv"]["psnr"], m["gap-tv"]["ssim"]),
               "jpeg": (jpeg.get("psnr"), jpeg.get("ssim")),
               "jpeg_best": (base.get("jpeg", {}).get("best_in_budget") or {}).get("psnr"),
               "av1_best": (av1.get("best_in_budget") or {}).get("psnr")}
        out.append(row)
    return out


def num(x, sign: bool = False) -> str:
    return "n/a" if x is None else (f"{x:+.2f}" if sign else f"{x:.2f}")


def fmt(pair) -> str:
    p, s = pair
    return "n/a" if p is None else f"{p:.2f} / {s:.3f}"


def table(reports: list[tuple[str, dict]]) -> str:
    lines = ["| movie | B | bits/px | TCS-DL PSNR / SSIM | GAP-TV | JPEG (matched) | JPEG best within budget "
             "| AV1 best within budget "
             "| TCS-DL - JPEG | TCS-DL - GAP-TV | TCS-DL - AV1 best | bar (+2 dB over both) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    held = total = 0
    for name, rep in reports:
        for r in rows_of(rep):
            t = r["tcsdl"][0]
            dj = None if r["jpeg"][0] is None else t - r["jpeg"][0]
            dg = t - r["gap-tv"][0]
            da = None if r["av1_best"] is None else t - r["av1_best"]
            ok = dj is not None and dj >= BAR_DB and dg >= BAR_DB
            held, total = held + ok, total + 1
            lines.append(
                f"| {name} | {r['B']} | {r['bpp']:.3f} | {fmt(r['tcsdl'])} | {fmt(r['gap-tv'])} | {fmt(r['jpeg'])} "
                f"| {num(r['jpeg_best'])} | {num(r['av1_best'])} | {num(dj, True)} | {num(dg, True)} | {num(da, True)} "
                f"| {'holds' if ok else 'not met'} |")
    lines.append("")
    lines.append(f"Bar held in {held} of {total} rows.")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    folder = Path(args[0] if args else "bench-results")
    reports = []
    for path in sorted(folder.glob("*.json")):
        rep = json.loads(path.read_text())
        if "results" in rep:
            reports.append((rep["movie"].get("name") or path.stem, rep))
    if not reports:
        print(f"no rate_distortion JSON files in {folder}", file=sys.stderr)
        return 1
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
