"""TCS-DL inference: the shipped network for the file's B, on the CPU or a GPU.

The model is chosen from the masks' B at the first tile and kept; weights are checked
against their sha256 in weights/manifest.json before use (emcodec.model.load_model).
On CUDA the network runs in half precision; on the CPU in float32.
"""

from __future__ import annotations

import torch

from ..model import available_B, load_model
from ..shipped import SHIPPED_B
from .base import Decoder


class TcsDl(Decoder):
    name = "tcsdl"

    def __init__(self, weights_dir=None):
        self.weights_dir = weights_dir
        self._models: dict[tuple[int, str], torch.nn.Module] = {}
        self.entry: dict = {}

    @classmethod
    def supports(cls, B: int, weights_dir=None) -> bool:
        """Whether weights for this B are shipped (or present in weights_dir).

        A shipped B counts even when its file is missing: loading then fails with a clear
        error instead of falling back to GAP-TV without a word.
        """
        return int(B) in SHIPPED_B or int(B) in available_B(weights_dir)

    @property
    def labels(self) -> list[str]:
        sha = self.entry.get("sha256", "")
        return [f"weights sha256={sha}"] if sha else []

    def _model(self, B: int, device: torch.device) -> torch.nn.Module:
        key = (B, str(device))
        if key not in self._models:
            model, self.entry = load_model(B, self.weights_dir, device="cpu")
            if device.type == "cuda":
                model = model.half()
            self._models[key] = model.to(device).eval()
        return self._models[key]

    def decode_tile(self, y: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        model = self._model(masks.shape[1], y.device)
        dtype = next(model.parameters()).dtype
        _, frames = model(y.to(dtype), masks.to(dtype))
        return frames.float()

    def load(self, B: int) -> dict:
        """Load (and verify) the weights for B now; returns their manifest entry."""
        self._model(B, torch.device("cpu"))
        return self.entry
