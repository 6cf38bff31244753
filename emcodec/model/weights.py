"""Loading shipped or user TCS-DL weights safely (weights_only) after checking their sha256."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

from ..errors import WeightsError
from .tcsdl import ARCHITECTURE, TCSDL


def weights_dir() -> Path:
    """$EMCODEC_WEIGHTS, else the repository's weights/ folder (next to the package)."""
    env = os.environ.get("EMCODEC_WEIGHTS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "weights"


def manifest(directory: Path | str | None = None) -> dict:
    """The manifest's entries keyed by B (int); {} when there is none."""
    path = Path(directory or weights_dir()) / "manifest.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        return {int(b): e for b, e in data.get("weights", {}).items()}
    except (ValueError, AttributeError) as exc:
        raise WeightsError(f"{path}: unreadable weights manifest ({exc})") from None


def available_B(directory: Path | str | None = None) -> list[int]:
    return sorted(manifest(directory))


def load_model(B: int, directory: Path | str | None = None, device="cpu") -> tuple[TCSDL, dict]:
    """The TCS-DL model for group size B in eval mode, and its manifest entry.

    Raises WeightsError when there are no weights for B, the file's sha256 differs from the
    manifest, or the tensors do not fit the recorded architecture.
    """
    d = Path(directory or weights_dir())
    entry = manifest(d).get(int(B))
    if entry is None:
        raise WeightsError(f"no TCS-DL weights for B={B} in {d}")
    arch = entry.get("architecture", {})
    if arch.get("name") != ARCHITECTURE:
        raise WeightsError(f"weights for B={B} are for architecture {arch.get('name')!r}, not {ARCHITECTURE!r}")
    path = d / entry["file"]
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise WeightsError(f"cannot read {path}: {exc}") from None
    if digest != entry.get("sha256"):
        raise WeightsError(f"{path}: sha256 {digest} does not match the manifest")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        model = TCSDL(int(arch["B"]), int(arch["width"]), bool(arch.get("reproject", True)))
        model.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - any unpickling/shape failure is a weights problem
        raise WeightsError(f"{path}: weights do not fit the model ({exc})") from None
    return model.to(device).eval(), entry
