"""The long structure-aware fuzz run behind docs/BENCHMARKS.md ("Crafted files").

Each file is a valid .tcs with one field (or the metadata) set to an awkward value and its
checksums recomputed (emcodec/fuzz.py), then read by info, verify and decompress (gap-tv).
Counts: refused with an emcodec error, decoded (output checked finite and not all zero),
and failures (any other exception, or a bad output) with their first messages.

    .venv/bin/python benchmarks/fuzz.py --files 100000 --workers 2
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import tifffile

from emcodec import codec, fuzz
from emcodec.errors import EmcodecError


def mutate(rnd: random.Random, good: bytes) -> tuple[str, bytes]:
    if rnd.random() < 1 / 6:
        choice = rnd.choice([{"pixel_size": [rnd.choice(fuzz.FLOATS), "x"]}, {"frame_time": -1},
                             {"source_name": 5}, [1, 2], "text", None, {"original_metadata": []},
                             ("[" * rnd.randint(1, 5000) + "]" * 5000).encode()[:10000]])
        return "metadata", fuzz.set_metadata(good, choice)
    field = rnd.choice(fuzz.FIELDS)
    pool = fuzz.INTS + fuzz.FLOATS if rnd.random() < 0.8 else (rnd.randint(-(2**64), 2**64),)
    return field[1], fuzz.set_field(good, field, rnd.choice(pool), which=rnd.randint(0, 7))


def work(args) -> dict:
    start, count, seed = args
    counts, failures = collections.Counter(), []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = fuzz.base_files(folder)
        rnd = random.Random(seed * 1_000_003 + start)
        for i in range(count):
            base = rnd.choice(sorted(files))
            what, data = mutate(rnd, files[base])
            path = folder / "c.tcs"
            path.write_bytes(data)
            try:
                codec.info(path)
                codec.verify(path)
                codec.decompress(path, folder / "c.tif", method="gap-tv", device="cpu", threads=1, force=True)
                frames = tifffile.imread(folder / "c.tif").astype(np.float64)
                if not (np.isfinite(frames).all() and np.any(frames != 0)):
                    raise AssertionError("decoded to non-finite or all-zero frames")
                counts["decoded"] += 1
            except EmcodecError:
                counts["refused"] += 1
            except Exception as exc:  # noqa: BLE001 - this is what the run is looking for
                counts["failed"] += 1
                failures.append(f"{base} {what}: {type(exc).__name__}: {exc}"[:200])
    return {"counts": counts, "failures": failures}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the counts here")
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    chunk = max(1, a.files // (a.workers * 8))
    jobs = [(s, min(chunk, a.files - s), a.seed) for s in range(0, a.files, chunk)]
    t0 = time.time()
    counts, failures = collections.Counter(), []
    with ProcessPoolExecutor(a.workers) as pool:
        for r in pool.map(work, jobs):
            counts.update(r["counts"])
            failures += r["failures"]
    result = {"files": a.files, "seconds": round(time.time() - t0, 1), "workers": a.workers, **counts,
              "first_failures": failures[:20]}
    print(json.dumps(result, indent=2))
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if counts["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
