"""Which lossless stage for the measurement? Bytes and encode CPU of each candidate (issue 5).

    python benchmarks/measurement_coding.py                       # sample + atomic sim (+ stills if present)
    python benchmarks/measurement_coding.py --stills ../shared/data/real-stills
    python benchmarks/measurement_coding.py --quantize auto    # the quantised measurement's codes

For every full group of each movie at B = 10, 20, 30 the measurement Y (masked sum, shifted to
start at 0, narrowest unsigned type: what the container stores) is coded with each candidate;
sizes are summed over groups and given relative to what emcodec writes today (zstd level 1
after a byte shuffle). CPU is `time.process_time()` per measurement frame, best of 3, so it
can be set beside the encoder's ~0.08-0.1 ms per movie frame (docs/BENCHMARKS.md).
Candidates: zstd levels 1/3/9/19 on the raw bytes, after a byte shuffle, after a horizontal
delta (zigzag) + shuffle, and after the LOCO-I median predictor (zigzag) + shuffle; JPEG-LS
lossless and near-lossless (CharLS through imagecodecs; near-lossless is lossy: |error| <= NEAR
in the coded values). With --quantize the coded values are the quantiser's codes (what the
container stores with `emcodec compress --quantize`), the noise fitted as the encoder does.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import zstandard

from emcodec.container import byte_shuffle
from emcodec.masks import make_masks
from emcodec.simulate import sample_movie, simulate_movie

TODAY = "zstd-1 shuffle"  # what the container writes now (emcodec.container.pack_measurement)


def measurements(noisy: np.ndarray, B: int, seed: int = 0, quantize=None) -> list[np.ndarray]:
    n, h, w = noisy.shape
    masks = make_masks(seed, B, 0, 0, h, w)
    q = None
    if quantize is not None:
        from emcodec.codec import choose_quantizer

        q, _ = choose_quantizer(noisy[:B], B, quantize)
    out = []
    for g in range(n // B):
        y = np.einsum("khw,khw->hw", masks.astype(np.int64), noisy[g * B:(g + 1) * B].astype(np.int64))
        if q is not None:
            y = q.codes_of(y)
        y -= y.min()
        out.append(y.astype(np.uint8 if y.max() < 256 else np.uint16))
    return out


def zigzag(r: np.ndarray) -> np.ndarray:
    z = np.where(r >= 0, 2 * r, -2 * r - 1)
    return z.astype(np.uint16 if z.max() < 65536 else np.uint32)


def delta(y: np.ndarray) -> np.ndarray:
    r = y.astype(np.int64)
    r[:, 1:] -= y[:, :-1].astype(np.int64)
    return zigzag(r)


def med(y: np.ndarray) -> np.ndarray:
    """LOCO-I / JPEG-LS median edge predictor: residual of x against f(left, up, up-left)."""
    x = y.astype(np.int64)
    a = np.zeros_like(x); a[:, 1:] = x[:, :-1]
    b = np.zeros_like(x); b[1:] = x[:-1]
    c = np.zeros_like(x); c[1:, 1:] = x[:-1, :-1]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    pred = np.where(c >= hi, lo, np.where(c <= lo, hi, a + b - c))
    return zigzag(x - pred)


def candidates():
    for level in (1, 3, 9, 19):
        z = zstandard.ZstdCompressor(level=level)
        yield f"zstd-{level} raw", (lambda y, z=z: z.compress(np.ascontiguousarray(y).tobytes()))
        yield f"zstd-{level} shuffle", (lambda y, z=z: z.compress(byte_shuffle(y).tobytes()))
        yield f"zstd-{level} delta+shuffle", (lambda y, z=z: z.compress(byte_shuffle(delta(y)).tobytes()))
        yield f"zstd-{level} median predictor+shuffle", (lambda y, z=z: z.compress(byte_shuffle(med(y)).tobytes()))
    try:
        import imagecodecs

        if imagecodecs.JPEGLS.available:
            yield "JPEG-LS lossless (CharLS)", (lambda y: imagecodecs.jpegls_encode(np.ascontiguousarray(y)))
            for near in (1, 2):
                yield f"JPEG-LS near-lossless NEAR={near} (lossy)", (
                    lambda y, near=near: imagecodecs.jpegls_encode(np.ascontiguousarray(y), level=near))
    except ImportError:
        print("imagecodecs not installed: JPEG-LS skipped", file=sys.stderr)


def cpu_ms(fn, ys, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.process_time()
        for y in ys:
            fn(y)
        best = min(best, time.process_time() - t)
    return 1e3 * best / len(ys)


def movies(stills: str):
    clean, noisy = sample_movie()
    yield "sample (dose 30)", noisy
    clean, noisy = simulate_movie(40, 256, 256, seed=2_000_000_100, dose=10.0, kind="atomic")
    yield "atomic sim (dose 10)", noisy
    folder = Path(stills)
    still = folder / "10_dso_8nm_none_none.png"
    if still.exists():
        from emcodec.bench.stills import movie_from_still

        for dose in (20.0, 100.0):
            clean, noisy = movie_from_still(still, 30, dose, seed=1)
            yield f"still (dose {dose:g})", noisy


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stills", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "real-stills"))
    p.add_argument("--quantize", help="code the quantiser's codes: auto or a step")
    a = p.parse_args(argv)
    quantize = None
    if a.quantize:
        from emcodec.codec import parse_quantize

        quantize = parse_quantize(a.quantize)
    cands = dict(candidates())
    today_stage = cands[TODAY]
    print("| movie | B | stage | bytes | vs today | CPU ms per measurement frame | CPU ms per movie frame |")
    print("|---|---|---|---|---|---|---|")
    for name, noisy in movies(a.stills):
        for B in (10, 20, 30):
            ys = measurements(noisy, B, quantize=quantize)
            if not ys:
                continue
            today = sum(len(today_stage(y)) for y in ys)
            for label, fn in cands.items():
                n = sum(len(fn(y)) for y in ys)
                ms = cpu_ms(fn, ys)
                print(f"| {name} | {B} | {label} | {n} | {n / today:.3f} | {ms:.3f} | {ms / B:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
