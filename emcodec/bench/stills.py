"""Short movies with a known clean reference, made from real (S)TEM stills.

A still is real image content but not a movie: it is given sub-pixel drift (a steady
velocity plus a little jitter, as stage drift looks), scaled to a dose in counts per pixel
per frame, and Poisson-sampled. The noise-free drifted frames are the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

STILL_SUFFIXES = (".png",)


def read_still(path) -> np.ndarray:
    """A grayscale still as float64 (PNG via imagecodecs, so no new dependency)."""
    import imagecodecs

    path = Path(path)
    try:
        img = imagecodecs.png_decode(path.read_bytes())
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror})") from None
    except Exception as exc:  # noqa: BLE001 - imagecodecs raises its own types
        raise InputError(f"{path}: not a readable PNG ({exc})") from None
    img = np.asarray(img, dtype=np.float64)
    if img.ndim == 3:  # RGB(A) saved gray: average the colour channels
        img = img[..., :3].mean(axis=2)
    return img


def list_stills(folder) -> list[Path]:
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in STILL_SUFFIXES) if folder.is_dir() else []


def movie_from_still(path, n_frames: int, dose: float, seed: int, *, size: int | None = 256,
                     speed: float = 0.35, jitter: float = 0.08):
    """(clean float32 (n, s, s) expected counts, noisy uint16 counts) from one still.

    size:   centre crop (None: the largest square the drift allows).
    speed:  drift in pixels per frame, in a random direction; jitter: per-frame random
            sub-pixel offset on top (pixels, standard deviation).
    The mean of the clean movie is `dose` counts per pixel per frame.
    """
    from scipy import ndimage

    if n_frames < 1 or dose <= 0:
        raise ValueError("need n_frames >= 1 and dose > 0")
    img = read_still(path)
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi)
    t = np.arange(n_frames) - (n_frames - 1) / 2
    dy = speed * t * np.sin(angle) + rng.normal(0, jitter, n_frames)
    dx = speed * t * np.cos(angle) + rng.normal(0, jitter, n_frames)
    margin = int(np.ceil(max(np.abs(dy).max(), np.abs(dx).max()))) + 4
    h, w = img.shape
    s = min(h, w) - 2 * margin if size is None else size
    if s < 8 or s + 2 * margin > min(h, w):
        raise InputError(f"{path}: {h}x{w} is too small for a {s}x{s} movie with this drift")
    y0, x0 = (h - s) // 2, (w - s) // 2
    region = img[y0 - margin : y0 + s + margin, x0 - margin : x0 + s + margin]
    frames = np.empty((n_frames, s, s), dtype=np.float32)
    for i in range(n_frames):
        moved = ndimage.shift(region, (dy[i], dx[i]), order=3, mode="reflect")
        frames[i] = moved[margin : margin + s, margin : margin + s]
    frames = np.maximum(frames, 0)
    clean = (frames * np.float32(dose / max(frames.mean(), 1e-12))).astype(np.float32)
    noisy = np.clip(rng.poisson(clean), 0, 65535).astype(np.uint16)
    return clean, noisy
