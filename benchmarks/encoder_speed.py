"""Encoder throughput and peak memory, measured side by side in one run.

Throughput: the whole `emcodec compress` process (start-up included) on an uncompressed
uint16 TIFF that sits in the page cache, against zstandard level 1 (one thread)
compressing the same raw bytes in memory. Memory: peak resident set of the compress
process on a large movie. Prints a Markdown table for docs/BENCHMARKS.md.

    python benchmarks/encoder_speed.py                      # 100 x 2048 x 2048, B = 10
    python benchmarks/encoder_speed.py --memory             # also 4096 x 4096 x 300 at B = 10 and 64
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile
import zstandard


def em_like_frames(n, size, seed=0, dose=20.0):
    """Low-dose counts over a lattice-like pattern: the statistics of a real counting movie."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for i in range(n):
        pattern = 1 + 0.5 * np.cos((xx + 0.3 * i) * 0.9) * np.cos((yy - 0.2 * i) * 0.8)
        yield rng.poisson(dose * pattern).astype(np.uint16)


def write_movie(path: Path, n: int, size: int) -> int:
    """Ten distinct noisy frames, cycled: writing a 10 GB movie stays quick."""
    distinct = list(em_like_frames(min(n, 10), size))
    with tifffile.TiffWriter(path, bigtiff=n * size * size * 2 > 2**31) as tif:
        for i in range(n):
            tif.write(distinct[i % len(distinct)], contiguous=True)
    return path.stat().st_size


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


# Runs the command and prints its peak RSS. The wrapper matters: Linux carries a parent's
# peak resident memory over fork + exec into the child's ru_maxrss, and this script holds a
# whole movie in memory for the zstd baseline; a small process in between gives a clean figure.
PEAK_WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


def compress_cmd(movie: Path, out: Path, B: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "emcodec", "compress", str(movie), "-o", str(out), "-B", str(B), "--force", "-q",
            *extra]


# The settings timed side by side: the default, and each of its two extra steps switched off.
SETTINGS = {
    "default (--quantize auto, scene cuts split)": (),
    "--quantize off": ("--quantize", "off"),
    "--no-split": ("--no-split",),
}


def run_compress(movie: Path, out: Path, B: int, *extra: str) -> float:
    """Wall seconds of one whole `emcodec compress` process, start-up included."""
    cmd = compress_cmd(movie, out, B, *extra)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t


def peak_memory(movie: Path, out: Path, B: int) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one `emcodec compress` process (default settings)."""
    cmd = compress_cmd(movie, out, B)
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"compress failed: {' '.join(cmd)}: {proc.stderr.strip()}")
    return wall, int(proc.stdout.split()[-1]) * 1024


def zstd_seconds(movie: Path) -> float:
    raw = tifffile.imread(movie).tobytes()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        zstandard.ZstdCompressor(level=1, threads=0).compress(raw)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("-B", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory", action="store_true", help="also the 4096x4096x300 peak-memory runs")
    ap.add_argument("--dir", default=None, help="scratch folder (needs ~11 GB with --memory)")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="emcodec-bench-", dir=args.dir))
    try:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        movie = scratch / "movie.tif"
        raw_bytes = args.frames * args.size * args.size * 2
        write_movie(movie, args.frames, args.size)
        warm(movie)
        walls = {name: [] for name in SETTINGS}
        sizes = {}
        for _ in range(args.repeat):  # interleaved, so a busy moment hits every setting alike
            for name, extra in SETTINGS.items():
                warm(movie)
                out = scratch / "movie.tcs"
                walls[name].append(run_compress(movie, out, args.B, *extra))
                sizes[name] = out.stat().st_size
        zstd = zstd_seconds(movie)
        print(f"\n{args.frames} frames of {args.size}x{args.size} uint16 ({raw_bytes / 1e6:.0f} MB), B={args.B}\n")
        print("| what | seconds | MB/s | ratio to zstd-1 | .tcs bytes | compression ratio |")
        print("|---|---|---|---|---|---|")
        for name in SETTINGS:
            wall = min(walls[name])
            print(f"| emcodec compress {name}, whole process (best of {args.repeat}) | {wall:.3f} | "
                  f"{raw_bytes / wall / 1e6:.0f} | {zstd / wall:.2f}x | {sizes[name]} | {raw_bytes / sizes[name]:.2f} |")
        print(f"| zstandard level 1, one thread, in memory (best of 3) | {zstd:.3f} | {raw_bytes / zstd / 1e6:.0f} | 1.00x | | |")
        if args.memory:
            big = scratch / "big.tif"
            movie.unlink()
            write_movie(big, 300, 4096)
            print("\n| movie | B | peak RSS (MB) | wall (s) |")
            print("|---|---|---|---|")
            for B in (10, 64):
                wall, peak = peak_memory(big, scratch / f"big{B}.tcs", B)
                print(f"| 300 x 4096 x 4096 uint16 ({big.stat().st_size / 1e9:.1f} GB) | {B} | {peak / 1e6:.0f} | {wall:.1f} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
