"""Choose GAP-TV's defaults once, on simulated in-situ EM movies (docs/decoders.md has the result).

    python benchmarks/tune_gaptv.py --stage 1       # one stage of the sweep in docs/decoders.md
    python benchmarks/tune_gaptv.py --stage defaults
    python benchmarks/tune_gaptv.py --timing        # decode time per frame at 512 x 512

Movies come from emcodec.simulate (mixed kinds and motions, fixed seeds < 10**6 so never a
training clip). PSNR is measured against the CLEAN frames, peak = max - min of each clean
frame, averaged over frames and then over the movies of a case.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from emcodec.decoders.base import apply_masks, decode_group, mask_sum
from emcodec.decoders.gaptv import GapTV
from emcodec.simulate import simulate_movie

DOSES = (20, 100)  # mean counts per pixel per frame
GROUPS = (10, 20, 30)  # B
MOVIES = (502, 503, 505, 509)  # simulator seeds: atomic, nanoparticles, lowmag, atomic; drift 0.2-2.4 px/frame
SEED = 12345  # mask seed


def psnr(x: np.ndarray, clean: np.ndarray) -> float:
    """Mean over frames of PSNR with peak = max - min of the clean frame."""
    vals = []
    for xk, ck in zip(x, clean):
        ck = ck.astype(np.float64)
        mse = np.mean((xk.astype(np.float64) - ck) ** 2)
        vals.append(10 * np.log10((ck.max() - ck.min()) ** 2 / mse))
    return float(np.mean(vals))


def cases(size: int):
    """(dose, B, [(clean, measurement), ...]) for every case of the table."""
    for dose, n in itertools.product(DOSES, GROUPS):
        movies = []
        for s in MOVIES:
            clean, noisy = simulate_movie(n, size, size, seed=s, dose=dose)
            movies.append((clean, apply_masks(noisy, SEED)))
        yield dose, n, movies


def baseline(y: np.ndarray, n: int) -> np.ndarray:
    """Naive decode: Ybar = Y / S repeated in every frame."""
    ybar = y / np.maximum(mask_sum(SEED, n, *y.shape), 1)
    return np.repeat(ybar[None], n, axis=0)


def row(name: str, vals: list[float], cpu: float | None = None) -> str:
    tail = f"{cpu:6.0f}" if cpu is not None else ""
    return name.ljust(62) + "".join(f"{v:9.2f}" for v in vals) + f"{np.mean(vals):8.2f}" + tail


DEFAULTS: dict = {}  # the decoder's own defaults, whatever they are now

# fixed during the sweep unless a config says otherwise; spelled out so that changing the
# decoder's defaults does not change what a stage measures
SWEEP_BASE = dict(iterations=40, weight_start=4.0, tv_iterations=5)

STAGES = {
    # acceleration, TV weight and temporal term
    "1": [
        dict(accelerate=True, tv_weight=0.01, temporal_weight=1.0),
        dict(accelerate=False, tv_weight=0.05, temporal_weight=1.0),
        dict(accelerate=False, tv_weight=0.1, temporal_weight=0.5),
        dict(accelerate=False, tv_weight=0.1, temporal_weight=1.0),
        dict(accelerate=False, tv_weight=0.1, temporal_weight=2.0),
    ],
    # around the best of stage 1 (accelerate=False tv_weight=0.05 temporal_weight=1.0)
    "2": [
        dict(accelerate=False, tv_weight=0.03, temporal_weight=1.0),
        dict(accelerate=False, tv_weight=0.05, temporal_weight=0.5),
        dict(accelerate=False, tv_weight=0.05, temporal_weight=1.0, iterations=20),
    ],
}


def sweep(configs: list[dict], size: int) -> None:
    data = list(cases(size))
    print("config".ljust(62) + "".join(f"{d:>4}c B{n:<3}" for d, n, _ in data) + "    mean  cpu s")
    print(row("Ybar baseline", [np.mean([psnr(baseline(y, n), c) for c, y in mv]) for _, n, mv in data]))
    for cfg in configs:
        t0 = time.process_time()
        dec = GapTV(**cfg) if cfg is DEFAULTS else GapTV(**{**SWEEP_BASE, **cfg})
        vals = [np.mean([psnr(decode_group(dec, y, n, SEED), c) for c, y in mv]) for _, n, mv in data]
        name = "defaults" if cfg is DEFAULTS else " ".join(f"{k}={v}" for k, v in cfg.items())
        print(row(name, vals, time.process_time() - t0), flush=True)


def timing(size: int = 512, n: int = 20) -> None:
    """Wall and CPU time of one group with the defaults (tile 256, overlap 32: 3 x 3 tiles)."""
    _, noisy = simulate_movie(n, size, size, seed=MOVIES[0], dose=100)
    y = apply_masks(noisy, SEED)
    decode_group(GapTV(), y[:64, :64], n, SEED)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    decode_group(GapTV(), y, n, SEED)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"GAP-TV defaults, {size}x{size}, B={n}, {torch.get_num_threads()} threads: "
          f"{wall / n:.3f} s per frame wall ({wall:.1f} s per group), {cpu / n:.3f} CPU-s per frame")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="defaults", choices=sorted(STAGES) + ["defaults"])
    ap.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="one ad-hoc config (over SWEEP_BASE) instead of a stage")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, help="torch threads [default: 1 for the sweep, 2 for --timing]")
    ap.add_argument("--timing", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads or (2 if args.timing else 1))
    if args.timing:
        timing()
    elif args.set:
        sweep([{k: _value(v) for k, v in (kv.split("=", 1) for kv in args.set)}], args.size)
    else:
        sweep([DEFAULTS] if args.stage == "defaults" else STAGES[args.stage], args.size)


def _value(text: str):
    """'40' -> 40, '0.1' -> 0.1, 'False' -> False."""
    if text in ("True", "False"):
        return text == "True"
    return int(text) if text.isdigit() else float(text)


if __name__ == "__main__":
    main()
