"""Gatan DM3/DM4, Thermo Fisher Velox EMD and TIA SER movies through RosettaSciIO.

RosettaSciIO (HyperSpy's I/O library) is GPL-3.0-or-later, so it lives in the optional
``[formats]`` extra and is imported only here. Files are opened lazily (RosettaSciIO hands
back a dask array over a memory map or an HDF5 dataset) and read a few frames at a time.
A vendor file must hold exactly one image stack: a single image, a spectrum or a 4-D STEM
dataset is refused with one line that says what the file does hold.
"""

from __future__ import annotations

import importlib
import os
import re

import numpy as np

from ..errors import InputError, MissingDependencyError
from .base import StackInfo, StackReader, _check_dtype, _one_line, _pixel_pair, _unit_factor
from .metadata import bounded_tree

# emcodec format name -> RosettaSciIO plugin module
_PLUGINS = {"dm": "rsciio.digitalmicrograph", "emd": "rsciio.emd", "ser": "rsciio.tia"}
_TIME_TO_S = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "μs": 1e-6, "us": 1e-6, "ns": 1e-9, "min": 60.0}
_MAX_PIXEL_A = 1e7  # 1 mm: no micrograph's pixel is larger; a larger "length" is a misread calibration
_SER_NAME = re.compile(r"(.+)_\d+\.ser$", re.IGNORECASE)  # TIA: NAME.emi beside NAME_1.ser, NAME_2.ser, ...


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


def _pixel_size(x_axis: dict, y_axis: dict, guessed_unit: bool) -> tuple[tuple | None, str | None, str | None]:
    """(pixel size (x, y) in Å, its unit, None), or (None, None, a note saying what the file
    states instead) when its calibration is not a specimen pixel size: a reciprocal unit (a
    diffraction pattern's 1 / nm) or a length over 1 mm (a SER read without its .emi, whose
    unit RosettaSciIO then assumes to be metres)."""
    (y, unit_y), (x, unit_x) = _length(y_axis), _length(x_axis)
    size = _pixel_pair(x, y)
    if size is not None and max(size) <= _MAX_PIXEL_A:
        return size, unit_x or unit_y, None
    stated = next((a for a in (x_axis, y_axis) if a.get("units") and a.get("scale") is not None), None)
    if stated is None:
        return None, None, None
    text = f"the file states {float(stated['scale']):.6g} {stated['units']} per pixel"
    if size is None:
        return None, None, f"{text}, not a length"
    why = " (RosettaSciIO assumes metres for a .ser read without its .emi)" if guessed_unit else ""
    return None, None, f"{text}, over 1 mm: not a specimen's pixel{why}"


def _signals(plugin, path: str, name: str, fmt: str) -> tuple[list, bool]:
    """The file's signals, and whether their calibration unit is RosettaSciIO's guess. TIA
    keeps a series' acquisition settings in NAME.emi beside NAME_1.ser: a .ser read alone gets
    metres for its unit, read through its .emi the unit follows the mode (1 / m in diffraction)."""
    if fmt != "ser":
        return list(plugin.file_reader(path, lazy=True)), False
    match = _SER_NAME.match(name)
    emi = os.path.join(os.path.dirname(path), match.group(1) + ".emi") if match else ""
    if emi and os.path.isfile(emi):
        try:
            found = [s for s in plugin.file_reader(emi, lazy=True)
                     if ((s.get("metadata") or {}).get("General") or {}).get("original_filename") == name]
        except Exception:  # an unreadable .emi: the .ser alone, as without one
            found = []
        if found:
            return found, False
    return list(plugin.file_reader(path, lazy=True)), True


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
            signals, guessed_unit = _signals(plugin, path, name, fmt)
        except Exception as e:  # the plugins raise anything from struct.error to KeyError
            raise InputError(f"'{name}' is not a readable {fmt.upper()} file: {_one_line(e)}") from None
        movie = _pick_movie(signals, name, options.single_frames)
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
        pixel_size, pixel_unit, calibration = _pixel_size(x_axis, y_axis, guessed_unit)
        extra = {"title": _title(movie), "reader": _reader_version(), "calibration": calibration}
        self._data = data
        self.info = StackInfo(
            n_frames=n,
            height=height,
            width=width,
            dtype=dtype,
            pixel_size=pixel_size,
            source_format=fmt,
            source_name=name,
            extra={k: v for k, v in extra.items() if v},
            frame_time=_frame_time(nav),
            pixel_unit=pixel_unit,
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
