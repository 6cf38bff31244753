"""Gatan DM3/DM4, Thermo Fisher Velox EMD and TIA SER movies through RosettaSciIO.

RosettaSciIO (HyperSpy's I/O library) is GPL-3.0-or-later, so it lives in the optional
``[formats]`` extra and is imported only here. Files are opened lazily (RosettaSciIO hands
back a dask array over a memory map or an HDF5 dataset) and read a few frames at a time.
A vendor file must hold exactly one image stack: a single image, a spectrum or a 4-D STEM
dataset is refused with one line that says what the file does hold.
"""

from __future__ import annotations

import importlib

import numpy as np

from ..errors import InputError, MissingDependencyError
from .base import StackInfo, StackReader, _check_dtype, _one_line, _pixel_pair, _unit_factor
from .metadata import bounded_tree

# emcodec format name -> RosettaSciIO plugin module
_PLUGINS = {"dm": "rsciio.digitalmicrograph", "emd": "rsciio.emd", "ser": "rsciio.tia"}
_TIME_TO_S = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "μs": 1e-6, "us": 1e-6, "ns": 1e-9, "min": 60.0}


def _plugin(fmt: str, name: str):
    try:
        return importlib.import_module(_PLUGINS[fmt])
    except ImportError:
        raise MissingDependencyError(
            f"reading '{name}' needs RosettaSciIO (GPL-3.0-or-later): pip install 'emcodec[formats]'"
        ) from None


def _kind(signal: dict) -> str:
    """What a signal is, in a microscopist's words."""
    axes = signal.get("axes") or []
    nav = sum(1 for a in axes if a.get("navigate"))
    sig = len(axes) - nav
    shape = "x".join(str(d) for d in np.shape(signal["data"]))
    if sig == 1:
        return f"a spectrum ({shape})" if nav == 0 else f"a spectrum image ({shape})"
    if sig == 2 and nav == 0:
        return f"a single image ({shape})"
    if sig == 2 and nav == 1:
        return "movie"
    return f"a {len(axes)}-D dataset ({shape})"


def _title(signal: dict) -> str:
    return str(((signal.get("metadata") or {}).get("General") or {}).get("title") or "")


def _pick_movie(signals: list, name: str, single_frames: bool) -> dict:
    kinds = [_kind(s) for s in signals]
    movies = [s for s, k in zip(signals, kinds) if k == "movie"]
    if single_frames and not movies:  # one frame of a series: a single image is what is wanted
        movies = [s for s, k in zip(signals, kinds) if k.startswith("a single image")]
    if len(movies) == 1:
        return movies[0]
    if movies:
        titles = ", ".join(_title(s) or "untitled" for s in movies)
        raise InputError(f"'{name}' holds {len(movies)} movies ({titles}); emcodec compresses one movie per file")
    if not signals:
        raise InputError(f"'{name}' holds no data")
    listed = ", ".join(kinds[:4]) + (f" and {len(kinds) - 4} more" if len(kinds) > 4 else "")
    raise InputError(f"'{name}' holds no movie ({listed}); emcodec needs a stack of image frames")


def _length(axis: dict) -> tuple[float | None, str | None]:
    unit = axis.get("units")
    factor = _unit_factor(unit)
    scale = axis.get("scale")
    if factor is None or scale is None:
        return None, None
    return float(scale) * factor, str(unit)


def _frame_time(axis: dict) -> float | None:
    factor = _TIME_TO_S.get(str(axis.get("units") or "").strip())
    scale = axis.get("scale")
    if factor is None or scale is None or not float(scale) > 0:
        return None
    return float(f"{float(scale) * factor:.9g}")


class _VendorReader(StackReader):
    def __init__(self, path: str, name: str, fmt: str, options):
        plugin = _plugin(fmt, name)
        try:
            signals = plugin.file_reader(path, lazy=True)
        except Exception as e:  # the plugins raise anything from struct.error to KeyError
            raise InputError(f"'{name}' is not a readable {fmt.upper()} file: {_one_line(e)}") from None
        movie = _pick_movie(list(signals), name, options.single_frames)
        data = movie["data"]
        if data.ndim == 2:
            data = data[None]
        n, height, width = (int(d) for d in data.shape)
        if n == 0 or height == 0 or width == 0:
            raise InputError(f"'{name}' has no frames (shape {tuple(data.shape)})")
        dtype = _check_dtype(np.dtype(data.dtype), name)
        axes = movie["axes"]
        nav = next((a for a in axes if a.get("navigate")), {})
        y_axis, x_axis = [a for a in axes if not a.get("navigate")]
        (y, unit_y), (x, unit_x) = _length(y_axis), _length(x_axis)
        pixel_size = _pixel_pair(x, y)
        self._data = data
        self.info = StackInfo(
            n_frames=n,
            height=height,
            width=width,
            dtype=dtype,
            pixel_size=pixel_size,
            source_format=fmt,
            source_name=name,
            extra={k: v for k, v in (("title", _title(movie)), ("reader", _reader_version())) if v},
            frame_time=_frame_time(nav),
            pixel_unit=(unit_x or unit_y) if pixel_size else None,
            metadata=bounded_tree(movie.get("original_metadata") or {}) or None,
        )

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        # Block by block into the chunk's own array: computing the slice would concatenate its
        # blocks into a second copy while their memory-mapped pages are still resident (a
        # 4096x4096 uint32 DM4 at B = 10: 1.7 GB peak against 1.1 GB for the same TIFF).
        info = self.info
        out = np.empty((stop - start, info.height, info.width), info.dtype)
        try:
            self._data[start:stop].store(out, lock=False, scheduler="synchronous")
        except Exception as e:
            raise InputError(f"'{info.source_name}': cannot read frames {start}-{stop - 1}: "
                             f"{_one_line(e)}") from None
        return out, False

    def close(self) -> None:
        self._data = None


def _reader_version() -> str:
    try:
        from importlib.metadata import version

        return f"rosettasciio {version('rosettasciio')}"
    except Exception:
        return ""


def open_reader(path: str, name: str, options, fmt: str) -> StackReader:
    return _VendorReader(path, name, fmt, options)
