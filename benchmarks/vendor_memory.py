"""Peak memory of `emcodec compress` on a large EER file (docs/BENCHMARKS.md, "Reading vendor files").

Writes a Falcon-sized EER movie (4096 x 4096 sensor, Poisson-sparse events) with the test
suite's EER writer (tests/eerfile.py, the published bitstream), then runs `emcodec compress`
in a child process and reports its peak resident memory (ru_maxrss) beside the size of the
raw frames as tifffile would hold them and the size of the summed movie.

    python benchmarks/vendor_memory.py --raw-frames 200 --fraction 10 --dose 0.02
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from eerfile import write_eer  # noqa: E402


def events(rng, n_frames, side, dose):
    """Per raw frame: distinct event pixels (Poisson count at `dose` e/px) and sub-pixels."""
    for _ in range(n_frames):
        k = rng.poisson(dose * side * side)
        index = np.unique(rng.integers(0, side * side, k))
        yield index, rng.integers(0, 4, len(index)), rng.integers(0, 4, len(index))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--raw-frames", type=int, default=200)
    ap.add_argument("--fraction", type=int, default=10)
    ap.add_argument("--dose", type=float, default=0.02, help="electrons per pixel per raw frame")
    ap.add_argument("-B", type=int, default=10)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        eer = Path(tmp) / "large.eer"
        t0 = time.perf_counter()
        write_eer(eer, list(events(rng, args.raw_frames, args.side, args.dose)), args.side, args.side,
                  exposure_time=args.raw_frames / 250.0)
        t_write = time.perf_counter() - t0
        cmd = [sys.executable, "-m", "emcodec", "compress", str(eer), "-o", str(Path(tmp) / "large.tcs"),
               "-B", str(args.B), "--eer-fraction", str(args.fraction), "-q"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        t_run = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB (Linux)
        n_out = args.raw_frames // args.fraction
        px = args.side * args.side
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
              f"Python {platform.python_version()}")
        print(f"EER: {args.side}x{args.side}, {args.raw_frames} raw frames, {args.dose} e/px/frame, "
              f"{eer.stat().st_size / 2**20:.0f} MiB on disk (written in {t_write:.0f} s)")
        print(f"compress --eer-fraction {args.fraction} -B {args.B}: {n_out} frames in {t_run:.1f} s")
        print(f"peak RSS of compress: {peak:.0f} MiB")
        print(f"raw frames decoded at once (1 byte/px): {args.raw_frames * px / 2**20:.0f} MiB; "
              f"summed movie (uint8): {n_out * px / 2**20:.0f} MiB; one group of B frames: "
              f"{args.B * px / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
