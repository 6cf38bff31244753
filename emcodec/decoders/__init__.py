"""Decoders: method name -> class, imported only when asked for.

Importing this package never imports torch, so the compress side and `--help` stay light.
A new method is one entry in `_REGISTRY`.
"""

from __future__ import annotations

import importlib

from ..errors import EmcodecError, MissingDependencyError

# method name -> (module, class name); insertion order is the order users see.
_REGISTRY: dict[str, tuple[str, str]] = {
    "tcsdl": ("emcodec.decoders.tcsdl", "TcsDl"),
    "gap-tv": ("emcodec.decoders.gaptv", "GapTV"),
}

TORCH_MISSING = "decoding needs PyTorch: pip install 'emcodec[decode]' (install torch first, see README)"


class UnknownMethodError(EmcodecError):
    """The requested decoding method is not one emcodec has."""


def available_methods() -> list[str]:
    """Names accepted by `get_decoder`, in registry order."""
    return list(_REGISTRY)


def require_torch():
    """Import torch or fail with the install hint instead of a bare ImportError."""
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError(TORCH_MISSING) from exc
    return torch


def get_decoder_class(name: str) -> type:
    """The decoder class registered as `name` (imports its module on first use)."""
    if name not in _REGISTRY:
        raise UnknownMethodError(
            f"unknown decoding method {name!r} (available: {', '.join(available_methods())})"
        )
    require_torch()
    module, cls = _REGISTRY[name]
    return getattr(importlib.import_module(module), cls)


def get_decoder(name: str, **options):
    """A ready decoder: `get_decoder("gap-tv", iterations=60)`."""
    return get_decoder_class(name)(**options)


__all__ = [
    "UnknownMethodError",
    "available_methods",
    "get_decoder",
    "get_decoder_class",
    "require_torch",
]
