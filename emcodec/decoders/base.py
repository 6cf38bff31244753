"""The decoder interface and what every method shares: normalisation, tiling, seam blending.

A method only reconstructs small normalised tiles; `decode_group` turns one measurement of
any size and dtype into frames in the input's units. Masks are a pure function of position,
so each tile makes its own and a full-frame mask stack (B x H x W) is never held.
"""

from __future__ import annotations

import os
import time
from typing import Callable, ClassVar

import numpy as np
import torch

from .. import masks as _masks
from ..encoder import usable_cores
from ..errors import InputError, MissingDependencyError

LOW_PERCENTILE = 0.1
HIGH_PERCENTILE = 99.9


class Decoder:
    """A reconstruction method: set `name`, implement `decode_tile`."""

    name: ClassVar[str] = ""

    def decode_tile(self, y: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Reconstruct a batch of normalised tiles.

        y: float32 (N, h, w), masks: float32 0/1 (N, B, h, w), with y = sum_k masks_k * x_k
        for frames x that lie roughly in [0, 1]. Returns float32 (N, B, h, w).
        """
        raise NotImplementedError


# ---------------------------------------------------------------- whole-frame helpers (numpy)

from .measurement import (STRIP_BITS, Noise, SelfCheck, _row_strips, apply_masks, mask_sum,  # noqa: E402,F401
                          measurement_residual, self_check)


def normalisation_range(y: np.ndarray, n_frames: int, seed: int) -> tuple[float, float]:
    """Robust (lo, hi) of Ybar = Y / S, so that normalised frames lie roughly in [0, 1]."""
    s = mask_sum(seed, n_frames, *y.shape)
    covered = s > 0  # pixels no frame was sampled at carry no information
    if not covered.any():
        return 0.0, 1.0
    ybar = y[covered].astype(np.float64) / s[covered]
    lo, hi = np.percentile(ybar, [LOW_PERCENTILE, HIGH_PERCENTILE])
    lo, hi = float(lo), float(hi)
    if not hi > lo:  # flat measurement: any scale maps it to a constant
        hi = lo + 1.0
    return lo, hi


# ---------------------------------------------------------------- tiling


def tile_starts(length: int, tile: int, overlap: int) -> tuple[list[int], int]:
    """Tile origins along one axis and the tile size there.

    The last tile is shifted back inside the frame instead of padded, so every tile has the
    same shape (batches stack) and sees only real data.
    """
    if length <= tile:
        return [0], length
    step = tile - overlap
    return list(range(0, length - tile, step)) + [length - tile], tile


def blend_window(size: int, overlap: int) -> np.ndarray:
    """Raised-cosine ramps over `overlap` pixels at both ends, strictly positive.

    Adjacent ramps sum to one where tiles overlap by exactly `overlap`; elsewhere the weight
    map normalises. Tile borders, where decoders are worst, get the least weight.
    """
    w = np.ones(size, dtype=np.float64)
    n = min(overlap, size // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        w[:n] = ramp
        w[size - n :] = ramp[::-1]
    return w


def _check_args(y: np.ndarray, n_frames: int, tile: int, overlap: int, batch: int) -> None:
    if y.ndim != 2 or y.size == 0:
        raise InputError(f"a measurement must be one non-empty 2-D frame, got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.number) or np.issubdtype(y.dtype, np.complexfloating):
        raise InputError(f"a measurement must be real numbers, got dtype {y.dtype}")
    if np.issubdtype(y.dtype, np.floating) and not np.isfinite(y).all():
        raise InputError("the measurement contains NaN or infinite values")
    if n_frames < 1:
        raise ValueError(f"group size must be >= 1, got {n_frames}")
    if tile < 1 or not 0 <= overlap < tile or batch < 1:
        raise ValueError(f"need tile >= 1, 0 <= overlap < tile, batch >= 1 (got {tile}, {overlap}, {batch})")


def idle_cores(sample_s: float = 0.2) -> int:
    """Cores that other processes are not using right now (Linux /proc/stat; else all).

    Measured on 2 cores: with one core busy elsewhere, a 2-thread CPU decode ran 15-50x
    slower than a 1-thread one (every parallel region waits for the descheduled thread),
    while on idle cores 2 threads were 1.6x faster. So use only the cores that are free.
    """
    cores = usable_cores()

    def ticks():
        with open("/proc/stat") as f:
            v = [int(t) for t in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    try:
        total0, idle0 = ticks()
        time.sleep(sample_s)
        total1, idle1 = ticks()
    except (OSError, ValueError, IndexError):
        return cores
    if total1 <= total0:
        return cores
    machine = os.cpu_count() or cores
    free = machine * (idle1 - idle0) / (total1 - total0)
    return max(1, min(cores, int(free + 0.5)))


def set_cpu_threads(threads: int | None = None) -> int:
    """Torch's CPU threads for decoding: `threads`, or the idle cores when None/0."""
    n = threads if threads and threads > 0 else idle_cores()
    torch.set_num_threads(n)
    return n


def resolve_device(device) -> torch.device:
    """"auto" -> the GPU when torch sees one, else the CPU; a missing GPU is a clear error."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MissingDependencyError("device cuda asked for, but this PyTorch sees no CUDA GPU (use --device cpu)")
    return device


def decode_group(
    decoder: Decoder,
    y: np.ndarray,
    B: int,
    seed: int,
    *,
    tile: int = 256,
    overlap: int = 32,
    batch: int = 4,
    device="cpu",
    mean_of: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Decode one measurement Y (H, W) of B frames into float32 frames (B, H, W).

    With `mean_of=n`, return only the average of the first n frames (H, W), built tile by
    tile: the movie decoder's first pass needs no more, and B full frames of a large
    detector would not fit in memory beside the window.

    Normalises with y' = (Y - lo*S) / (hi - lo), which is exactly the measurement of the
    normalised frames (x - lo) / (hi - lo), decodes overlapping tiles `batch` at a time and
    blends them, then maps back with x = x' * (hi - lo) + lo. `device` is "cpu", "cuda" or
    "auto". `progress(fraction done)` is called after each batch of tiles: a 4k group takes
    minutes, and a bar that moves once per group looks hung.
    """
    y = np.asarray(y)
    _check_args(y, B, tile, overlap, batch)
    device = resolve_device(device)
    height, width = y.shape
    lo, hi = normalisation_range(y, B, seed)
    ys, th = tile_starts(height, tile, overlap)
    xs, tw = tile_starts(width, tile, overlap)
    window = np.outer(blend_window(th, overlap), blend_window(tw, overlap)).astype(np.float32)
    out = np.zeros((B, height, width) if mean_of is None else (height, width), dtype=np.float32)
    weight = np.zeros((height, width), dtype=np.float32)
    origins = [(y0, x0) for y0 in ys for x0 in xs]
    for i in range(0, len(origins), batch):
        chunk = origins[i : i + batch]
        decoded = _decode_chunk(decoder, y, chunk, B, seed, th, tw, lo, hi, device)
        for (y0, x0), x in zip(chunk, decoded):
            if mean_of is not None:
                x = x[:mean_of].mean(0)
            out[..., y0 : y0 + th, x0 : x0 + tw] += x * window
            weight[y0 : y0 + th, x0 : x0 + tw] += window
        if progress is not None:
            progress((i + len(chunk)) / len(origins))
    out /= weight
    out *= np.float32(hi - lo)
    out += np.float32(lo)
    return out


def _decode_chunk(decoder, y, chunk, n_frames, seed, th, tw, lo, hi, device) -> np.ndarray:
    """Masks, normalised measurements and decoded normalised frames of a few tiles."""
    m = np.stack([_masks.make_masks(seed, n_frames, y0, x0, th, tw) for y0, x0 in chunk])
    yt = np.stack([y[y0 : y0 + th, x0 : x0 + tw] for y0, x0 in chunk]).astype(np.float64)
    yn = (yt - lo * m.sum(1)) / (hi - lo)
    with torch.inference_mode():
        x = decoder.decode_tile(
            torch.from_numpy(yn.astype(np.float32)).to(device),
            torch.from_numpy(m).to(device=device, dtype=torch.float32),
        )
    if tuple(x.shape) != m.shape:
        raise RuntimeError(f"{type(decoder).__name__}.decode_tile returned shape {tuple(x.shape)}, expected {m.shape}")
    return x.detach().to("cpu", torch.float32).numpy()


def decode_stored_group(decoder: Decoder, group, B: int, seed: int, *, device="cpu", noise: Noise | None = None,
                        progress: Callable[[float], None] | None = None) -> tuple[np.ndarray, SelfCheck]:
    """The real frames of a stored group (container.Group) and its self-check.

    A group split at a scene cut is decoded part by part, each as a padded group of B
    frames; its self-check is the worst part's. `noise`: the measurement's noise model, to
    judge the residual by (measurement.self_check). `progress(fraction of the group done)`.
    """
    frames, check = [], None
    total, before = sum(part.n_frames for part in group.parts), 0
    for part in group.parts:
        tick = None
        if progress is not None:
            tick = (lambda f, a=before, n=part.n_frames: progress((a + f * n) / total))  # noqa: E731
        x = decode_group(decoder, part.measurement, B, seed, device=device, progress=tick)
        part_check = self_check(x[: part.n_frames], part.measurement, seed, B, noise)
        check = part_check if check is None else check.worst(part_check)
        frames.append(x[: part.n_frames])
        before += part.n_frames
    return np.concatenate(frames), check
