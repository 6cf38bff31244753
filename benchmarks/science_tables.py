"""The lattice, resolution and column tables of docs/BENCHMARKS.md (issue 19).

Runs `emcodec benchmark`'s engine with its verdict over noise seeds (emcodec.bench.verdict)
on the built-in sample, a real still made into a drifting movie, and a held-out simulated
atomic-lattice movie; writes one JSON and one PNG per movie into --out and prints Markdown.

    nice -n 10 python benchmarks/science_tables.py --out bench-science --threads 1
    python benchmarks/science_tables.py --movies sample --vs jpeg --seeds 1      # quick
    python benchmarks/science_tables.py --from-json bench-science                # tables again from the JSON
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from emcodec.bench.report import markdown_tables, print_report, science_markdown, write_json, write_plot
from emcodec.bench.run import Config, Movie, load_movie
from emcodec.bench.verdict import run_with_seeds

STILLS = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-stills"
STILL = "10_dso_8nm_none_none.png"
ATOMIC_SEED = 2000000100  # held out: training never uses seeds >= 10**6 below 2*10**9 here


def movies(names: list[str], frames: int, stills: Path):
    """(tag, Movie) for each asked-for movie; a missing still folder is skipped with a message."""
    from emcodec.simulate import simulate_movie

    for name in names:
        if name == "sample":
            yield "sample", load_movie(None, n_frames=frames, crop=256)
        elif name == "still":
            path = stills / STILL
            if not path.is_file():
                print(f"skipped the still: {path} is not there", file=sys.stderr)
                continue
            yield "still-dose20", load_movie(str(path), n_frames=frames, crop=256, dose=20.0, seed=1)
        elif name == "atomic":
            clean, noisy = simulate_movie(frames, 256, 256, seed=ATOMIC_SEED, dose=10.0, kind="atomic")
            yield "sim-atomic-dose10", Movie(noisy, clean, "clean", "noise-free frames of the simulated movie",
                                             f"simulated atomic movie, seed {ATOMIC_SEED} (held out), dose 10")
        else:
            raise SystemExit(f"unknown movie {name!r}: sample, still or atomic")


def section(tag: str, report: dict) -> str:
    mv = report["movie"]
    head = (f"#### {tag}: {mv['source']}, {mv['frames']} frames of {mv['height']}x{mv['width']} {mv['dtype']}\n\n"
            f"Reference: {report['reference']['description']}. Run took {report.get('wall_seconds', 0):.0f} s "
            f"({report['verdict']['seeds']} noise seeds). Bragg peaks in the reference: "
            f"{report['science_settings']['bragg_peaks']}; columns: "
            + (f"{report['science_settings']['columns'].get('count')} at "
               f"{report['science_settings']['columns'].get('spacing', 0):.1f} px spacing"
               if report["science_settings"]["columns"].get("resolved") else
               f"not scored ({report['science_settings']['columns'].get('reason')})") + ".\n\n")
    notes = "".join(f"- {n}\n" for n in report["notes"])
    return head + science_markdown(report) + "\nRate-distortion at the same run (seed 1):\n\n" + \
        markdown_tables(report) + ("\nNotes:\n" + notes if notes else "") + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench-science")
    ap.add_argument("--movies", default="sample,still,atomic")
    ap.add_argument("--vs", default="jpeg,jpeg2000,jpegxl,h264,h265,av1")
    ap.add_argument("-B", default="10,20,30")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--scan-points", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stills", default=str(STILLS))
    ap.add_argument("--from-json", help="print the Markdown again from this folder's JSON files")
    args = ap.parse_args(argv)
    if args.from_json:
        for path in sorted(Path(args.from_json).glob("*.json")):
            print(section(path.stem, json.loads(path.read_text())))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = Config(Bs=[int(b) for b in args.B.split(",")], baselines=[v for v in args.vs.split(",") if v],
                    scan_points=args.scan_points, threads=args.threads)
    for tag, movie in movies(args.movies.split(","), args.frames, Path(args.stills)):
        t0 = time.perf_counter()
        report = run_with_seeds(movie, config, args.seeds,
                                log=lambda s: print(f"  [{tag} {time.perf_counter() - t0:.0f}s] {s}", file=sys.stderr,
                                                    flush=True))
        report["wall_seconds"] = time.perf_counter() - t0
        print_report(report)
        write_json(report, out / f"{tag}.json")
        write_plot(report, movie, out / f"{tag}.png")
        print(section(tag, report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
