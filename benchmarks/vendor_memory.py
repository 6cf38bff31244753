"""Peak memory of `emcodec compress` on large vendor files (docs/BENCHMARKS.md, "Reading vendor files").

Each vendor file is compressed beside the same frames stored as an uncompressed TIFF (which
emcodec memory-maps), in child processes whose peak resident memory is read through a small
wrapper process (Linux carries a parent's peak over fork + exec into the child's ru_maxrss,
and this script holds a frame pattern and the EER writer's events; the wrapper keeps them out).

* EER: a Falcon-sized movie (4096 x 4096 sensor, Poisson-sparse events) written with the test
  suite's EER writer (tests/eerfile.py, the published bitstream), compressed with
  `--eer-fraction`; the TIFF holds the summed frames.
* DM4: a large stack made from a real DigitalMicrograph file (tests/dmfile.py: the 2 x 2 x 2
  uint32 stack ../shared/data/vendor/test-11.dm4 with its data array and size fields
  replaced), checked frame by frame through RosettaSciIO before it is measured.

    python benchmarks/vendor_memory.py                      # both, the defaults below
    python benchmarks/vendor_memory.py --only eer --raw-frames 600
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from dmfile import enlarge_dm4  # noqa: E402
from eerfile import write_eer  # noqa: E402

DM4_TEMPLATE = ROOT.parent / "shared" / "data" / "vendor" / "test-11.dm4"
MiB = 2**20

PEAK_WRAPPER = (
    "import resource, subprocess, sys; rc = subprocess.call(sys.argv[1:]); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)"
)


REPEAT = 3


def compress_peak(src: Path, out: Path, *extra: str) -> tuple[str, float]:
    """Peak RSS in MiB of `emcodec compress` ("min-max" over REPEAT processes) and the best wall time."""
    cmd = [sys.executable, "-m", "emcodec", "compress", str(src), "-o", str(out), "--force", "-q", *extra]
    peaks, walls = [], []
    for _ in range(REPEAT):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *cmd], check=True, capture_output=True, text=True)
        walls.append(time.perf_counter() - t0)
        peaks.append(int(done.stdout.split()[-1]) / 1024)  # KiB -> MiB (Linux)
    lo, hi = min(peaks), max(peaks)
    return (f"{lo:.0f}" if round(lo) == round(hi) else f"{lo:.0f}-{hi:.0f}"), min(walls)


def write_tiff(path: Path, frames) -> None:
    import tifffile

    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        for frame in frames:
            tw.write(frame, contiguous=True, photometric="minisblack")


def eer_events(rng, n_frames, side, dose):
    """Per raw frame: distinct event pixels (Poisson count at `dose` e/px) and sub-pixels."""
    for _ in range(n_frames):
        k = rng.poisson(dose * side * side)
        index = np.unique(rng.integers(0, side * side, k))
        yield index, rng.integers(0, 4, len(index)), rng.integers(0, 4, len(index))


def run_eer(tmp: Path, args) -> list[str]:
    from emcodec.formats import ReadOptions, open_stack

    side, n_raw, fraction = args.side, args.raw_frames, args.fraction
    eer = tmp / "large.eer"
    t0 = time.perf_counter()
    write_eer(eer, eer_events(np.random.default_rng(0), n_raw, side, args.dose), side, side,
              exposure_time=n_raw / 250.0, n_frames=n_raw)
    t_write = time.perf_counter() - t0
    tif = tmp / "eer-summed.tif"
    with open_stack(eer, ReadOptions(eer_fraction=fraction)) as r:
        n_out = r.info.n_frames
        write_tiff(tif, (r.read(k, k + 1)[0] for k in range(n_out)))
    eer_peak, eer_wall = compress_peak(eer, tmp / "eer.tcs", "-B", str(args.B), "--eer-fraction", str(fraction))
    tif_peak, tif_wall = compress_peak(tif, tmp / "eer-tif.tcs", "-B", str(args.B))
    px = side * side
    os.unlink(eer), os.unlink(tif)
    return [
        f"EER: {side}x{side}, {n_raw} raw frames at {args.dose} e/px/frame (written in {t_write:.0f} s); "
        f"--eer-fraction {fraction} -B {args.B}: {n_out} frames of uint8",
        f"| EER, {n_raw} raw frames summed {fraction} at a time | {n_out} x {side}² uint8 | {eer_peak} MiB | {eer_wall:.1f} s |",
        f"| the same summed frames as an uncompressed TIFF | {n_out} x {side}² uint8 | {tif_peak} MiB | {tif_wall:.1f} s |",
        f"for scale: one group of B frames {args.B * px / MiB:.0f} MiB, the summed movie {n_out * px / MiB:.0f} MiB, "
        f"the raw frames decoded at once {n_raw * px / MiB:.0f} MiB",
    ]


def dm_frames(n: int, side: int):
    """Counts (uint32) over a lattice-like pattern, one generator per frame (reproducible)."""
    y, x = np.ogrid[:side, :side]
    pattern = 20.0 + 8.0 * np.cos(x * 0.37) * np.cos(y * 0.41)
    for k in range(n):
        yield np.random.default_rng([7, k]).poisson(pattern).astype(np.uint32)


def run_dm4(tmp: Path, args) -> list[str]:
    from rsciio.digitalmicrograph import file_reader

    if not DM4_TEMPLATE.is_file():
        return [f"DM4: not measured ({DM4_TEMPLATE} is absent)"]
    side, n = args.dm_side, args.dm_frames
    dm4 = tmp / "large.dm4"
    t0 = time.perf_counter()
    dtype = enlarge_dm4(DM4_TEMPLATE, dm4, dm_frames(n, side), n, side, side)
    t_write = time.perf_counter() - t0
    # every frame back through RosettaSciIO, against the frames written
    stack = [s for s in file_reader(str(dm4), lazy=True) if len(s["data"].shape) == 3]
    assert len(stack) == 1 and stack[0]["data"].shape == (n, side, side) and stack[0]["data"].dtype == dtype
    for k, want in enumerate(dm_frames(n, side)):
        if not np.array_equal(np.asarray(stack[0]["data"][k].compute()), want):
            raise SystemExit(f"DM4 frame {k} read back by RosettaSciIO differs from the frame written")
    del stack
    tif = tmp / "dm4-same.tif"
    write_tiff(tif, dm_frames(n, side))
    dm_peak, dm_wall = compress_peak(dm4, tmp / "dm4.tcs", "-B", str(args.B))
    tif_peak, tif_wall = compress_peak(tif, tmp / "dm4-tif.tcs", "-B", str(args.B))
    size = dm4.stat().st_size
    os.unlink(dm4), os.unlink(tif)
    frame = side * side * dtype.itemsize
    return [
        f"DM4: {n} frames of {side}x{side} {dtype} ({size / MiB:.0f} MiB on disk, from {DM4_TEMPLATE.name}, "
        f"written in {t_write:.0f} s; all {n} frames read back by RosettaSciIO and equal); -B {args.B}",
        f"| DM4 stack | {n} x {side}² {dtype} | {dm_peak} MiB | {dm_wall:.1f} s |",
        f"| the same frames as an uncompressed TIFF | {n} x {side}² {dtype} | {tif_peak} MiB | {tif_wall:.1f} s |",
        f"for scale: one group of B frames {args.B * frame / MiB:.0f} MiB, the movie {n * frame / MiB:.0f} MiB",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["eer", "dm4"])
    ap.add_argument("-B", type=int, default=10)
    ap.add_argument("--side", type=int, default=4096, help="EER sensor side")
    ap.add_argument("--raw-frames", type=int, default=200)
    ap.add_argument("--fraction", type=int, default=10)
    ap.add_argument("--dose", type=float, default=0.02, help="electrons per pixel per raw frame")
    ap.add_argument("--dm-side", type=int, default=4096)
    ap.add_argument("--dm-frames", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3, help="compress processes per input (peak: min-max)")
    ap.add_argument("--tmp", default=None, help="folder for the large files (default: the system's)")
    args = ap.parse_args()
    global REPEAT
    REPEAT = args.repeat
    import rsciio
    import tifffile

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}, tifffile {tifffile.__version__}, rosettasciio {rsciio.__version__}")
    print(f"| input | frames x size | peak RSS of compress (min-max of {REPEAT}) | compress time (best) |")
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for name, run in (("eer", run_eer), ("dm4", run_dm4)):
            if args.only in (None, name):
                for line in run(Path(tmp), args):
                    print(line, flush=True)


if __name__ == "__main__":
    main()
