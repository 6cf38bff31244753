"""Train the movie decoder's learned prior (emcodec/model/prior.py) on the CPU, resumably.

    python -m emcodec.training.prior make-data --out pairs.npz --movies 200        # fit pairs
    python -m emcodec.training.prior train --data pairs.npz --checkpoint ckpt.pt --minutes 30 [--resume]
    python -m emcodec.training.prior evaluate --data pairs.npz --checkpoint ckpt.pt
    python -m emcodec.training.prior export --data pairs.npz --checkpoint ckpt.pt --out weights

Pairs are made by running the movie decoder itself on simulator movies (seeds >= 10**6, never
the benchmark's): for every part, the fitted centre image z, the fused first pass z0 and the
noise-free image at the part's centre time. Movies of held-out seeds (the last tenth) are the
validation set; `evaluate` compares the network with the TV step it replaces on them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from ..model.prior import RefineNet

TRAIN_SEED = 10**6
PATCH = 48


def make_pairs(out: Path, movies: int, first: int = 0, size: int = 128, log=print) -> None:
    """Decode `movies` simulator movies (random B, dose, scene, motion) and save the pairs."""
    import tempfile

    from .. import api, codec, simulate
    from ..decoders.base import set_cpu_threads
    from ..decoders.movie import MovieDecoder, decode_movie

    class Capture(MovieDecoder):
        def refine(self, z, z0, unit, B):
            self.captured = (z.copy(), z0.copy(), unit.first, unit.n)
            return super().refine(z, z0, unit, B)

    set_cpu_threads(1)
    rng = np.random.default_rng(first)
    zs, z0s, targets, meta = [], [], [], []
    t0 = time.time()
    for i in range(movies):
        seed = TRAIN_SEED + first + i
        B = int(rng.choice([10, 20, 30]))
        dose = float(rng.choice([3, 10, 30, 100]))
        kind = str(rng.choice(["nanoparticles", "atomic"]))
        motion = str(rng.choice(["drift", "deformation"]))
        n = 5 * B
        clean, noisy, _ = simulate.simulate_motion_movie(n, size, size, seed=seed, dose=dose, motion=motion, kind=kind)
        with tempfile.TemporaryDirectory() as tmp:
            api.compress(noisy, Path(tmp) / "m.tcs", B=B)
            reader = codec.open_tcs(Path(tmp) / "m.tcs")
            decoder = Capture(codec.choose_decoder("movie", B, lambda s: None).first_pass, window=2)
            for g, unit, _ in decode_movie(reader, decoder, 0, n):
                z, z0, start, m = decoder.captured
                c = start + (m - 1) / 2
                target = 0.5 * (clean[int(np.floor(c))].astype(np.float32) + clean[int(np.ceil(c))].astype(np.float32))
                zs.append(z.astype(np.float32))
                z0s.append(z0.astype(np.float32))
                targets.append(target)
                meta.append((seed, B, dose, g))
            reader._f.close()
        if i % 5 == 4 or i == movies - 1:
            np.savez(out, z=np.stack(zs), z0=np.stack(z0s), target=np.stack(targets), meta=np.array(meta))
            log(f"{i + 1} movies, {len(zs)} parts, {time.time() - t0:.0f} s")


def load_pairs(paths: list[Path]):
    """(train, validation) dicts of tensors; validation = parts of the last tenth of seeds."""
    parts = [np.load(p) for p in paths]
    data = {k: np.concatenate([p[k] for p in parts]) for k in ("z", "z0", "target", "meta")}
    seeds = np.unique(data["meta"][:, 0])
    held = set(seeds[-max(1, len(seeds) // 10):].tolist())
    is_val = np.array([s in held for s in data["meta"][:, 0]])
    split = lambda m: {k: torch.from_numpy(data[k][m]) for k in ("z", "z0", "target")}  # noqa: E731
    return split(~is_val), split(is_val), data["meta"][is_val]


def batch(data: dict, rng: np.random.Generator, size: int = 8):
    """Random PATCH crops with flips and 90-degree turns."""
    n, h, w = data["z"].shape
    idx = rng.integers(0, n, size)
    ys, xs = rng.integers(0, h - PATCH + 1, size), rng.integers(0, w - PATCH + 1, size)
    out = []
    for key in ("z", "z0", "target"):
        crops = torch.stack([data[key][i, y:y + PATCH, x:x + PATCH] for i, y, x in zip(idx, ys, xs)])
        out.append(crops)
    k, flip = int(rng.integers(4)), bool(rng.integers(2))
    out = [torch.rot90(c, k, dims=(-2, -1)) for c in out]
    if flip:
        out = [torch.flip(c, dims=(-1,)) for c in out]
    return [c[:, None] for c in out]


def psnr_t(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean PSNR over images, peak = each reference image's range."""
    peak = ref.flatten(1).amax(1) - ref.flatten(1).amin(1)
    mse = ((x - ref) ** 2).flatten(1).mean(1)
    return float((10 * torch.log10(peak**2 / mse)).mean())


