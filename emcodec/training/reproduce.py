"""Retrain the shipped weights from the configs recorded in weights/manifest.json.

`python -m emcodec.training.reproduce [--export weights] [--B 10 20 30]` runs, in order, each
recorded run with its seed, data, masks and init chain (B=20 from B=10, B=30 from B=20) for
the number of steps the shipped run did, with no time cap. The shipped runs also had a time
cap, which let the learning-rate cosine follow the wall clock on a busy machine; here the
cosine follows the steps, so results match closely but not bit for bit.
"""

from __future__ import annotations

import argparse
import dataclasses

from ..model import manifest
from .train import TrainConfig, train


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m emcodec.training.reproduce")
    p.add_argument("--B", type=int, nargs="*", default=None, help="which B (default: all, in init order)")
    p.add_argument("--export", default="", help="where to write weights + manifest (default: nowhere)")
    p.add_argument("--out", default="checkpoints/reproduce")
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    entries = manifest()
    todo = a.B or sorted(entries)
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for B in todo:
        e = entries[B]
        rec = {k: v for k, v in e["training"].items() if k in names}
        cfg = TrainConfig(**rec)
        cfg.steps, cfg.minutes = int(e["steps_done"]), 0.0
        cfg.out, cfg.export, cfg.device = f"{a.out}/b{B}", a.export, a.device
        if cfg.init:  # checkpoints/bPREV/final.pt -> the reproduced run of that B
            prev = cfg.init.split("/b")[-1].split("/")[0]
            cfg.init = f"{a.out}/b{prev}/final.pt"
        print(f"reproducing B={B}: {cfg.steps} steps, seed {cfg.seed}, init {cfg.init or 'none'}", flush=True)
        train(cfg, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
