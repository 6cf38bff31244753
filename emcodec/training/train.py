"""The TCS-DL training loop: simulator clips, fresh random masks, checkpoints, a time budget.

Every training clip is a fresh simulator movie (seed from the run seed and step; seeds
>= VALIDATION_SEED are never used for training) coded with freshly drawn masks, so the
weights work with any mask seed. The measurement comes from the noisy frames and the loss is
against the clean frames, on both the forward and the backward outputs. Clean and noisy
frames are normalised with the same (lo, hi) taken from the measurement, exactly as the
decoders do at inference.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

try:
    import fcntl  # POSIX: serialises manifest updates of runs that finish together
except ImportError:  # Windows: runs there export one at a time
    fcntl = None

from ..model import ARCHITECTURE, TCSDL, adapt_state_dict
from ..simulate import simulate_movie

VALIDATION_SEED = 10**9  # simulator seeds at and above this are held out (validation, tests)
LOW_Q, HIGH_Q = 0.001, 0.999  # the decoders' 0.1 / 99.9 percentiles of Ybar


@dataclasses.dataclass
class TrainConfig:
    """Everything that determines a run (JSON-serialisable, recorded with the weights)."""

    B: int = 10
    width: int = 32
    reproject: bool = True
    out: str = "checkpoints/run"
    seed: int = 0
    steps: int = 5000  # the LR schedule spans this many steps
    minutes: float = 0.0  # wall-clock cap (0: none); final weights are written either way
    batch: int = 4
    patch: int = 64
    lr: float = 1e-3
    lr_min: float = 2e-5
    warmup: int = 100
    rewarm: int = 100  # on resume, steps to ramp from the learning rate the run stopped at
    clip_grad: float = 1.0
    fwd_weight: float = 0.5  # loss = MSE(backward) + fwd_weight * MSE(forward)
    init: str = ""  # weights (state_dict) to start from, adapted to B if needed
    data: str = ""  # directory of the user's TIFF/MRC movies to mix in
    data_fraction: float = 0.5
    val_clips: int = 8
    val_size: int = 96
    val_minutes: float = 5.0
    checkpoint_minutes: float = 3.0
    threads: int = 1
    device: str = "auto"
    export: str = ""  # directory for tcsdl-b{B}.pt and manifest.json (e.g. "weights")


# ---------------------------------------------------------------- batches


def normalise(noisy: torch.Tensor, clean: torch.Tensor, masks: torch.Tensor):
    """(y', target) for frames (N, B, h, w): y' = (Y - lo S)/(hi - lo), target = (x - lo)/(hi - lo).

    lo/hi are robust percentiles of Ybar = Y / S over sampled pixels, per clip, as at inference.
    """
    Y = (masks * noisy).sum(1)
    S = masks.sum(1)
    ys, ts = [], []
    for i in range(len(Y)):
        cov = S[i] > 0
        ybar = Y[i][cov] / S[i][cov] if cov.any() else Y[i].flatten()
        lo, hi = torch.quantile(ybar.float(), torch.tensor([LOW_Q, HIGH_Q], device=ybar.device))
        lo, hi = float(lo), float(hi)
        if not hi > lo:
            hi = lo + 1.0
        ys.append((Y[i] - lo * S[i]) / (hi - lo))
        ts.append((clean[i] - lo) / (hi - lo))
    return torch.stack(ys), torch.stack(ts)


def _augment(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random 90-degree rotation, flip and time reversal (the physics is symmetric in all)."""
    x = np.rot90(x, int(rng.integers(4)), axes=(-2, -1))
    if rng.random() < 0.5:
        x = x[..., ::-1]
    if rng.random() < 0.5:
        x = x[:, ::-1]
    return np.ascontiguousarray(x)


def simulated_batch(cfg: TrainConfig, step: int):
    """(noisy, clean) float32 (batch, B, P, P) from fresh simulator seeds for this step."""
    rng = np.random.default_rng([cfg.seed, step, 1])
    noisy, clean = [], []
    margin = 16
    for i in range(cfg.batch):
        sim_seed = (cfg.seed * 1_000_003 + step * cfg.batch + i) % VALIDATION_SEED
        c, n = simulate_movie(cfg.B, cfg.patch + margin, cfg.patch + margin, seed=sim_seed)
        y0, x0 = rng.integers(0, margin + 1, 2)
        sl = (slice(None), slice(y0, y0 + cfg.patch), slice(x0, x0 + cfg.patch))
        both = _augment(np.stack([c[sl], n[sl].astype(np.float32)]), rng)
        clean.append(both[0])
        noisy.append(both[1])
    return torch.from_numpy(np.stack(noisy)), torch.from_numpy(np.stack(clean))


class UserMovies:
    """Random B-frame crops of the user's movies (TIFF/MRC via emcodec.stacks, lazily).

    Integer counts are split by binomial thinning into two independent halves (Poisson noise
    stays Poisson): one makes the measurement, the other is the target, so the network still
    learns to denoise without clean frames (Noise2Noise). Other data is its own target.
    """

    def __init__(self, directory: str):
        from ..stacks import open_stack  # lazy: only --data needs it

        self.open_stack = open_stack
        exts = {".tif", ".tiff", ".mrc", ".mrcs", ".st"}
        self.paths = sorted(p for p in Path(directory).rglob("*") if p.suffix.lower() in exts)
        if not self.paths:
            raise FileNotFoundError(f"no TIFF/MRC movies under {directory}")

    def clip(self, B: int, patch: int, rng: np.random.Generator):
        path = self.paths[int(rng.integers(len(self.paths)))]
        reader = self.open_stack(path)
        try:
            n = reader.info.n_frames
            start = int(rng.integers(0, max(1, n - B + 1)))
            x = np.asarray(reader.read(start, min(n, start + B)))
        finally:
            close = getattr(reader, "close", None)
            if close:
                close()
        if len(x) < B:  # short movie: pad with the last frame, like the encoder
            x = np.concatenate([x, np.repeat(x[-1:], B - len(x), 0)])
        h, w = x.shape[-2:]
        if h < patch or w < patch:
            raise ValueError(f"{path}: frames {h}x{w} are smaller than the patch {patch}")
        y0, x0 = int(rng.integers(0, h - patch + 1)), int(rng.integers(0, w - patch + 1))
        x = x[:, y0 : y0 + patch, x0 : x0 + patch]
        if np.issubdtype(x.dtype, np.integer) and x.min() >= 0:
            half = rng.binomial(x.astype(np.int64), 0.5)
            inp, tgt = 2.0 * half, 2.0 * (x - half)
        else:
            inp = tgt = x.astype(np.float64)
        both = _augment(np.stack([tgt, inp]).astype(np.float32), rng)
        return both[1], both[0]


def training_batch(cfg: TrainConfig, step: int, user: UserMovies | None):
    noisy, clean = simulated_batch(cfg, step)
    if user is not None:
        rng = np.random.default_rng([cfg.seed, step, 2])
        for i in range(cfg.batch):
            if rng.random() < cfg.data_fraction:
                n, c = user.clip(cfg.B, cfg.patch, rng)
                noisy[i], clean[i] = torch.from_numpy(n), torch.from_numpy(c)
    return noisy, clean


def draw_masks(cfg: TrainConfig, step: int, shape) -> torch.Tensor:
    """Fresh Bernoulli(0.5) masks for this step (a pure function of seed and step)."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step + 7)
    return (torch.rand(shape, generator=g) < 0.5).float()


def validation_set(cfg: TrainConfig):
    """Fixed held-out clips (seeds >= VALIDATION_SEED) at three doses, normalised."""
    noisy, clean = [], []
    doses = [1.0, 20.0, 100.0]
    for i in range(cfg.val_clips):
        c, n = simulate_movie(cfg.B, cfg.val_size, cfg.val_size, seed=VALIDATION_SEED + i,
                              dose=doses[i % len(doses)])
        clean.append(c)
        noisy.append(n.astype(np.float32))
    noisy, clean = torch.from_numpy(np.stack(noisy)), torch.from_numpy(np.stack(clean))
    g = torch.Generator().manual_seed(VALIDATION_SEED)
    masks = (torch.rand(noisy.shape, generator=g) < 0.5).float()
    y, target = normalise(noisy, clean, masks)
    return y, masks, target


def psnr_frames(x: torch.Tensor, ref: torch.Tensor) -> float:
    """Mean over clips and frames of per-frame PSNR with the reference clip's max - min as peak."""
    peak = ref.flatten(1).amax(1) - ref.flatten(1).amin(1)  # per clip
    mse = ((x - ref) ** 2).mean((-2, -1)).clamp(min=1e-12)  # (N, B)
    return float((10 * torch.log10(peak[:, None] ** 2 / mse)).mean())


@torch.inference_mode()
def validate(model: TCSDL, val, device) -> float:
    model.eval()
    y, masks, target = val
    outs = []
    for i in range(0, len(y), 4):
        outs.append(model(y[i : i + 4].to(device), masks[i : i + 4].to(device))[1].float().cpu())
    model.train()
    return psnr_frames(torch.cat(outs), target)


# ---------------------------------------------------------------- checkpoints and export


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def where_trained(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    name = platform.processor() or "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {name} ({torch.get_num_threads()} thread(s))"


def export_weights(model: TCSDL, cfg: TrainConfig, directory: str, info: dict) -> Path:
    """Write tcsdl-b{B}.pt (a plain state_dict) and its entry in manifest.json."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"tcsdl-b{cfg.B}.pt"
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    _atomic_save(state, path)
    manifest_path = d / "manifest.json"
    with open(d / ".manifest.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        manifest.setdefault("weights", {})
        manifest["weights"][str(cfg.B)] = {
            "file": path.name,
            "B": cfg.B,
            "architecture": {"name": ARCHITECTURE, **model.hyperparameters()},
            "parameters": sum(p.numel() for p in model.parameters()),
            "training": dataclasses.asdict(cfg),
            **info,
            "sha256": sha256(path),
        }
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path


def lr_at(cfg: TrainConfig, step: int, elapsed: float = 0.0) -> float:
    """Linear warm-up, then cosine from lr to lr_min over cfg.steps or the time cap.

    Progress is whichever budget is further spent, so a run stopped by `minutes` on a busy
    machine still ends with a decayed learning rate. With minutes=0 it is purely step-based
    (bit-reproducible on the same machine).
    """
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    p = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    if cfg.minutes > 0:
        p = max(p, min(1.0, elapsed / (cfg.minutes * 60)))
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * p))


def rewarmed_lr(scheduled: float, stopped_at: float, k: int, rewarm: int) -> float:
    """Learning rate of the k-th step (0-based) of a resumed sitting.

    A resumed run with a longer schedule would jump from the small rate it stopped at to the
    middle of the new cosine: a 26x jump that sent B=10's loss to 1e9 for a step. The rate
    rises geometrically from where it stopped to the schedule's over `rewarm` steps instead.
    """
    if rewarm <= 0 or k >= rewarm or not 0 < stopped_at < scheduled:
        return scheduled
    return stopped_at * (scheduled / stopped_at) ** ((k + 1) / rewarm)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ---------------------------------------------------------------- the loop


def train(cfg: TrainConfig, *, resume: bool = False, stop_at: int | None = None, log=print,
          progress=None) -> dict:
    """Train (or resume) a run; returns a summary. Stops at cfg.steps, `stop_at` or the time cap.

    Each call is a sitting; the sittings (their step range, schedule and init) are kept in the
    checkpoint and the manifest so that a run resumed with other settings can be replayed.

    `progress(step, steps, loss, val_psnr)` is called after every step (for a progress bar).
    """
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    model = TCSDL(cfg.B, cfg.width, cfg.reproject).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    step, elapsed, history, sittings = 0, 0.0, [], []
    stopped_lr = 0.0
    resumed = resume and ckpt_path.exists()
    if resumed:
        ck = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        step, elapsed, history = int(ck["step"]), float(ck["elapsed"]), json.loads(ck["history"])
        sittings = json.loads(ck.get("sittings", "[]"))
        stopped_lr = float(opt.param_groups[0]["lr"])
        log(f"resumed from {ckpt_path} at step {step} ({elapsed / 60:.1f} min trained)")
    elif cfg.init:
        state = torch.load(cfg.init, map_location="cpu", weights_only=True)
        model.load_state_dict(adapt_state_dict(state, cfg.B))
        log(f"initialised from {cfg.init}")
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"TCS-DL B={cfg.B} width={cfg.width}: {n_params} parameters on {where_trained(device)}")
    user = UserMovies(cfg.data) if cfg.data else None
    val = validation_set(cfg)

    sitting = {"from_step": step, "steps": cfg.steps, "minutes": cfg.minutes, "lr": cfg.lr,
               "lr_min": cfg.lr_min, "warmup": cfg.warmup, "init": "" if resumed else cfg.init,
               "rewarm": cfg.rewarm if resumed else 0}
    elapsed_before = elapsed

    def sittings_so_far():
        return sittings + [{**sitting, "to_step": step, "stopped_by_time_cap": capped,
                            "duration_minutes": round((elapsed - elapsed_before) / 60, 2)}]

    def save_checkpoint():
        _atomic_save({"model": model.state_dict(), "optimizer": opt.state_dict(), "step": step,
                      "elapsed": elapsed, "history": json.dumps(history),
                      "sittings": json.dumps(sittings_so_far()),
                      "config": json.dumps(dataclasses.asdict(cfg))}, ckpt_path)

    start = time.monotonic() - elapsed
    last_ckpt = last_val = time.monotonic()
    run_loss, t_step = None, None
    capped = False
    last_step = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    while step < last_step:
        if cfg.minutes > 0 and time.monotonic() - start >= cfg.minutes * 60:
            capped = True
            break
        t0 = time.monotonic()
        noisy, clean = training_batch(cfg, step, user)
        masks = draw_masks(cfg, step, noisy.shape)
        y, target = normalise(noisy, clean, masks)
        y, masks, target = y.to(device), masks.to(device), target.to(device)
        for group in opt.param_groups:
            group["lr"] = rewarmed_lr(lr_at(cfg, step, time.monotonic() - start), stopped_lr,
                                      step - sitting["from_step"], sitting["rewarm"])
        fwd, bwd = model(y, masks)
        loss = torch.mean((bwd - target) ** 2) + cfg.fwd_weight * torch.mean((fwd - target) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        opt.step()
        step += 1
        dt = time.monotonic() - t0
        t_step = dt if t_step is None else 0.95 * t_step + 0.05 * dt
        lv = loss.item()
        run_loss = lv if run_loss is None else 0.98 * run_loss + 0.02 * lv
        elapsed = time.monotonic() - start
        if progress is not None:
            progress(step, cfg.steps, run_loss, history[-1]["val_psnr"] if history else None)
        if step % 25 == 0 or step == 1:
            log(f"step {step}/{cfg.steps} loss {run_loss:.5f} lr {opt.param_groups[0]['lr']:.2e} "
                f"{t_step:.2f} s/step {elapsed / 60:.1f} min")
        now = time.monotonic()
        if now - last_val >= cfg.val_minutes * 60:
            v = validate(model, val, device)
            history.append({"step": step, "minutes": round(elapsed / 60, 2), "val_psnr": round(v, 3),
                            "loss": round(run_loss, 6)})
            log(f"validation PSNR {v:.2f} dB at step {step}")
            last_val = now
        if now - last_ckpt >= cfg.checkpoint_minutes * 60:
            save_checkpoint()
            last_ckpt = now
    elapsed = time.monotonic() - start
    v = validate(model, val, device)
    history.append({"step": step, "minutes": round(elapsed / 60, 2), "val_psnr": round(v, 3),
                    "loss": None if run_loss is None else round(run_loss, 6)})
    save_checkpoint()
    torch.save({k: t.detach().cpu() for k, t in model.state_dict().items()}, out / "final.pt")
    summary = {"steps_done": step, "stopped_by_time_cap": capped, "duration_minutes": round(elapsed / 60, 2),
               "seconds_per_step": None if t_step is None else round(t_step, 3),
               "where_trained": where_trained(device), "torch": torch.__version__,
               "final_val_psnr_db": round(v, 3),
               "validation": {"clips": cfg.val_clips, "size": cfg.val_size, "doses": [1.0, 20.0, 100.0],
                              "seeds_from": VALIDATION_SEED},
               "sittings": sittings_so_far(), "history": history}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    log(f"done: {step} steps, {elapsed / 60:.1f} min, validation PSNR {v:.2f} dB")
    if cfg.export:
        path = export_weights(model, cfg, cfg.export, {k: summary[k] for k in (
            "steps_done", "stopped_by_time_cap", "duration_minutes", "seconds_per_step", "where_trained",
            "torch", "final_val_psnr_db", "validation", "sittings")})
        log(f"exported {path}")
    return summary


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m emcodec.training", description="Train TCS-DL.")
    for f in dataclasses.fields(TrainConfig):
        name = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(name, type=lambda s: s.lower() in ("1", "true", "yes"), default=f.default)
        else:
            typ = {"int": int, "float": float, "str": str}.get(f.type if isinstance(f.type, str) else f.type.__name__)
            p.add_argument(name, type=typ, default=f.default)
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--config", default="", help="a recorded config.json to start from (flags override)")
    args = vars(p.parse_args(argv))
    resume, config_path = args.pop("resume"), args.pop("config")
    base = dataclasses.asdict(TrainConfig())
    if config_path:
        base.update(json.loads(Path(config_path).read_text()))
    explicit = {k: v for k, v in args.items() if v != dataclasses.asdict(TrainConfig())[k]}
    base.update(explicit)
    cfg = TrainConfig(**base)
    train(cfg, resume=resume, log=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main(sys.argv[1:])
