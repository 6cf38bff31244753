"""How well and how cheaply the encoder finds scene cuts inside a group (issue 5, part 2).

    python benchmarks/scene_cuts.py              # ~1 minute

Detection: for 30 simulator seeds and 5 doses, a continuous 30-frame 128x128 movie in groups
of B = 10 (false cuts counted over all frame pairs), and the same movie cut at frame 15 to a
movie of another seed (the cut must be found at frame 15 and nowhere else). Cost: CPU per
frame of `CutDetector.cuts` on groups of 10 frames (uint16, page-cache warm), beside the
masked sum of the same groups, at 256x256 and 2048x2048.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from emcodec.coherence import CutDetector
from emcodec.encoder import GroupEncoder
from emcodec.simulate import simulate_movie

SEEDS = range(30)
DOSES = (0.5, 2.0, 10.0, 50.0, 200.0)


def detection() -> str:
    false_cuts = pairs = 0
    found = {d: 0 for d in DOSES}
    for seed in SEEDS:
        for dose in DOSES:
            _, a = simulate_movie(30, 128, 128, seed=seed + 100, dose=dose)
            _, b = simulate_movie(30, 128, 128, seed=seed + 500, dose=dose)
            det = CutDetector(128, 128)
            for g in range(3):
                false_cuts += len(det.cuts(a[10 * g : 10 * g + 10]))
                pairs += 9
            cut = np.concatenate([a[:15], b[15:]])
            det = CutDetector(128, 128)
            found[dose] += [det.cuts(cut[10 * g : 10 * g + 10]) for g in range(3)] == [[], [5], []]
    lines = [f"false cuts: {false_cuts} in {pairs} frame pairs of continuous movies", "",
             "| dose (counts/pixel/frame) | cut found at frame 15 and nowhere else |", "|---|---|"]
    lines += [f"| {d:g} | {found[d]} / {len(SEEDS)} |" for d in DOSES]
    return "\n".join(lines)


def cost(size: int, groups: int = 20, B: int = 10) -> str:
    rng = np.random.default_rng(0)
    frames = rng.poisson(20, (B, size, size)).astype(np.uint16)
    det, enc = CutDetector(size, size), GroupEncoder(B, 0, size, size, np.uint16)

    def per_frame(fn) -> float:
        fn(frames)
        t = time.process_time()
        for _ in range(groups):
            fn(frames)
        return 1e3 * (time.process_time() - t) / (groups * B)

    c, e = per_frame(det.cuts), per_frame(enc.encode)
    return f"| {size}x{size} | {c:.4f} | {e:.4f} | {c / e:.2f} |"


def main() -> int:
    print(detection())
    print("\n| frame | cut test CPU ms/frame | masked sum CPU ms/frame | ratio |\n|---|---|---|---|")
    for size in (256, 2048):
        print(cost(size), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
