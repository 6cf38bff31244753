"""Retrain the shipped weights from the runs recorded in weights/manifest.json.

`python -m emcodec.training.reproduce [--export weights] [--B 10 20 30]` replays, in order,
each recorded run sitting by sitting (a run that was stopped and resumed with new settings
has several), with its seed, data, masks, learning-rate schedule and init. After sitting i of
B, the weights are kept as OUT/b{B}-s{i}/final.pt, and a recorded init such as
`checkpoints/b10-s1/final.pt` is read from the replayed OUT/b10-s1/final.pt, so B=20 and
B=30 start from the same B=10 weights as the shipped runs did. Replays have no time cap: a
sitting that the shipped run ended at its time cap (where the cosine followed the wall clock)
is replayed with the cosine ending at the step it reached, so results match closely but not
bit for bit; sittings without a time cap replay exactly.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

from ..model import manifest
from .train import TrainConfig, train


def sittings_of(entry: dict) -> list[dict]:
    """The recorded sittings; one spanning the whole run for entries that predate them."""
    t = entry["training"]
    return entry.get("sittings") or [{
        "from_step": 0, "to_step": int(entry["steps_done"]), "steps": int(entry["steps_done"]),
        "lr": t["lr"], "lr_min": t["lr_min"], "warmup": t["warmup"], "init": t["init"],
        "stopped_by_time_cap": False}]


def replayed_init(init: str, out: str) -> str:
    """checkpoints/NAME/final.pt -> OUT/NAME/final.pt; other paths stay as they are."""
    parts = Path(init).parts
    if init and parts[0] == "checkpoints":
        return str(Path(out, *parts[1:]))
    return init


def replay(B: int, entry: dict, out: str, export: str = "", device: str = "auto", log=print) -> None:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    base = TrainConfig(**{k: v for k, v in entry["training"].items() if k in names})
    sittings = sittings_of(entry)
    for i, s in enumerate(sittings, 1):
        capped = bool(s.get("stopped_by_time_cap"))
        cfg = dataclasses.replace(
            base, lr=s["lr"], lr_min=s["lr_min"], warmup=s["warmup"], rewarm=s.get("rewarm", 0), minutes=0.0,
            steps=int(s["to_step"]) if capped else int(s["steps"]), init=replayed_init(s["init"], out),
            out=f"{out}/b{B}", export=export if i == len(sittings) else "", device=device)
        log(f"reproducing B={B} sitting {i}/{len(sittings)}: steps {s['from_step']}-{s['to_step']}, "
            f"lr {cfg.lr:g}, seed {cfg.seed}, init {cfg.init or ('resume' if i > 1 else 'none')}")
        train(cfg, resume=i > 1, stop_at=int(s["to_step"]), log=log)
        kept = Path(out, f"b{B}-s{i}")
        kept.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(cfg.out, "final.pt"), kept / "final.pt")


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m emcodec.training.reproduce")
    p.add_argument("--B", type=int, nargs="*", default=None, help="which B (default: all, smallest first)")
    p.add_argument("--export", default="", help="where to write weights + manifest (default: nowhere)")
    p.add_argument("--out", default="checkpoints/reproduce")
    p.add_argument("--weights", default=None, help="the manifest's directory (default: the shipped weights)")
    p.add_argument("--device", default="auto")
    a = p.parse_args(argv)
    entries = manifest(a.weights)
    for B in a.B or sorted(entries):
        replay(B, entries[B], a.out, a.export, a.device, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
