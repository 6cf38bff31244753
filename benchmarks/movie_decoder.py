"""Issue 14's tables: the movie decoder against TCS-DL per group, binning and AV1 at the same bytes.

    python benchmarks/movie_decoder.py --out bench-movie            # all development movies, B = 10, 20, 30
    python benchmarks/movie_decoder.py --out bench-movie --quick    # two movies, B = 10 (minutes)
    python benchmarks/movie_decoder.py --flow-only                  # motion error table only
    python benchmarks/movie_decoder.py --out bench-movie --movies events-d10   # some movies only

Development movies (never used for training: simulator seeds < 10**6): the built-in sample,
simulator movies with known drift and deformation, an atomic-lattice movie, and the events
movies (appear / disappear / jump / beam blank) at 10 and 100 counts/px/frame. Every number
comes from emcodec.bench.run.run_benchmark (matched bytes, every byte of the .tcs counted);
the temporal and event yardsticks from emcodec/bench/temporal.py. Writes <out>/<movie>.json
and prints Markdown tables for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emcodec import simulate  # noqa: E402
from emcodec.bench.report import write_json  # noqa: E402
from emcodec.bench.run import Config, Movie, run_benchmark  # noqa: E402


def movies(quick: bool):
    """(name, Movie) pairs; each simulated movie's clean frames are the reference."""
    def sim(name, clean, noisy, events=None, note=""):
        return name, Movie(noisy, clean.astype(np.float32), "clean", f"noise-free simulator frames ({note})",
                           f"simulator: {name}", events=events)

    out = []
    clean, noisy = simulate.sample_movie()
    out.append(sim("sample", clean, noisy, note="built-in sample, 40x256x256, 30 counts"))
    c, n, _ = simulate.simulate_motion_movie(90, 192, 192, seed=101, dose=10, motion="drift")
    out.append(sim("drift-d10", c, n, note="drift, 10 counts"))
    if quick:
        return out
    c, n, _ = simulate.simulate_motion_movie(90, 192, 192, seed=102, dose=100, motion="deformation")
    out.append(sim("deformation-d100", c, n, note="drift + deformation, 100 counts"))
    c, n, _ = simulate.simulate_motion_movie(90, 192, 192, seed=103, dose=10, motion="deformation", kind="atomic")
    out.append(sim("atomic-deformation-d10", c, n, note="atomic lattice, drift + deformation, 10 counts"))
    for dose in (10, 100):
        c, n, ev = simulate.simulate_events_movie(90, 192, 192, B=10, seed=104, dose=dose)
        out.append(sim(f"events-d{dose}", c, n, ev, note=f"events at B=10 timing, {dose} counts"))
    return out


def flow_errors(doses=(1, 10, 100), B=10, size=192):
    """Median error (px) of the flow between neighbouring groups' first-pass means, against
    the simulator's true flow, for drift and deformation at each dose."""
    from emcodec import motion
    from emcodec.codec import choose_decoder
    from emcodec.decoders.base import decode_group, set_cpu_threads
    from emcodec.encoder import GroupEncoder

    set_cpu_threads(1)
    rows = []
    for kind in ("drift", "deformation"):
        for dose in doses:
            clean, noisy, truth = simulate.simulate_motion_movie(4 * B, size, size, seed=200 + dose, dose=dose,
                                                                 motion=kind)
            enc = GroupEncoder(B, 0, size, size, noisy.dtype)
            dec = choose_decoder("tcsdl", B, print)
            means = []
            for g in range(4):
                y, _, _ = enc.encode(noisy[g * B:(g + 1) * B])
                means.append(decode_group(dec, y.astype(np.float64), B, 0).mean(0))
            errs = []
            for g in range(3):
                lo, hi = np.percentile(np.stack(means[g:g + 2]), [0.5, 99.5])
                f = motion.estimate_flow(means[g], means[g + 1], lo, hi)
                a, b = g * B + (B - 1) // 2, (g + 1) * B + (B - 1) // 2
                t = truth.flow(a, b)
                m = B // 2  # the border, where content enters the frame, has no flow to find
                errs.append(np.median(np.hypot(f[..., 0] - t[1], f[..., 1] - t[0])[m:-m, m:-m]))
            rows.append({"motion": kind, "dose": dose, "median_error_px": float(np.median(errs)),
                         "bar_px": 0.5 if kind == "drift" else 1.0})
    return rows