def evaluate(model: RefineNet, val: dict) -> dict:
    """PSNR of the fit alone, the TV step and the network on the validation parts."""
    from ..decoders.movie import tv_refine

    model.eval()
    with torch.no_grad():
        learned = model(val["z"][:, None], val["z0"][:, None])[:, 0]
    tv = torch.from_numpy(np.stack([tv_refine(z, z0) for z, z0 in zip(val["z"].numpy(), val["z0"].numpy())]))
    return {"fit": psnr_t(val["z"], val["target"]), "tv": psnr_t(tv, val["target"]),
            "learned": psnr_t(learned, val["target"])}


def train(paths: list[Path], checkpoint: Path, minutes: float, resume: bool, lr: float = 1e-3, log=print) -> dict:
    """Adam on the L1 loss in the Anscombe domain; a checkpoint every 2 minutes and at the end."""
    from ..model.prior import anscombe

    torch.set_num_threads(1)
    tr, val, _ = load_pairs(paths)
    model = RefineNet()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    step, spent, sittings = 0, 0.0, []
    if resume and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        for group in opt.param_groups:  # a later sitting may ask for another rate
            group["lr"] = lr
        step, spent, sittings = int(state["step"]), float(state["seconds"]), list(state.get("sittings", []))
    sitting = {"from_step": step, "lr": lr, "data": [str(p) for p in paths], "train_parts": len(tr["z"])}
    rng = np.random.default_rng(step)
    t0, last_save = time.time(), time.time()

    def save():
        tmp = checkpoint.with_suffix(".part")
        done = {**sitting, "to_step": step, "minutes": round((time.time() - t0) / 60, 1)}
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                    "seconds": spent + time.time() - t0, "architecture": model.architecture,
                    "sittings": sittings + [done]}, tmp)
        tmp.replace(checkpoint)

    while time.time() - t0 < minutes * 60:
        model.train()
        z, z0, target = batch(tr, rng)
        loss = (anscombe(model(z, z0)) - anscombe(target)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 200 == 0:
            log(f"step {step} loss {loss.item():.4f} {time.time() - t0:.0f} s")
        if time.time() - last_save > 120:
            save()
            last_save = time.time()
    save()
    result = evaluate(model, val)
    log(f"step {step}: validation PSNR fit {result['fit']:.2f} dB, TV {result['tv']:.2f}, learned {result['learned']:.2f}")
    return result


def export(checkpoint: Path, paths: list[Path], directory: Path, log=print) -> dict:
    """weights/<name>.pt (the model's tensors only, loaded without pickle) and prior.json
    (sha256, architecture, the training record and the validation PSNRs)."""
    import hashlib
    import json
    import platform

    from ..model.prior import MANIFEST

    state = torch.load(checkpoint, weights_only=True)
    model = RefineNet(int(state["architecture"]["width"]), int(state["architecture"]["depth"]))
    model.load_state_dict(state["model"])
    tr, val, val_meta = load_pairs(paths)
    scores = evaluate(model, val)
    directory.mkdir(parents=True, exist_ok=True)
    name = state["architecture"]["name"] + ".pt"
    tmp = directory / (name + ".part")
    torch.save(model.state_dict(), tmp)
    tmp.replace(directory / name)
    entry = {
        "file": name,
        "sha256": hashlib.sha256((directory / name).read_bytes()).hexdigest(),
        "architecture": state["architecture"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "training": {"steps": int(state["step"]), "minutes": round(float(state["seconds"]) / 60, 1),
                     "where": f"CPU, 1 thread ({platform.processor() or platform.machine()}), torch {torch.__version__}",
                     "data": f"parts of simulator movies (seeds >= {TRAIN_SEED}), "
                             "python -m emcodec.training.prior make-data --movies 200",
                     "sittings": state.get("sittings", []),
                     "loss": "L1 in the Anscombe domain, Adam, 48-px crops, batch 8"},
        "validation": {"parts": len(val["z"]), "seeds": sorted({int(s) for s in val_meta[:, 0]}),
                       "psnr_db": {k: round(v, 2) for k, v in scores.items()}},
    }
    (directory / MANIFEST).write_text(json.dumps(entry, indent=2) + "\n")
    log(f"wrote {directory / name} and {directory / MANIFEST}: validation {entry['validation']['psnr_db']}")
    return entry


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-data")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--movies", type=int, default=200)
    m.add_argument("--first", type=int, default=0)
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, nargs="+", required=True)
    t.add_argument("--checkpoint", type=Path, required=True)
    t.add_argument("--minutes", type=float, default=30)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--lr", type=float, default=1e-3)
    x = sub.add_parser("export")
    x.add_argument("--data", type=Path, nargs="+", required=True)
    x.add_argument("--checkpoint", type=Path, required=True)
    x.add_argument("--out", type=Path, default=Path("weights"))
    e = sub.add_parser("evaluate")
    e.add_argument("--data", type=Path, nargs="+", required=True)
    e.add_argument("--checkpoint", type=Path, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "make-data":
        make_pairs(args.out, args.movies, args.first)
    elif args.cmd == "export":
        export(args.checkpoint, args.data, args.out)
    elif args.cmd == "train":
        train(args.data, args.checkpoint, args.minutes, args.resume, lr=args.lr)
    else:
        model = RefineNet()
        model.load_state_dict(torch.load(args.checkpoint, weights_only=True)["model"])
        print(evaluate(model, load_pairs(args.data)[1]))


if __name__ == "__main__":
    main()
