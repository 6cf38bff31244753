"""Movie file formats: one module per family behind one reader/writer interface.

Adding a format is one module and one line in ``FORMATS``. A format module provides
``open_reader(path, name, options, fmt) -> StackReader`` and, if emcodec can write it, ``Writer``
(a StackWriter subclass); optionally ``read_description(path, name)`` and
``reserved_labels(dtype)``. Modules are imported only when a file of theirs is opened, so an
optional library (RosettaSciIO) is needed only for its own formats.
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .. import atomic
from ..errors import InputError, OutputError
from .base import (
    SUPPORTED_DTYPES,
    StackInfo,
    StackReader,
    StackWriter,
    _check_readable,
    _one_line,
    release_pages,
)

__all__ = [
    "FORMATS",
    "Format",
    "ReadOptions",
    "StackInfo",
    "StackReader",
    "StackWriter",
    "SUPPORTED_DTYPES",
    "stack_format",
    "open_stack",
    "create_stack",
    "read_description",
    "release_pages",
]


@dataclass(frozen=True)
class Format:
    name: str  # what StackInfo.source_format says
    extensions: tuple[str, ...]  # lower case, with the dot
    module: str  # emcodec.formats.<module>
    directory: bool = False  # the movie is a folder (a zarr store), read and written as one file


FORMATS = (
    Format("tiff", (".tif", ".tiff"), "tiff"),
    Format("mrc", (".mrc", ".mrcs"), "mrc"),
    Format("dm", (".dm3", ".dm4"), "vendor"),  # RosettaSciIO ([formats] extra)
    Format("emd", (".emd",), "vendor"),
    Format("ser", (".ser",), "vendor"),
    Format("eer", (".eer",), "eer"),  # tifffile + imagecodecs
    Format("zarr", (".zarr",), "ome_zarr", directory=True),  # zarr-python 3, OME-NGFF 0.5 ([zarr] extra)
    Format("hdf5", (".h5", ".hdf5"), "hdf5"),  # h5py ([zarr] extra)
)


@dataclass(frozen=True)
class ReadOptions:
    """Choices a reader may take from the command line (formats ignore what is not theirs)."""

    series: bool = False  # a folder or glob of single-frame files is one movie (formats/series.py)
    eer_fraction: int = 1  # EER: raw frames summed into each output frame
    eer_upsample: int = 1  # EER: 1, 2 or 4 (super-resolution from the events' sub-pixel bits)
    gain_ref: str | None = None  # EER: gain reference multiplied into every frame
    single_frames: bool = False  # set by the series reader: a vendor file's single image is a frame
    allow_truncated: bool = False  # TIFF: compress the complete frames of a cut-short file (a warning)


def _by_extension() -> dict[str, Format]:
    return {ext: f for f in FORMATS for ext in f.extensions}


def _extensions_text() -> str:
    return ", ".join(ext for f in FORMATS for ext in f.extensions)


def _module(fmt: Format):
    return importlib.import_module(f"{__name__}.{fmt.module}")


def _format_of(path) -> Format:
    name = os.path.basename(os.fspath(path))
    ext = os.path.splitext(name)[1].lower()
    try:
        return _by_extension()[ext]
    except KeyError:
        raise InputError(
            f"unsupported file type '{name}': supported extensions are {_extensions_text()}"
        ) from None


def is_store(path) -> bool:
    """A folder that is one movie (a .zarr store), not a folder of movies or frames."""
    path = os.path.normpath(os.fspath(path))
    fmt = _by_extension().get(os.path.splitext(path)[1].lower())
    return fmt is not None and fmt.directory and os.path.isdir(path)


def stack_format(path) -> str:
    """The format's name ("tiff", "mrc", ...) from the extension; anything else is an InputError."""
    return _format_of(path).name


