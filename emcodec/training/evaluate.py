"""Held-out check of trained weights against GAP-TV: `python -m emcodec.training.evaluate --B 10`.

Clips are simulator movies with seeds >= VALIDATION_SEED (never trained on), coded with the
codec's own masks (emcodec.masks) at a non-default seed, normalised as at inference. Prints
mean PSNR (per frame, peak = reference max - min) per dose for: Ybar (no decoder), GAP-TV,
TCS-DL without and with the final re-projection.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from ..masks import make_masks
from ..model import load_model
from ..simulate import simulate_movie
from .train import VALIDATION_SEED, normalise, psnr_frames


def held_out(B: int, clips: int, size: int, dose: float, mask_seed: int, offset: int = 5000):
    noisy, clean = [], []
    for i in range(clips):
        c, n = simulate_movie(B, size, size, seed=VALIDATION_SEED + offset + i, dose=dose)
        clean.append(c)
        noisy.append(n.astype(np.float32))
    m = torch.from_numpy(make_masks(mask_seed, B, 0, 0, size, size).astype(np.float32))
    masks = m[None].expand(clips, -1, -1, -1).contiguous()
    y, target = normalise(torch.from_numpy(np.stack(noisy)), torch.from_numpy(np.stack(clean)), masks)
    return y, masks, target


@torch.inference_mode()
def evaluate(B: int, weights: str | None, clips: int, size: int, doses, mask_seed: int, gaptv: bool = True):
    model, entry = load_model(B, weights)
    rows = {}
    for dose in doses:
        y, masks, target = held_out(B, clips, size, dose, mask_seed)
        S = masks.sum(1, keepdim=True).clamp(min=1)
        res = {"ybar": psnr_frames((y[:, None] / S).expand_as(target), target)}
        if gaptv:
            from ..decoders.gaptv import GapTV

            res["gap-tv"] = psnr_frames(GapTV().decode_tile(y, masks), target)
        model.reproject = False
        res["tcsdl-no-reproject"] = psnr_frames(model(y, masks)[1], target)
        model.reproject = True
        res["tcsdl"] = psnr_frames(model(y, masks)[1], target)
        rows[dose] = {k: round(v, 2) for k, v in res.items()}
    return rows, float(torch.sigmoid(model.alpha))


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m emcodec.training.evaluate")
    p.add_argument("--B", type=int, default=10)
    p.add_argument("--weights", default=None, help="weights directory (default: shipped)")
    p.add_argument("--clips", type=int, default=6)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--doses", default="1,20,100")
    p.add_argument("--mask-seed", type=int, default=987654321)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-gaptv", action="store_true")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows, alpha = evaluate(a.B, a.weights, a.clips, a.size, [float(d) for d in a.doses.split(",")],
                           a.mask_seed, not a.no_gaptv)
    print(json.dumps({"B": a.B, "mask_seed": a.mask_seed, "clips": a.clips, "size": a.size,
                      "reprojection_step": round(alpha, 4), "psnr_db": rows}, indent=2))


if __name__ == "__main__":
    main()
