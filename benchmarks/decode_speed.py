"""Decode time per output frame and peak memory, per method and frame size.

    python benchmarks/decode_speed.py                       # 512x512, B=10, tcsdl and gap-tv
    python benchmarks/decode_speed.py --size 4096 --method tcsdl
    python benchmarks/decode_speed.py --groups 5 --method movie tcsdl preview --threads 1
    python benchmarks/decode_speed.py --groups 20 --whole --method preview   # frames/s, start-up included

The movie has --groups groups; every method decodes only the middle group's frames
(`--frames`), so the movie decoder's cost includes the first passes of its window (K = 2
groups on each side) and the per-frame figures compare like with like. Each configuration
runs `emcodec decompress` in its own process so that its peak resident memory is its own.
Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
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


def make_movie(path: Path, size: int, n: int, drift=(0.3, 0.5)) -> None:
    """n frames of one simulated scene at `size` drifting by `drift` (dy, dx) px per frame,
    at 30 counts/px, written frame by frame (a 4096 x 4096 x 150 movie is 5 GB).

    Not a tiling of a small simulation: a periodic scene has no unique motion (DIS found
    displacements of 20-480 px on a 4096 x 4096 tiling of 256 x 256 frames that hardly moved).
    """
    import cv2

    from emcodec.simulate import simulate_motion_movie

    margin = int(np.ceil(max(abs(d) for d in drift) * n)) + 4
    scene = simulate_motion_movie(1, size + 2 * margin, size + 2 * margin, seed=2_000_000_002, dose=30.0)[0][0]
    rng = np.random.default_rng(2_000_000_003)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for t in range(n):
            move = np.float32([[1, 0, margin + drift[1] * t], [0, 1, margin + drift[0] * t]])
            clean = cv2.warpAffine(scene, move, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
            tif.write(rng.poisson(np.maximum(clean, 0)).astype(np.uint16), contiguous=True, photometric="minisblack")


def run(cmd: list[str]) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and peak RSS (bytes) of one process."""
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}")
    return time.perf_counter() - t, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, nargs="+", default=[512])
    ap.add_argument("-B", type=int, default=10)
    ap.add_argument("--groups", type=int, default=1, help="groups in the movie; the middle one is decoded")
    ap.add_argument("--whole", action="store_true", help="decode every frame, not only the middle group's")
    ap.add_argument("--method", nargs="+", default=["tcsdl", "gap-tv"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: decompress's default, the idle cores)")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="emcodec-decode-"))
    try:
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, device {args.device}\n")
        print(f"movie of {args.groups} group(s); {'every frame' if args.whole else 'the middle group'} decoded\n")
        print("| method | frame size | B | CPU threads | seconds per frame (wall) | CPU seconds per frame | peak RSS (MB) | frames/s (wall) |")
        print("|---|---|---|---|---|---|---|---|")
        for size in args.size:
            movie = scratch / f"m{size}.tif"
            make_movie(movie, size, args.groups * args.B)
            first, count = ((0, args.groups * args.B) if args.whole else ((args.groups // 2) * args.B, args.B))
            tcs = scratch / f"m{size}.tcs"
            emcodec = [sys.executable, "-m", "emcodec"]
            run(emcodec + ["compress", str(movie), "-o", str(tcs), "-B", str(args.B), "--force", "-q"])
            for method in args.method:
                out = scratch / f"d{size}-{method}.tif"
                wall, cpu_s, rss = run(emcodec + ["decompress", str(tcs), "-o", str(out), "--method", method,
                                                  "--frames", f"{first}:{first + count}",
                                                  "--device", args.device, "--threads", str(args.threads),
                                                  "--force", "-q"])
                sidecar = json.loads(out.with_name(out.name + ".emcodec.json").read_text())
                print(f"| {sidecar['method']} | {size}x{size} | {args.B} | {sidecar.get('cpu_threads', '-')} | "
                      f"{wall / count:.3f} | {cpu_s / count:.3f} | {rss / 1e6:.0f} | {count / wall:.1f} |", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
