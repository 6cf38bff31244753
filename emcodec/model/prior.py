"""A learned prior for the movie decoder: the last step on each part's fitted centre image.

The motion-compensated fit (decoders/movie.py) explains the measurements of a window of
groups with one centre image z; what is left is noise and the coded-exposure artifacts of
that fit. This network replaces the TV step that cleans them: it sees z and the fused first
pass z0 it started from, in the variance-stabilised (Anscombe) domain, normalised by z0's
own level and contrast, with the noise level of z - z0 as a third channel, so one set of
weights serves every B, mask and dose. It predicts a correction to z (residual learning).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

ARCHITECTURE = {"name": "refine-v1", "width": 32, "depth": 7}


def anscombe(x):
    """2 sqrt(x + 3/8): Poisson counts to roughly unit variance."""
    return 2.0 * torch.sqrt(torch.clamp(x, min=0.0) + 0.375)


def inverse_anscombe(a):
    return (a / 2.0) ** 2 - 0.375


def haar_sigma_t(img: torch.Tensor) -> torch.Tensor:
    """Noise std of each image (N, 1, H, W) from its finest diagonal Haar details (MAD)."""
    h, w = img.shape[-2] // 2 * 2, img.shape[-1] // 2 * 2
    a = img[..., :h, :w]
    hh = (a[..., 0::2, 0::2] - a[..., 0::2, 1::2] - a[..., 1::2, 0::2] + a[..., 1::2, 1::2]) / 2
    return hh.abs().flatten(1).median(dim=1).values / 0.6745


class RefineNet(nn.Module):
    """A small dilated CNN: (z, z0) in counts per frame -> refined z, same shape (N, 1, H, W)."""

    def __init__(self, width: int = ARCHITECTURE["width"], depth: int = ARCHITECTURE["depth"]):
        super().__init__()
        dilations = [1, 2, 4, 8, 4, 2, 1][: depth - 2] + [1] * max(0, depth - 9)
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU(inplace=True)]
        for d in dilations:
            layers += [nn.Conv2d(width, width, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(width, 1, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.architecture = {"name": ARCHITECTURE["name"], "width": width, "depth": depth}

    def forward(self, z: torch.Tensor, z0: torch.Tensor) -> torch.Tensor:
        a, a0 = anscombe(z), anscombe(z0)
        level = a0.mean(dim=(-2, -1), keepdim=True)
        scale = a0.std(dim=(-2, -1), keepdim=True) + 0.1
        sigma = (haar_sigma_t(a - a0) / scale.flatten())[:, None, None, None]
        x = torch.cat([(a - level) / scale, (a0 - level) / scale, sigma.expand_as(a)], dim=1)
        return inverse_anscombe(a + scale * self.body(x))


def refine_image(model: RefineNet, z: np.ndarray, z0: np.ndarray) -> np.ndarray:
    """The model on one (H, W) image pair, on the CPU, without gradients."""
    with torch.no_grad():
        t = lambda v: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))[None, None]  # noqa: E731
        return model(t(z), t(z0))[0, 0].numpy()


MANIFEST = "prior.json"  # beside the TCS-DL weights (weights/), packaged with them


def load_prior(directory=None):
    """The shipped learned prior in eval mode and its manifest entry, or (None, None) when
    the weights folder has no prior manifest (the movie decoder then keeps its TV step).

    A manifest whose file is missing, unreadable, of another sha256 or another shape is a
    WeightsError: a silent fall back would change every decode without saying so.
    """
    import hashlib
    import json
    from pathlib import Path

    from ..errors import WeightsError
    from ..shipped import weights_dir

    d = Path(directory or weights_dir())
    path = d / MANIFEST
    if not path.exists():
        return None, None
    try:
        entry = json.loads(path.read_text())
        file, sha, arch = d / entry["file"], entry["sha256"], entry["architecture"]
        width, depth = int(arch["width"]), int(arch["depth"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise WeightsError(f"{path}: malformed prior manifest ({exc})") from None
    if arch.get("name") != ARCHITECTURE["name"]:
        raise WeightsError(f"{path}: prior architecture {arch.get('name')!r} is not {ARCHITECTURE['name']!r}")
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as exc:
        raise WeightsError(f"cannot read {file}: {exc}") from None
    if digest != sha:
        raise WeightsError(f"{file}: sha256 {digest} does not match {MANIFEST}")
    try:
        model = RefineNet(width, depth)
        model.load_state_dict(torch.load(file, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001 - any unpickling/shape failure is a weights problem
        raise WeightsError(f"{file}: prior weights do not fit the model ({exc})") from None
    return model.eval(), entry
