"""Choose GAP-TV's defaults once, on simulated in-situ EM movies (docs/decoders.md has the result).

    python benchmarks/tune_gaptv.py                 # the sweep recorded in docs/decoders.md
    python benchmarks/tune_gaptv.py --timing        # decode time per frame at 512 x 512

PSNR is measured against the CLEAN frames (peak = max - min of each clean frame, averaged
over frames). Uses emcodec.simulate when it exists, else the small generator below.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch

from emcodec.decoders.base import apply_masks, decode_group, mask_sum
from emcodec.decoders.gaptv import GapTV

DOSES = (20, 100)  # mean counts per pixel per frame
GROUPS = (10, 20, 30)
SEED = 12345  # mask seed


def synthetic_movie(n_frames: int, size: int, mean_counts: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) float64 (n_frames, size, size): a drifting crystalline particle with blobs.

    Atoms: a triangular lattice made from three plane waves, sharpened into Gaussian-like
    peaks, drifting at ~0.2 px/frame with jitter, inside a soft disk on a smooth amorphous
    support. Blobs: a few broad Gaussians that move and change contrast (liquid-cell bubbles).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    spacing, angle = rng.uniform(6, 9), rng.uniform(0, np.pi / 3)
    ks = [2 * np.pi / (spacing * np.sqrt(3) / 2) * np.array([np.cos(angle + j * np.pi / 3), np.sin(angle + j * np.pi / 3)]) for j in range(3)]
    velocity = rng.normal(0, 1, 2)
    velocity *= 0.2 / np.linalg.norm(velocity)
    drift = np.cumsum(velocity + rng.normal(0, 0.05, (n_frames, 2)), axis=0)
    support = _smooth_noise(rng, size, 6.0)
    centre, radius = size * rng.uniform(0.4, 0.6, 2), size * 0.35
    blobs = [(rng.uniform(0, size, 2), rng.normal(0, 0.4, 2), rng.uniform(5, 12), rng.uniform(-0.6, 0.6)) for _ in range(3)]
    clean = np.empty((n_frames, size, size))
    for t in range(n_frames):
        dy, dx = drift[t]
        phase = sum(np.cos(k[0] * (xx - dx) + k[1] * (yy - dy)) for k in ks)
        atoms = np.exp(2.0 * (phase - 3.0))
        r = np.hypot(yy - centre[0] - dy, xx - centre[1] - dx)
        particle = 1 / (1 + np.exp((r - radius) / 2.0))
        frame = 0.6 + 0.15 * support + particle * (0.2 + 1.2 * atoms)
        for pos, vel, sigma, amp in blobs:
            by, bx = pos + vel * t
            frame += amp * (1 + 0.03 * t) * np.exp(-((yy - by) ** 2 + (xx - bx) ** 2) / (2 * sigma**2))
        clean[t] = np.clip(frame, 0.05, None)
    clean *= mean_counts / clean.mean()
    return clean, rng.poisson(clean).astype(np.float64)


def _smooth_noise(rng, size: int, sigma: float) -> np.ndarray:
    """Unit-variance Gaussian-filtered white noise (filtered in Fourier space)."""
    f = np.fft.fftfreq(size)
    g = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None, :] ** 2))
    n = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * g))
    return n / n.std()


def make_movie(n_frames: int, size: int, dose: float, seed: int):
    """(clean, noisy) from emcodec.simulate if it is there, else from synthetic_movie."""
    try:
        from emcodec import simulate  # noqa: F401  (written in parallel; see docs/decoders.md)
    except ImportError:
        return synthetic_movie(n_frames, size, dose, seed)
    return _from_simulate(simulate, n_frames, size, dose, seed)


def _from_simulate(simulate, n_frames, size, dose, seed):
    raise NotImplementedError("adapt to emcodec.simulate's API once it exists")


def psnr(x: np.ndarray, clean: np.ndarray) -> float:
    """Mean over frames of PSNR with peak = max - min of the clean frame."""
    vals = []
    for xk, ck in zip(x, clean):
        mse = np.mean((xk.astype(np.float64) - ck) ** 2)
        vals.append(10 * np.log10((ck.max() - ck.min()) ** 2 / mse))
    return float(np.mean(vals))


def cases(size: int):
    """One simulated group per (dose, B): its clean frames and integer measurement."""
    for dose, n in itertools.product(DOSES, GROUPS):
        clean, noisy = make_movie(n, size, dose, seed=1000 * dose + n)
        yield dose, n, clean, apply_masks(noisy, SEED)


def baseline(y: np.ndarray, n: int) -> np.ndarray:
    """Naive decode: Ybar = Y / S repeated in every frame."""
    ybar = y / np.maximum(mask_sum(SEED, n, *y.shape), 1)
    return np.repeat(ybar[None], n, axis=0)


def sweep(configs: list[dict], size: int) -> None:
    data = list(cases(size))
    header = "config".ljust(58) + "".join(f"{d:>4}c B={n:<3}" for d, n, _, _ in data) + "   mean   s"
    print(header)
    row = "Ybar baseline".ljust(58)
    base = [psnr(baseline(y, n), clean) for _, n, clean, y in data]
    print(row + "".join(f"{v:10.2f}" for v in base) + f"{np.mean(base):7.2f}")
    for cfg in configs:
        t0 = time.process_time()
        vals = [psnr(decode_group(GapTV(**cfg), y, n, SEED), clean) for _, n, clean, y in data]
        cpu = time.process_time() - t0
        name = " ".join(f"{k}={v}" for k, v in cfg.items()) or "defaults"
        print(name.ljust(58) + "".join(f"{v:10.2f}" for v in vals) + f"{np.mean(vals):7.2f}{cpu:5.0f}", flush=True)


def grid(**axes) -> list[dict]:
    keys = list(axes)
    return [dict(zip(keys, vals)) for vals in itertools.product(*axes.values())]


STAGES = {
    # weight and temporal term at a fixed budget
    "1": grid(tv_weight=[0.02, 0.05, 0.1, 0.2], temporal_weight=[0.0, 0.5, 1.0, 2.0]),
}


def timing(size: int = 512, n: int = 20, repeats: int = 2) -> None:
    clean, noisy = synthetic_movie(n, size, 100, seed=1)
    y = apply_masks(noisy, SEED)
    dec = GapTV()
    decode_group(dec, y[:64, :64], n, SEED)  # warm-up
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        decode_group(dec, y, n, SEED)
        best = min(best, time.perf_counter() - t0)
    print(f"GAP-TV defaults, {size}x{size}, B={n}, {torch.get_num_threads()} threads: "
          f"{best:.2f} s per group, {best / n:.3f} s per frame")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default="1", choices=sorted(STAGES) + ["defaults"])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timing", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.timing:
        timing()
    else:
        sweep([{}] if args.stage == "defaults" else STAGES[args.stage], args.size)


if __name__ == "__main__":
    main()
