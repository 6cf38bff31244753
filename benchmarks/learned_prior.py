"""Issue 15, first measurement: the movie decoder with its TV step against a learned refine step.

    python benchmarks/learned_prior.py --checkpoint weights/checkpoints/refine-v1.pt

Development movies of benchmarks/movie_decoder.py (simulator seeds < 10**6, never trained
on), B = 10 and 20, one thread. Prints a Markdown table: PSNR against the noise-free frames
and motion slope, TV against learned, and the difference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emcodec import codec, simulate  # noqa: E402
from emcodec.bench import temporal  # noqa: E402
from emcodec.decoders.base import set_cpu_threads  # noqa: E402
from emcodec.decoders.movie import MovieDecoder, decode_movie  # noqa: E402
from emcodec.metrics import psnr  # noqa: E402
from emcodec.model.prior import RefineNet  # noqa: E402

MOVIES = [("drift-d10", 101, 10, "drift", "nanoparticles"),
          ("deformation-d100", 102, 100, "deformation", "nanoparticles"),
          ("atomic-deformation-d10", 103, 10, "deformation", "atomic")]


def decode(tcs: Path, B: int, n: int, prior) -> np.ndarray:
    reader = codec.open_tcs(tcs)
    try:
        first = codec.choose_decoder("movie", B, lambda s: None).first_pass
        dec = MovieDecoder(first, window=2, prior=prior)
        return np.concatenate([x for _, _, x in decode_movie(reader, dec, 0, n)])
    finally:
        reader._f.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("-B", type=int, nargs="+", default=[10, 20])
    args = ap.parse_args()
    set_cpu_threads(1)
    state = torch.load(args.checkpoint, weights_only=True)
    model = RefineNet()
    model.load_state_dict(state["model"])
    model.eval()
    print(f"checkpoint: {args.checkpoint} (step {state['step']}, {state['seconds'] / 60:.0f} min of training)\n")
    print("| movie | B | TV PSNR | learned PSNR | difference dB | slope TV / learned | "
          "sawtooth dB TV / learned | flicker TV / learned |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, seed, dose, motion, kind in MOVIES:
            clean, noisy, _ = simulate.simulate_motion_movie(90, 192, 192, seed=seed, dose=dose, motion=motion, kind=kind)
            tif = Path(tmp) / f"{name}.tif"
            tifffile.imwrite(tif, noisy)
            for B in args.B:
                tcs = Path(tmp) / f"{name}-{B}.tcs"
                codec.compress(tif, tcs, B=B, force=True)
                t = time.time()
                tv = decode(tcs, B, len(noisy), None)
                learned = decode(tcs, B, len(noisy), model)
                p_tv, p_l = psnr(clean, tv), psnr(clean, learned)
                slope = [temporal.motion_fidelity(clean, x)["slope"] for x in (tv, learned)]
                saw = [temporal.sawtooth(clean, x, B) for x in (tv, learned)]
                flick = [temporal.boundary_flicker(clean, x, B) for x in (tv, learned)]
                print(f"| {name} | {B} | {p_tv:.2f} | {p_l:.2f} | {p_l - p_tv:+.2f} | {slope[0]:.2f} / {slope[1]:.2f} | "
                      f"{saw[0]:.2f} / {saw[1]:.2f} | {flick[0]:.2f} / {flick[1]:.2f} |", flush=True)
                print(f"  ({time.time() - t:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
