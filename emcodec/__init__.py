"""emcodec: temporal compressive-sensing codec for electron-microscopy movies.

Nothing heavy is imported here: compressing and inspecting never load torch. The Python
API (`emcodec.compress`, `emcodec.decompress`, `emcodec.open`; emcodec/api.py) is imported
on first use.
"""

__version__ = "0.1.0"

__all__ = ["compress", "decompress", "open", "__version__"]


def __getattr__(name: str):
    if name in ("compress", "decompress", "open"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'emcodec' has no attribute {name!r}")