def summary(name: str, report: dict) -> list[dict]:
    """One row per B: PSNR/SSIM of each method, binning and AV1 best in budget, yardsticks."""
    rows = []
    for r in report["results"]:
        row = {"name": name, "B": r["B"], "bytes": r["emcodec"]["bytes"]}
        for m, d in r["methods"].items():
            row[m] = {"psnr": d["psnr"], "ssim": d["ssim"], "decode_cpu_s": d["decode_cpu_s"],
                      **d.get("temporal", {})}
        bn = r.get("binning", {})
        if bn.get("fits"):
            row["binning"] = {"psnr": bn["psnr"], "ssim": bn["ssim"], "bytes": bn["bytes"]}
        for b, e in r["baselines"].items():
            if "best_in_budget" in e:
                row[b] = {"psnr": e["best_in_budget"]["psnr"], "ssim": e["best_in_budget"]["ssim"],
                          "bytes": e["best_in_budget"]["bytes"]}
        rows.append(row)
    return rows


def markdown(rows: list[dict]) -> str:
    f = lambda v, s=".2f": "-" if v is None else format(v, s)  # noqa: E731
    out = ["| movie | B | movie PSNR / SSIM | tcsdl | binning | AV1 best | movie - AV1 dB | sawtooth dB | "
           "flicker | slope | energy | events kept / leak (worst event) |", "|" + "---|" * 12]
    for r in rows:
        mv, td, bn, av = r.get("movie", {}), r.get("tcsdl", {}), r.get("binning", {}), r.get("av1", {})
        ev = mv.get("event_list") or []  # each event, not the per-kind means
        worst = f"{min(e['kept'] for e in ev):.2f} / {max(e['leak'] for e in ev):.2f}" if ev else ""
        out.append(f"| {r['name']} | {r['B']} | {f(mv.get('psnr'))} / {f(mv.get('ssim'), '.3f')} | "
                   f"{f(td.get('psnr'))} / {f(td.get('ssim'), '.3f')} | {f(bn.get('psnr'))} | "
                   f"{f(av.get('psnr'))} / {f(av.get('ssim'), '.3f')} | "
                   f"{f(mv['psnr'] - av['psnr'] if mv and av else None, '+.2f')} | {f(mv.get('sawtooth_db'))} | "
                   f"{f(mv.get('boundary_flicker'))} | {f(mv.get('motion_slope'))} | {f(mv.get('motion_energy'))} | "
                   f"{worst} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench-movie")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--flow-only", action="store_true")
    ap.add_argument("--movies", nargs="+", metavar="NAME", help="only these development movies (default: all)")
    ap.add_argument("--vs", default="av1")
    ap.add_argument("--summarize", metavar="DIR", help="print the tables from the JSON files of an earlier run")
    args = ap.parse_args()
    if args.summarize:
        rows = []
        for path in sorted(Path(args.summarize).glob("*.json")):
            if path.name not in ("flow.json", "summary.json"):
                rows += summary(path.stem, json.loads(path.read_text()))
        print(markdown(rows))
        return
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if not args.movies:
        flows = flow_errors()
        (out / "flow.json").write_text(json.dumps(flows, indent=2) + "\n")
        print("| motion | counts/px/frame | median flow error px | bar |\n|---|---|---|---|")
        for r in flows:
            print(f"| {r['motion']} | {r['dose']} | {r['median_error_px']:.3f} | {r['bar_px']} |")
    if args.flow_only:
        return
    rows = []
    Bs = [10] if args.quick else [10, 20, 30]
    for name, movie in movies(args.quick):
        if args.movies and name not in args.movies:
            continue
        config = Config(Bs=Bs, methods=["movie", "tcsdl"], baselines=args.vs.split(","), device="cpu")
        report = run_benchmark(movie, config, log=lambda s, n=name: print(f"[{n}] {s}", file=sys.stderr, flush=True))
        write_json(report, out / f"{name}.json")
        rows += summary(name, report)
        (out / "summary.json").write_text(json.dumps(rows, indent=2) + "\n")
        print(markdown(rows[-len(Bs):]), flush=True)
    print(f"\nall movies ({time.time() - t0:.0f} s):\n")
    print(markdown(rows))


if __name__ == "__main__":
    main()
