"""Rate-distortion and encoder cost against standard codecs: the tables of docs/BENCHMARKS.md (issue 4).

Runs `emcodec benchmark`'s engine on (1) the built-in simulated sample, reference = its
noise-free frames, and (2) short movies made from a real still in STILLS (sub-pixel drift,
Poisson noise at each --dose), reference = the noise-free drifted movie. Writes one JSON and
one PNG per movie into --out and prints Markdown tables. A missing STILLS folder is skipped.

    python benchmarks/rate_distortion.py --out bench-results
    python benchmarks/rate_distortion.py --stills ../shared/data/real-stills --vs all --out bench-results
    python benchmarks/rate_distortion.py --skip-sample --sims '' --doses 20 --still-frames 20   # quicker
    python benchmarks/rate_distortion.py --profile-encoder      # where the encoder's CPU goes
    python benchmarks/rate_distortion.py --vs jpeg,jpegxl,av1 --method tcsdl --quantize off,0.5,auto,2 --out bench-q
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from emcodec.bench import baselines as bl
from emcodec.bench.report import markdown_tables, print_report, write_json, write_plot
from emcodec.bench.run import Config, Movie, load_movie, run_benchmark
from emcodec.bench.stills import list_stills, movie_from_still
from emcodec.codec import parse_quantize
from emcodec.simulate import simulate_movie

DEFAULT_STILL = "10_dso_8nm_none_none.png"


def run_one(movie: Movie, config: Config, out: Path, tag: str) -> str:
    t0 = time.perf_counter()
    report = run_benchmark(movie, config, log=lambda s: print(f"  [{tag}] {s}", file=sys.stderr, flush=True))
    report["wall_seconds"] = time.perf_counter() - t0
    print_report(report)
    write_json(report, out / f"{tag}.json")
    write_plot(report, movie, out / f"{tag}.png")
    mv = report["movie"]
    head = (f"### {tag}: {mv['source']}, {mv['frames']} frames of {mv['height']}x{mv['width']} {mv['dtype']}\n\n"
            f"Reference: {report['reference']['description']}. Raw noisy frames against it: "
            f"PSNR {report['raw_frames']['psnr']:.2f} dB, SSIM {report['raw_frames']['ssim']:.3f}. "
            f"Run took {report['wall_seconds']:.0f} s.\n\n")
    notes = "".join(f"- {n}\n" for n in report["notes"])
    return head + markdown_tables(report) + ("\nNotes:\n" + notes if notes else "") + "\n"


def profile_encoder(reps: int = 40) -> str:
    """Where emcodec's encoder CPU goes on the sample (40 x 256 x 256 uint16), beside JPEG at the
    qualities matched in the tables."""
    import io
    import tempfile

    import imagecodecs
    import zstandard

    import emcodec.codec as cc
    from emcodec.container import pack_measurement
    from emcodec.encoder import GroupEncoder
    from emcodec.masks import make_masks
    from emcodec.simulate import sample_movie
    from emcodec.stacks import create_stack, open_stack

    _, noisy = sample_movie()
    n, h, w = noisy.shape

    def cpu(fn):
        fn()  # warm: first-call imports and allocations are start-up, not encoding
        t0 = time.process_time()
        for _ in range(reps):
            fn()
        return 1e3 * (time.process_time() - t0) / reps / n

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "movie.tif")
        with create_stack(path, height=h, width=w, dtype=noisy.dtype, n_frames=n, pixel_size=None) as out:
            out.write(noisy)
        u8 = bl.Jpeg8().scale_for(noisy).encode(noisy)
        for B, q in ((10, 30), (20, 14), (30, 15)):
            full = cpu(lambda: cc.compress(path, io.BytesIO(), B=B))
            masks = cpu(lambda: make_masks(0, B, 0, 0, h, w))

            def read():
                with open_stack(path) as reader:
                    for _ in reader.iter_chunks(B):
                        pass

            rd = cpu(read)
            enc = GroupEncoder(B, 0, h, w, noisy.dtype)
            sums = cpu(lambda: [enc.encode(noisy[g : g + B]) for g in range(0, n, B)])
            ys = [enc.encode(noisy[g : g + B])[0] for g in range(0, n, B)]
            zstd = zstandard.ZstdCompressor(level=1)
            pack = cpu(lambda: [pack_measurement(y, zstd) for y in ys])
            jpeg = cpu(lambda: [imagecodecs.jpeg8_encode(f, level=q) for f in u8])
            rows.append((B, q, full, masks, rd, sums, pack, jpeg))
    out = ("| B | compress() | masks | TIFF open + read | masked sums | zstd pack | JPEG (quality) | compress / JPEG |\n|"
           + "---|" * 8 + "\n")
    for B, q, *v in rows:
        out += f"| {B} | " + " | ".join(f"{x:.3f}" for x in v[:-1]) + f" | {v[-1]:.3f} ({q}) | {v[0] / v[-1]:.2f}x |\n"
    return "CPU ms per frame, " + f"{n} frames of {h}x{w} {noisy.dtype}:\n\n" + out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="bench-results", help="folder for JSON and PNG files")
    ap.add_argument("--vs", default="all", help="baselines, comma-separated, or all")
    ap.add_argument("-B", default="10,20,30")
    ap.add_argument("--method", help="emcodec decoders, comma-separated (default: every registered one)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quantize", default="auto",
                    help="emcodec measurement settings, comma-separated: off, auto, steps (e.g. off,0.5,auto,2)")
    ap.add_argument("--sample-frames", type=int, default=40, help="frames of the built-in sample (it has 40)")
    ap.add_argument("--sample-crop", type=int, default=256)
    ap.add_argument("--skip-sample", action="store_true")
    ap.add_argument("--sims", default="atomic:10",
                    help="extra held-out simulator movies KIND:DOSE, comma-separated ('' for none); "
                         "seeds from 2000000100, which training never uses")
    ap.add_argument("--stills", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "real-stills"),
                    help="folder of real EM stills (skipped if absent)")
    ap.add_argument("--still", default=DEFAULT_STILL, help="which still to animate")
    ap.add_argument("--still-frames", type=int, default=30)
    ap.add_argument("--still-size", type=int, default=256)
    ap.add_argument("--doses", default="20,100", help="counts per pixel per frame, comma-separated")
    ap.add_argument("--seed", type=int, default=1, help="drift and noise seed of the still movies")
    ap.add_argument("--profile-encoder", action="store_true",
                    help="only print where emcodec's encoder CPU goes on the sample, beside JPEG")
    args = ap.parse_args(argv)
    if args.profile_encoder:
        print(profile_encoder())
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(bl.BY_NAME) if args.vs == "all" else [v.strip() for v in args.vs.split(",") if v.strip()]
    config = Config(Bs=[int(b) for b in args.B.split(",")], baselines=names, device=args.device,
                    methods=[m.strip() for m in args.method.split(",")] if args.method else None,
                    quantize=[parse_quantize(q.strip()) for q in args.quantize.split(",") if q.strip()])
    sections = []
    if not args.skip_sample:
        movie = load_movie(None, n_frames=args.sample_frames, crop=args.sample_crop)
        sections.append(run_one(movie, config, out, "sample"))
    for i, spec in enumerate(x for x in args.sims.split(",") if x.strip()):
        kind, dose = spec.split(":")
        kind, dose, seed = kind.strip(), float(dose), 2_000_000_100 + i
        clean, noisy = simulate_movie(args.sample_frames, args.sample_crop, args.sample_crop, seed=seed,
                                      dose=dose, kind=kind)
        movie = Movie(noisy, np.ascontiguousarray(clean, dtype=np.float32), "clean",
                      f"noise-free frames of simulator movie {kind} seed {seed}",
                      f"simulated {kind} movie, seed {seed} (held out), dose {dose:g}")
        sections.append(run_one(movie, config, out, f"sim-{kind}-dose{dose:g}"))
    stills = {p.name: p for p in list_stills(args.stills)}
    if not stills:
        print(f"stills folder {args.stills} not found or empty: skipping the real-still movies", file=sys.stderr)
    elif args.still not in stills:
        print(f"{args.still} not in {args.stills}: skipping the real-still movies", file=sys.stderr)
    else:
        for dose in [float(d) for d in args.doses.split(",")]:
            clean, noisy = movie_from_still(stills[args.still], args.still_frames, dose, args.seed, size=args.still_size)
            movie = Movie(noisy, np.ascontiguousarray(clean, dtype=np.float32), "clean",
                          f"noise-free drifted movie of {args.still} (dose {dose:g} counts/pixel/frame)",
                          f"real still {args.still}, drift + Poisson at dose {dose:g}")
            sections.append(run_one(movie, config, out, f"still-dose{dose:g}"))
    text = "\n".join(sections)
    (out / "tables.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