def open_stack(path, options: ReadOptions | None = None) -> StackReader:
    """Open a movie for streamed reading; every bad input is an InputError.

    With ``options.series`` a folder or glob of single-frame files is one movie; without it
    a folder is refused (one movie per file).
    """
    from .series import SeriesReader, is_glob

    path = os.fspath(path)
    options = options or ReadOptions()
    if options.series:
        return SeriesReader(path, options)
    if is_store(path):
        return _module(_format_of(path)).open_reader(path, os.path.basename(os.path.normpath(path)), options, "zarr")
    if os.path.isdir(path) or is_glob(path) and not os.path.exists(path):
        raise InputError(f"'{path}' is a folder or a glob: give --series to read its files as the frames "
                         "of one movie")
    fmt = _format_of(path)
    name = _check_readable(path)
    return _module(fmt).open_reader(path, name, options, fmt.name)


def read_description(path) -> str:
    """The free-text description stored with a movie ('' if none).

    TIFF: ImageJ 'Info', the emcodec entry of a tifffile JSON description, or the plain
    ImageDescription. MRC: the header labels, one per line, minus emcodec's own dtype marker.
    """
    path = os.fspath(path)
    fmt = _format_of(path)
    name = _check_readable(path)
    describe = getattr(_module(fmt), "read_description", None)
    return describe(path, name) if describe else ""


def create_stack(path, *, height: int, width: int, dtype, n_frames: int | None,
                 pixel_size=None, description: str = "", labels: Sequence[str] = (),
                 frame_time: float | None = None, pixel_unit: str | None = None,
                 source_metadata: dict | None = None, space_group: tuple | None = None,
                 force: bool = False) -> StackWriter:
    """Start writing a movie; the format comes from the extension.

    float16 is written as float32. MRC needs ``n_frames`` (ValueError otherwise) because the
    file is pre-sized and memory-mapped. ``labels`` must be printable ASCII, <= 80 characters
    each (they are MRC header labels; TIFF keeps them in its metadata). ``frame_time`` (s),
    ``pixel_unit`` (the unit to state the size in) and ``source_metadata`` (the source's own
    tree) are written where the format has a place for them (formats/carry.py);
    ``space_group`` (an MRC source's (space group, volume depth), mrc.space_group) only to MRC.
    """
    from .mrc import _check_labels

    target = os.fspath(path)
    try:
        fmt = _format_of(target)
    except InputError as e:
        raise OutputError(str(e)) from None
    module = _module(fmt)
    cls = getattr(module, "Writer", None)
    if cls is None:
        writable = ", ".join(ext for f in FORMATS if hasattr(_module(f), "Writer") for ext in f.extensions)
        raise OutputError(f"emcodec reads {fmt.name} files but does not write them: use {writable}")
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        dtype = np.dtype(np.float32)
    dtype = np.dtype(dtype.name)
    if dtype not in SUPPORTED_DTYPES:
        raise ValueError(f"unsupported dtype {dtype}")
    if height < 1 or width < 1:
        raise ValueError("height and width must be >= 1")
    if n_frames is not None and n_frames < 1:
        raise ValueError("n_frames must be >= 1 (or None if unknown, TIFF only)")
    if fmt.name == "mrc" and n_frames is None:
        raise ValueError("writing MRC needs the frame count up front")
    reserved = getattr(module, "reserved_labels", lambda dt, ft: 0)(dtype, frame_time)
    labels = _check_labels(labels, reserved)
    if pixel_size is not None:
        pixel_size = (float(pixel_size[0]), float(pixel_size[1]))
        if not all(math.isfinite(v) and v > 0 for v in pixel_size):
            raise ValueError(f"pixel size must be positive, got {pixel_size}")

    atomic.check_target(target, force=force)
    tmp = os.fspath(atomic.temporary_path(target))

    kw = dict(height=int(height), width=int(width), dtype=dtype, n_frames=n_frames, force=force,
              pixel_size=pixel_size, description=description or "", labels=labels,
              frame_time=frame_time, pixel_unit=pixel_unit, source_metadata=source_metadata)
    if fmt.name == "mrc":
        kw["space_group"] = space_group
    try:
        return cls(target, tmp, **kw)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OutputError(f"cannot write '{target}': {e.strerror or _one_line(e)}") from None
        raise
