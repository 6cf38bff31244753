"""CPU of `compress()` on the built-in sample: two git revisions side by side.

Each revision is checked out into a temporary worktree and timed in its own Python
processes, alternating A, B, A, B, ... so that load from other jobs on a shared machine
falls on both. A process makes one untimed call (imports, first use), then times `--calls`
calls with `time.process_time()`; the figure per round is CPU microseconds per frame, and
the table gives the median over rounds, the ratio B / A and the minor page faults per call.

Page faults matter here: glibc gives freed memory back to the OS once the free top of its
heap exceeds a threshold that it adapts to the largest block freed so far, and a call whose
working set crosses it faults all of that memory in again on the next call (on the sample:
81 faults per call for the mapped TIFF alone, 410-648 when the heap is handed back too).
`--fixed-malloc` runs both revisions with the thresholds fixed (MALLOC_TRIM_THRESHOLD_,
MALLOC_MMAP_THRESHOLD_), so that they compare work without that effect.

    python benchmarks/compress_ab.py 2f91640 HEAD                  # B = 10, 20, 30, --quantize auto
    python benchmarks/compress_ab.py 2f91640 HEAD --B 10 --quantize off --rounds 6
    python benchmarks/compress_ab.py 2b0fab8 HEAD --fixed-malloc
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import io, json, resource, sys, time
sys.path.insert(0, sys.argv[1])
import emcodec.codec as C
assert C.__file__.startswith(sys.argv[1]), C.__file__  # this revision's code, not the installed one
path, B, q, calls, frames = sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
run = lambda: C.compress(path, io.BytesIO(), B=B, seed=0, quantize=q)
run()
faults, t = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
for _ in range(calls):
    run()
cpu = 1e6 * (time.process_time() - t) / calls / frames
print(json.dumps([cpu, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / calls]))
"""
FIXED_MALLOC = {"MALLOC_TRIM_THRESHOLD_": str(64 << 20), "MALLOC_MMAP_THRESHOLD_": str(32 << 20)}


def write_sample(path: Path) -> int:
    sys.path.insert(0, str(ROOT))
    from emcodec.simulate import sample_movie
    from emcodec.stacks import create_stack

    _, noisy = sample_movie()
    n, h, w = noisy.shape
    with create_stack(path, height=h, width=w, dtype=noisy.dtype, n_frames=n, pixel_size=None) as out:
        out.write(noisy)
    return n


def time_tree(tree: Path, movie: Path, frames: int, B: int, quantize: str, calls: int,
              env: dict | None = None) -> tuple[float, float]:
    """(CPU us per frame, minor page faults per call) of one fresh process."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(movie), str(B), quantize, str(calls),
                          str(frames)], capture_output=True, text=True, check=True, cwd=tree, env=env)
    cpu, faults = json.loads(out.stdout)
    return cpu, faults


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a", help="git revision A (the reference)")
    ap.add_argument("b", help="git revision B")
    ap.add_argument("--B", type=int, nargs="+", default=[10, 20, 30])
    ap.add_argument("--quantize", default="auto")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--calls", type=int, default=100, help="timed compress() calls per process")
    ap.add_argument("--fixed-malloc", action="store_true", help="fix glibc's trim and mmap thresholds in both")
    args = ap.parse_args()
    env = {**os.environ, **FIXED_MALLOC} if args.fixed_malloc else None

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {}
        for name, rev in (("A", args.a), ("B", args.b)):
            trees[name] = tmp / name
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(trees[name]), rev],
                           check=True)
        try:
            movie = tmp / "sample.tif"
            frames = write_sample(movie)
            print(f"built-in sample ({frames} frames of 256x256 uint16), --quantize {args.quantize}, "
                  f"{args.rounds} rounds of {args.calls} calls; CPU us per frame, median over rounds"
                  f"{'; glibc thresholds fixed' if args.fixed_malloc else ''}\n")
            print(f"| B | A = {args.a} | B = {args.b} | B / A | page faults per call A / B |\n|---|---|---|---|---|")
            for B in args.B:
                got = {"A": [], "B": []}
                for _ in range(args.rounds):
                    for name in ("A", "B"):
                        got[name].append(time_tree(trees[name], movie, frames, B, args.quantize, args.calls, env))
                (a, fa), (b, fb) = ([statistics.median(v) for v in zip(*got[n])] for n in ("A", "B"))
                print(f"| {B} | {a:.1f} | {b:.1f} | {b / a:.2f} | {fa:.0f} / {fb:.0f} |", flush=True)
        finally:
            for tree in trees.values():
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


if __name__ == "__main__":
    main()
