"""Loading shipped or user TCS-DL weights safely (weights_only) after checking their sha256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..errors import WeightsError
from ..shipped import SHIPPED_B, weights_dir  # noqa: F401 - weights_dir is part of this module's API
from .tcsdl import ARCHITECTURE, TCSDL


def manifest(directory: Path | str | None = None) -> dict:
    """The manifest's entries keyed by B (int), each checked; {} when there is no manifest."""
    path = Path(directory or weights_dir()) / "manifest.json"
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsError(f"{path}: unreadable weights manifest ({exc})") from None
    entries = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        raise WeightsError(f"{path}: malformed weights manifest (no \"weights\" object)")
    return {_entry_B(path, key, entry): entry for key, entry in entries.items()}


def _entry_B(path: Path, key: str, entry) -> int:
    """The B of one manifest entry, after checking the fields loading relies on."""
    where = f"{path}: malformed weights manifest entry {key!r}"
    try:
        B = int(key)
    except ValueError:
        raise WeightsError(f"{where} (the key is not a group size B)") from None
    if not isinstance(entry, dict):
        raise WeightsError(f"{where} (an object is needed, not {type(entry).__name__})")
    file = entry.get("file")
    if not isinstance(file, str) or not file or Path(file).name != file:
        raise WeightsError(f"{where} (\"file\" must be a file name in the weights folder)")
    if not isinstance(entry.get("sha256"), str):
        raise WeightsError(f"{where} (\"sha256\" is missing)")
    arch = entry.get("architecture")
    if not isinstance(arch, dict) or not isinstance(arch.get("width"), int) or isinstance(arch.get("width"), bool):
        raise WeightsError(f"{where} (\"architecture\" with an integer width is missing)")
    for field in ("B",):
        for value in (entry.get(field, B), arch.get(field, B)):
            if value != B:
                raise WeightsError(f"{where} (it says B={value!r} but is listed under B={B})")
    return B


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
        shipped = (f"; emcodec ships weights for B={B}: reinstall it, or decode with --method gap-tv"
                   if int(B) in SHIPPED_B else "")
        raise WeightsError(f"no TCS-DL weights for B={B} in {d}{shipped}")
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
