"""Reading and writing movie stacks (TIFF via tifffile, MRC/MRCS via mrcfile), streamed.

A movie is always seen as frames ``(n, height, width)``; a single 2-D image is a 1-frame movie.
Files are never loaded whole: contiguous uncompressed data are memory-mapped (chunks are views,
so the encoder reads at page-cache speed), anything else is decoded a few pages at a time.

Pixel types: uint8, int8, uint16, int16, uint32, int32 and float32 are read as they are stored
(byte-swapped to native order when needed); float16 is upcast to float32 because the rest of the
codec has no half-precision path. Everything else (RGB, complex, bool, 64-bit) is an InputError.

Pixel size is carried as ``(x, y)`` in Ångström per pixel, or None when the file states none.
"""

from __future__ import annotations

import math
import mmap
import os
import re
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np

from . import atomic
from .errors import InputError, OutputError

__all__ = [
    "StackInfo",
    "StackReader",
    "StackWriter",
    "SUPPORTED_DTYPES",
    "stack_format",
    "open_stack",
    "create_stack",
    "read_description",
]

SUPPORTED_DTYPES = tuple(
    np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32")
)
_EXTENSIONS = {".tif": "tiff", ".tiff": "tiff", ".mrc": "mrc", ".mrcs": "mrc"}

# Length units -> Ångström. Keys are lower-case; ImageJ, OME and TIFF spell them differently.
_UNIT_TO_A = {
    "å": 1.0, "a": 1.0, "angstrom": 1.0, "angstroms": 1.0, "ångström": 1.0,
    "\u212b": 1.0,  # ANGSTROM SIGN
    "pm": 0.01, "picometer": 0.01,
    "nm": 10.0, "nanometer": 10.0, "nanometers": 10.0, "nanometre": 10.0,
    "um": 1e4, "µm": 1e4, "μm": 1e4, "micron": 1e4, "microns": 1e4, "micrometer": 1e4,
    "micrometers": 1e4, "micrometre": 1e4,
    "mm": 1e7, "millimeter": 1e7, "cm": 1e8, "centimeter": 1e8, "m": 1e10, "meter": 1e10,
    "in": 2.54e8, "inch": 2.54e8, "inches": 2.54e8,
}
# TIFF ResolutionUnit: 2 inch, 3 cm (baseline); 4 mm, 5 µm (tifffile/TIFF-EP extensions).
_RESUNIT_TO_A = {2: 2.54e8, 3: 1e8, 4: 1e7, 5: 1e4}

_MRC_DTYPE_LABEL = re.compile(r"^emcodec: original dtype (\w+)")
_MRC_MAX_LABELS = 10
_MRC_LABEL_LEN = 80
_FLOAT32_EXACT_INT = 2**24  # int32/uint32 stored as MRC float32 must stay exactly representable


@dataclass
class StackInfo:
    n_frames: int
    height: int
    width: int
    dtype: np.dtype  # dtype of the arrays the reader returns (native byte order)
    pixel_size: tuple[float, float] | None  # (x, y) Å per pixel
    source_format: str  # "tiff" or "mrc"
    source_name: str  # basename
    extra: dict = field(default_factory=dict)  # small, JSON-serialisable


# --------------------------------------------------------------------------- helpers


def stack_format(path) -> str:
    """Return "tiff" or "mrc" from the extension; anything else is an InputError."""
    name = os.path.basename(os.fspath(path))
    ext = os.path.splitext(name)[1].lower()
    try:
        return _EXTENSIONS[ext]
    except KeyError:
        raise InputError(
            f"unsupported file type '{name}': supported extensions are .tif, .tiff, .mrc, .mrcs"
        ) from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _check_dtype(dtype: np.dtype, name: str) -> np.dtype:
    """Map a stored dtype to the returned native one, or reject it."""
    native = np.dtype(dtype.name)  # same type in native byte order
    if native == np.float16:
        return np.dtype(np.float32)
    if native not in SUPPORTED_DTYPES:
        raise InputError(
            f"'{name}': unsupported pixel type {native.name}; supported: "
            + ", ".join(d.name for d in SUPPORTED_DTYPES)
        )
    return native


def _clean_size(v: float) -> float:
    # Rationals and float32 headers give 1.0636999999917 for 1.0637; 9 digits is far beyond any
    # calibration's accuracy, and keeps printed metadata readable.
    return float(f"{v:.9g}")


def _pixel_pair(x: float | None, y: float | None) -> tuple[float, float] | None:
    good = [v for v in (x, y) if v is not None and math.isfinite(v) and v > 0]
    if not good:
        return None
    x = x if x is not None and math.isfinite(x) and x > 0 else good[0]
    y = y if y is not None and math.isfinite(y) and y > 0 else good[0]
    return (_clean_size(x), _clean_size(y))


def _unit_factor(unit) -> float | None:
    if not isinstance(unit, str):
        return None
    u = unit.strip()
    if "\\u" in u:  # ImageJ escapes non-ASCII units in its description, e.g. '\\u00B5m'
        try:
            u = u.encode("ascii", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError:
            pass
    return _UNIT_TO_A.get(u.lower())


def _check_readable(path: str) -> str:
    name = os.path.basename(path)
    if not os.path.exists(path):
        raise InputError(f"'{path}': no such file")
    if os.path.isdir(path):
        raise InputError(f"'{path}' is a directory, not a movie file")
    try:
        with open(path, "rb") as fh:
            head = fh.read(1)
    except OSError as e:
        raise InputError(f"cannot read '{path}': {e.strerror or _one_line(e)}") from None
    if not head:
        raise InputError(f"'{name}' is empty")
    return name


# --------------------------------------------------------------------------- readers


class StackReader:
    """Frames of one movie file; use ``open_stack``. Chunks may be memory-map views that stay
    valid only while the reader is open (copy them, or use ``read``, to keep them)."""

    info: StackInfo

    def __init__(self, info: StackInfo):
        self.info = info

    # subclasses: return frames [start, stop) as (m, H, W) of info.dtype, and whether the
    # array is a view into the file (so read() knows when it must copy)
    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:  # pragma: no cover
        raise NotImplementedError

    def _range(self, start: int, stop: int | None) -> tuple[int, int]:
        n = self.info.n_frames
        stop = n if stop is None else stop
        if not (0 <= start <= stop <= n):
            raise ValueError(f"frame range [{start}, {stop}) outside [0, {n})")
        return start, stop

    # Mapped pages are given back once this many bytes of frames have been used: a bound on
    # the resident memory that costs one system call per 32 MB, not one per chunk (measured:
    # per-chunk release was ~4% of compressing 40 frames of 256x256).
    RELEASE_BYTES = 1 << 25

    def iter_chunks(self, n: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
        if n < 1:
            raise ValueError("chunk size must be >= 1")
        start, stop = self._range(start, stop)
        frame_bytes = self.info.height * self.info.width * self.info.dtype.itemsize
        held = start  # first frame whose pages may still be mapped
        for a in range(start, stop, n):
            b = min(a + n, stop)
            chunk, is_view = self._get(a, b)
            yield chunk
            if is_view and (b == stop or (b - held) * frame_bytes >= self.RELEASE_BYTES):
                release_pages(self._get(held, b)[0])
                held = b

    def read(self, start: int, stop: int) -> np.ndarray:
        start, stop = self._range(start, stop)
        arr, is_view = self._get(start, stop)
        return np.array(arr) if is_view else arr

    def close(self) -> None:  # pragma: no cover - overridden
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _advise_sequential(mm: np.memmap) -> None:
    """Movies are read front to back once: let the kernel read ahead and drop pages behind."""
    raw = getattr(mm, "_mmap", None)
    if raw is not None and hasattr(raw, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
        try:
            raw.madvise(mmap.MADV_SEQUENTIAL)
        except OSError:
            pass


def release_pages(view: np.ndarray) -> None:
    """Unmap the pages of a chunk once it has been used.

    Mapped file pages count as the process's resident memory; dropping them as the movie
    streams by keeps a 10 GB movie's footprint at a few frames. The data stay in the page
    cache, so touching the chunk again only costs a page fault.
    """
    base = view.base
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or not view.flags.c_contiguous or not hasattr(mmap, "MADV_DONTNEED"):
        return
    try:
        start = view.ctypes.data - np.frombuffer(base, dtype=np.uint8).ctypes.data
        aligned = start - start % mmap.PAGESIZE
        base.madvise(mmap.MADV_DONTNEED, aligned, start + view.nbytes - aligned)
    except (OSError, ValueError, TypeError):
        pass


def _from_mapped(arr: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, bool]:
    if arr.dtype == dtype:
        return arr, True
    return arr.view(np.ndarray).astype(dtype), False  # an in-memory copy, not a memmap


class _TiffReader(StackReader):
    def __init__(self, path: str, name: str):
        import tifffile

        try:
            tf = tifffile.TiffFile(path)
        except Exception as e:
            raise InputError(f"'{name}' is not a readable TIFF file: {_one_line(e)}") from None
        self._tf = tf
        self._mm: np.ndarray | None = None
        self._whole: np.ndarray | None = None
        try:
            self._setup(path, name)
        except InputError:
            tf.close()
            raise
        except Exception as e:
            tf.close()
            raise InputError(f"'{name}' is not a readable TIFF file: {_one_line(e)}") from None

    def _setup(self, path: str, name: str) -> None:
        tf = self._tf
        if not tf.series:
            raise InputError(f"'{name}' contains no images")
        if len(tf.series) > 1:
            shapes = ", ".join(str(tuple(s.shape)) for s in tf.series[:4])
            raise InputError(
                f"'{name}' holds {len(tf.series)} image series of different shape or type "
                f"({shapes}); emcodec needs a file with one movie"
            )
        s = tf.series[0]
        page0 = s.keyframe
        if page0.samplesperpixel > 1:
            raise InputError(
                f"'{name}' is a colour (RGB/RGBA, {page0.samplesperpixel} samples per pixel) "
                "image; emcodec needs single-channel frames"
            )
        shape = list(s.get_shape(False))
        axes = s.get_axes(False)
        if len(axes) == len(shape):
            shape = [d for d, a in zip(shape, axes) if a != "S"]
        if len(shape) < 2:
            raise InputError(f"'{name}' has an unsupported image shape {tuple(shape)}")
        height, width = shape[-2:]
        rest = shape[:-2]
        if sum(1 for d in rest if d != 1) > 1:
            raise InputError(
                f"'{name}' is a {len(s.shape)}-D stack (axes {s.axes}, shape {tuple(s.shape)}); "
                "emcodec needs a single movie (frames, y, x)"
            )
        n = int(np.prod(rest)) if rest else 1
        if n == 0 or height == 0 or width == 0:
            raise InputError(f"'{name}' has no frames (shape {tuple(s.shape)})")
        dtype = _check_dtype(np.dtype(s.dtype), name)
        self._frame_shape = (height, width)

        if s.dataoffset is not None:
            stored = np.dtype(tf.byteorder + np.dtype(s.dtype).char)
            try:
                self._mm = np.memmap(
                    path, stored, "r", int(s.dataoffset), (n, height, width), "C"
                )
            except (ValueError, OSError) as e:
                raise InputError(f"'{name}' is truncated or unreadable: {_one_line(e)}") from None
            _advise_sequential(self._mm)
        self._by_page = len(s.pages) == n

        extra: dict = {"axes": s.axes}
        for flag in ("imagej", "ome", "bigtiff"):
            if getattr(tf, "is_" + flag, False):
                extra[flag] = True
        comp = getattr(page0.compression, "name", str(page0.compression))
        if comp not in ("NONE", "1"):
            extra["compression"] = comp
        desc = page0.description if hasattr(page0, "description") else ""
        if desc and len(desc) < 2000 and not tf.is_ome:
            extra["description"] = desc
        if dtype.name != np.dtype(s.dtype).name:
            extra["stored_dtype"] = np.dtype(s.dtype).name

        self.info = StackInfo(
            n_frames=n,
            height=int(height),
            width=int(width),
            dtype=dtype,
            pixel_size=_tiff_pixel_size(tf),
            source_format="tiff",
            source_name=name,
            extra=extra,
        )

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        dtype = self.info.dtype
        m = stop - start
        if self._mm is not None:
            return _from_mapped(self._mm[start:stop], dtype)
        if self._by_page:
            if m == 0:
                return np.empty((0, *self._frame_shape), dtype), False
            try:
                arr = self._tf.asarray(key=range(start, stop), series=0)
            except Exception as e:
                raise InputError(
                    f"'{self.info.source_name}': cannot decode frames {start}-{stop - 1}: "
                    f"{_one_line(e)}"
                ) from None
        else:
            # Pages do not map one-to-one to frames (e.g. volumetric pages): rare, so the
            # series is decoded once and kept rather than streamed.
            if self._whole is None:
                try:
                    self._whole = self._tf.series[0].asarray().reshape(-1, *self._frame_shape)
                except Exception as e:
                    raise InputError(
                        f"'{self.info.source_name}': cannot decode: {_one_line(e)}"
                    ) from None
            return _from_mapped(self._whole[start:stop], dtype)
        arr = arr.reshape(m, *self._frame_shape)
        return (arr if arr.dtype == dtype else arr.astype(dtype)), False

    def close(self) -> None:
        self._mm = None  # views already handed out keep their own mapping alive
        self._whole = None
        self._tf.close()


def _tiff_pixel_size(tf) -> tuple[float, float] | None:
    """OME PhysicalSize first, then ImageJ unit + resolution, then ResolutionUnit tags."""
    if tf.is_ome:
        try:
            ps = _ome_pixel_size(tf.ome_metadata)
        except Exception:
            ps = None
        if ps is not None:
            return ps
    tags = tf.pages[0].tags
    xr = tags.get("XResolution")
    yr = tags.get("YResolution")

    def per_unit(tag) -> float | None:
        if tag is None:
            return None
        num, den = tag.value
        return (den / num) if num else None

    x, y = per_unit(xr), per_unit(yr)
    if x is None and y is None:
        return None
    factor = None
    if tf.is_imagej:
        factor = _unit_factor((tf.imagej_metadata or {}).get("unit"))
    if factor is None:
        ru = tags.get("ResolutionUnit")
        factor = _RESUNIT_TO_A.get(int(ru.value) if ru is not None else 2)
        # baseline default unit is inch; a 1/1 resolution with no tag is "not stated" though
        if ru is None and xr is not None and tuple(xr.value) == (1, 1):
            factor = None
    if factor is None:
        return None
    return _pixel_pair(None if x is None else x * factor, None if y is None else y * factor)


def _ome_pixel_size(xml: str) -> tuple[float, float] | None:
    root = ET.fromstring(xml)
    for el in root.iter():
        if el.tag.rsplit("}", 1)[-1] == "Pixels":
            vals = []
            for ax in ("X", "Y"):
                v = el.get("PhysicalSize" + ax)
                f = _unit_factor(el.get(f"PhysicalSize{ax}Unit", "µm"))
                vals.append(float(v) * f if v is not None and f is not None else None)
            return _pixel_pair(*vals)
    return None


class _MrcReader(StackReader):
    def __init__(self, path: str, name: str):
        import mrcfile

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mrc = mrcfile.mmap(path, mode="r", permissive=False)
        except Exception as e:
            raise InputError(f"'{name}' is not a readable MRC file: {_one_line(e)}") from None
        self._mrc = mrc
        try:
            self._setup(name)
        except InputError:
            mrc.close()
            raise
        except Exception as e:
            mrc.close()
            raise InputError(f"'{name}' is not a readable MRC file: {_one_line(e)}") from None

    def _setup(self, name: str) -> None:
        mrc = self._mrc
        data = mrc.data
        if data is None:
            raise InputError(f"'{name}' has no data")
        if np.iscomplexobj(data):
            raise InputError(f"'{name}': complex MRC data (mode {int(mrc.header.mode)}) is not supported")
        shape = data.shape
        if data.ndim > 3:
            big = [d for d in shape[:-2] if d != 1]
            if len(big) > 1:
                raise InputError(
                    f"'{name}' is a {data.ndim}-D volume stack {shape}; emcodec needs a movie "
                    "(frames, y, x)"
                )
        if data.ndim < 2:
            raise InputError(f"'{name}' has an unsupported data shape {shape}")
        height, width = shape[-2:]
        n = int(np.prod(shape[:-2])) if data.ndim > 2 else 1
        if n == 0 or height == 0 or width == 0:
            raise InputError(f"'{name}' has no frames (shape {shape})")
        self._data = data.reshape(n, height, width)

        labels = [
            lab.decode("ascii", "replace").rstrip(" \x00")
            for lab in mrc.header.label[: max(0, min(int(mrc.header.nlabl), _MRC_MAX_LABELS))]
        ]
        stored = np.dtype(data.dtype.name)
        dtype = _check_dtype(stored, name)
        mode = int(mrc.header.mode)
        for lab in labels:
            m = _MRC_DTYPE_LABEL.match(lab)
            # trust our own marker only where it matches how we store that dtype
            if m and (m.group(1), mode) in {("uint8", 6), ("int32", 2), ("uint32", 2)}:
                dtype = np.dtype(m.group(1))
        extra: dict = {"mrc_mode": mode, "ispg": int(mrc.header.ispg), "labels": labels}
        if dtype != stored:
            extra["stored_dtype"] = stored.name

        vs = mrc.voxel_size
        # float32 header -> shortest float32 repr, so 1.0637 stays 1.0637
        vx, vy = float(str(np.float32(vs.x))), float(str(np.float32(vs.y)))
        self.info = StackInfo(
            n_frames=n,
            height=int(height),
            width=int(width),
            dtype=dtype,
            pixel_size=_pixel_pair(vx, vy),
            source_format="mrc",
            source_name=name,
            extra=extra,
        )

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        return _from_mapped(self._data[start:stop], self.info.dtype)

    def close(self) -> None:
        self._data = None
        self._mrc.close()


def open_stack(path) -> StackReader:
    """Open a TIFF or MRC movie for streamed reading; every bad input is an InputError."""
    path = os.fspath(path)
    fmt = stack_format(path)
    name = _check_readable(path)
    if fmt == "tiff":
        return _TiffReader(path, name)
    return _MrcReader(path, name)


def read_description(path) -> str:
    """The free-text description stored with a movie ('' if none).

    TIFF: ImageJ 'Info' (what Fiji shows under Image > Show Info), or the emcodec entry of a
    tifffile JSON description, or else the plain ImageDescription. MRC: the header labels, one
    per line, minus emcodec's own dtype marker (the description is wrapped over the labels).
    """
    path = os.fspath(path)
    fmt = stack_format(path)
    name = _check_readable(path)
    if fmt == "mrc":
        with _MrcReader(path, name) as r:
            labels = r.info.extra.get("labels", [])
        return "\n".join(lab for lab in labels if not _MRC_DTYPE_LABEL.match(lab))
    with _TiffReader(path, name) as r:
        tf = r._tf
        if tf.is_imagej:
            return str((tf.imagej_metadata or {}).get("Info", ""))
        if tf.is_ome:
            return ""
        if tf.is_shaped:
            for md in tf.shaped_metadata or ():
                em = md.get("emcodec") if isinstance(md, dict) else None
                if isinstance(em, dict) and "description" in em:
                    return str(em["description"])
        desc = tf.pages[0].description or ""
        return "" if desc.lstrip().startswith("{") else desc


# --------------------------------------------------------------------------- writers


class StackWriter:
    """Streams frames into a temporary file next to the target; ``commit`` renames it into place
    (so an interrupted run never leaves a half-written file under the target's name)."""

    def __init__(self, target: str, tmp: str, *, height: int, width: int, dtype: np.dtype,
                 n_frames: int | None, force: bool):
        self.target = target
        self.tmp = tmp
        self.height = height
        self.width = width
        self.dtype = dtype
        self.n_frames = n_frames
        self.force = force
        self.written = 0
        self._done = False

    # subclasses
    def _write_frames(self, frames: np.ndarray) -> None:  # pragma: no cover
        raise NotImplementedError

    def _finish(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def _close_quietly(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def write(self, frames: np.ndarray) -> None:
        if self._done:
            raise ValueError("stack writer is already closed")
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        if frames.ndim != 3 or frames.shape[1:] != (self.height, self.width):
            raise ValueError(
                f"frames of shape {frames.shape} do not fit a ({self.height}, {self.width}) stack"
            )
        if frames.dtype != self.dtype:
            # widening is harmless; a narrowing cast would silently wrap values
            if not (np.can_cast(frames.dtype, self.dtype, "safe")
                    or (frames.dtype.kind == "f" and self.dtype.kind == "f")):
                raise ValueError(
                    f"frames are {frames.dtype}, the stack is {self.dtype}; round and clip first"
                )
        m = frames.shape[0]
        if self.n_frames is not None and self.written + m > self.n_frames:
            raise ValueError(f"more frames than the {self.n_frames} announced")
        if m == 0:
            return
        try:
            self._write_frames(frames)
        except OutputError:
            self.abort()
            raise
        except OSError as e:
            self.abort()
            raise OutputError(f"writing '{self.target}' failed: {e.strerror or _one_line(e)}") from None
        self.written += m

    def commit(self) -> None:
        if self._done:
            return
        if self.n_frames is not None and self.written != self.n_frames:
            self.abort()
            raise ValueError(f"only {self.written} of {self.n_frames} frames were written")
        if self.written == 0:
            self.abort()
            raise ValueError("no frames were written")
        try:
            self._finish()
            atomic.commit(self.tmp, self.target, force=self.force)
        except OutputError:
            self.abort()
            raise
        except OSError as e:
            self.abort()
            raise OutputError(f"cannot write '{self.target}': {e.strerror or _one_line(e)}") from None
        except BaseException:
            self.abort()
            raise
        self._done = True

    def abort(self) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._close_quietly()
        finally:
            try:
                os.unlink(self.tmp)
            except FileNotFoundError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False


def _tiff_needs_bigtiff(n_frames: int | None, frame_bytes: int) -> bool:
    if n_frames is None:
        return True
    # data + one IFD (a few hundred bytes) per page must fit 32-bit offsets
    return n_frames * (frame_bytes + 512) + 2**20 >= 2**32


class _TiffStackWriter(StackWriter):
    """ImageJ hyperstack (axes TYX, unit nm, description in 'Info') for uint8/uint16/int16/
    float32 under 4 GB: Fiji then shows the calibration. Other dtypes, bigger data or an
    unknown frame count: tifffile's shaped (JSON) format with centimetre resolution tags, and
    BigTIFF when needed. With a known count the header is written first and the frames are
    appended as raw bytes, so each write is one plain file write."""

    _IMAGEJ_DTYPES = {np.dtype(t) for t in ("uint8", "uint16", "int16", "float32")}

    def __init__(self, target, tmp, *, pixel_size, description, labels, **kw):
        super().__init__(target, tmp, **kw)
        import tifffile

        self._fh = None
        self._tw = None
        frame_bytes = self.height * self.width * self.dtype.itemsize
        bigtiff = _tiff_needs_bigtiff(self.n_frames, frame_bytes)
        imagej = not bigtiff and self.dtype in self._IMAGEJ_DTYPES
        self._file_dtype = self.dtype.newbyteorder("<")
        opts: dict = {}
        if imagej:
            md: dict = {"axes": "TYX"}
            if description:
                md["Info"] = description
            if labels:
                md["Properties"] = {"emcodec.labels": "\n".join(labels)}
            if pixel_size is not None:
                md["unit"] = "nm"
                opts["resolution"] = (10.0 / pixel_size[0], 10.0 / pixel_size[1])
        else:
            em: dict = {}
            if description:
                em["description"] = description
            if labels:
                em["labels"] = list(labels)
            md = {"emcodec": em} if em else {}
            if self.n_frames is not None:
                md["axes"] = "TYX"
            if pixel_size is not None:
                opts["resolution"] = (1e8 / pixel_size[0], 1e8 / pixel_size[1])
                opts["resolutionunit"] = "CENTIMETER"
        self._imagej = imagej
        self._opts = dict(opts, metadata=md, photometric="minisblack")
        tw = tifffile.TiffWriter(tmp, bigtiff=bigtiff, imagej=imagej, byteorder="<")
        if self.n_frames is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    offset, _ = tw.write(
                        None,
                        shape=(self.n_frames, self.height, self.width),
                        dtype=self._file_dtype,
                        returnoffset=True,
                        **self._opts,
                    )
            finally:
                tw.close()
            self._fh = open(tmp, "r+b")
            self._fh.seek(offset)
        else:
            self._tw = tw

    def _write_frames(self, frames: np.ndarray) -> None:
        frames = np.ascontiguousarray(frames, dtype=self._file_dtype)
        if self._fh is not None:
            self._fh.write(memoryview(frames).cast("B"))
        else:
            for f in frames:  # tifffile extends a contiguous series one page at a time
                self._tw.write(f, contiguous=True, **self._opts)

    def _finish(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._tw is not None:
            self._tw.close()
            self._tw = None

    def _close_quietly(self) -> None:
        for obj in (self._fh, self._tw):
            if obj is not None:
                try:
                    obj.close()
                except Exception:
                    pass
        self._fh = self._tw = None


# dtype -> (MRC mode, dtype stored in the file)
_MRC_STORE = {
    np.dtype("int8"): (0, np.dtype("int8")),
    np.dtype("int16"): (1, np.dtype("int16")),
    np.dtype("float32"): (2, np.dtype("float32")),
    np.dtype("uint16"): (6, np.dtype("uint16")),
    np.dtype("uint8"): (6, np.dtype("uint16")),
    np.dtype("int32"): (2, np.dtype("float32")),
    np.dtype("uint32"): (2, np.dtype("float32")),
}


class _MrcStackWriter(StackWriter):
    """MRC2014 image stack (ispg 0) written through mrcfile's memory map.

    MRC has no uint8 or 32-bit integer mode: uint8 is widened to uint16 (mode 6) and
    int32/uint32 are stored as float32 (mode 2, refused if a value is beyond 2**24 where
    float32 stops being exact); a label 'emcodec: original dtype X' lets open_stack return
    the original dtype again. The frame count must be known (the file is pre-sized).
    Header statistics are accumulated while writing, so nothing is re-read at the end.
    """

    def __init__(self, target, tmp, *, pixel_size, description, labels, **kw):
        super().__init__(target, tmp, **kw)
        import mrcfile

        mode, self._stored = _MRC_STORE[self.dtype]
        all_labels = []
        if self._stored != self.dtype:
            all_labels.append(f"emcodec: original dtype {self.dtype.name}")
        all_labels += list(labels)
        for chunk in _wrap_labels(description):
            if len(all_labels) >= _MRC_MAX_LABELS:
                break  # the description is truncated to the free label slots
            all_labels.append(chunk)
        self._mrc = mrcfile.new_mmap(
            tmp, shape=(self.n_frames, self.height, self.width), mrc_mode=mode, overwrite=True
        )
        try:
            self._mrc.set_image_stack()
            if pixel_size is not None:
                self._mrc.voxel_size = (pixel_size[0], pixel_size[1], pixel_size[0])
            h = self._mrc.header
            h.nlabl = 0  # drop mrcfile's own "Created by" label: all ten slots are ours
            h.label[:] = b""
            for lab in all_labels:
                self._mrc.add_label(lab)
        except BaseException:
            self._mrc.close()
            raise
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = math.inf
        self._max = -math.inf

    def _write_frames(self, frames: np.ndarray) -> None:
        if self.dtype.kind in "iu" and self._stored.kind == "f" and frames.size:
            big = max(abs(int(frames.min())), abs(int(frames.max())))
            if big > _FLOAT32_EXACT_INT:
                raise OutputError(
                    f"'{self.target}': {self.dtype.name} values up to {big} cannot be stored "
                    "exactly in MRC (float32); write a .tif instead"
                )
        a = self.written
        self._mrc.data[a:a + frames.shape[0]] = frames
        # Chan et al. pairwise update: exact enough in float64, one pass, no re-read
        x = frames.astype(np.float64, copy=False)
        n_b = x.size
        mean_b = float(x.mean())
        m2_b = float(((x - mean_b) ** 2).sum())
        n_a = self._count
        delta = mean_b - self._mean
        tot = n_a + n_b
        self._mean += delta * n_b / tot
        self._m2 += m2_b + delta * delta * n_a * n_b / tot
        self._count = tot
        self._min = min(self._min, float(x.min()))
        self._max = max(self._max, float(x.max()))

    def _finish(self) -> None:
        h = self._mrc.header
        h.dmin = self._min
        h.dmax = self._max
        h.dmean = self._mean
        h.rms = math.sqrt(self._m2 / self._count) if self._count else 0.0
        self._mrc.close()
        self._mrc = None

    def _close_quietly(self) -> None:
        if self._mrc is not None:
            try:
                self._mrc.close()
            except Exception:
                pass
            self._mrc = None


def _wrap_labels(text: str) -> list[str]:
    """Description -> printable-ASCII MRC labels of at most 80 characters."""
    out = []
    for line in (text or "").splitlines():
        line = "".join(c if " " <= c <= "~" else "?" for c in line.expandtabs(1)).rstrip()
        while line:
            out.append(line[:_MRC_LABEL_LEN])
            line = line[_MRC_LABEL_LEN:]
    return out


def _check_labels(labels: Sequence[str], reserved: int) -> list[str]:
    labels = list(labels)
    for lab in labels:
        if not isinstance(lab, str) or len(lab) > _MRC_LABEL_LEN or not all(" " <= c <= "~" for c in lab):
            raise ValueError(f"label {lab!r} is not printable ASCII of at most 80 characters")
    if len(labels) > _MRC_MAX_LABELS - reserved:
        raise ValueError(f"at most {_MRC_MAX_LABELS - reserved} labels fit this stack")
    return labels


def create_stack(path, *, height: int, width: int, dtype, n_frames: int | None,
                 pixel_size=None, description: str = "", labels: Sequence[str] = (),
                 force: bool = False) -> StackWriter:
    """Start writing a movie; the format comes from the extension.

    float16 is written as float32. MRC needs ``n_frames`` (ValueError otherwise) because the
    file is pre-sized and memory-mapped. ``labels`` must be printable ASCII, <= 80 characters
    each (they are MRC header labels; TIFF keeps them in its metadata).
    """
    target = os.fspath(path)
    try:
        fmt = stack_format(target)
    except InputError as e:
        raise OutputError(str(e)) from None
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
    if fmt == "mrc" and n_frames is None:
        raise ValueError("writing MRC needs the frame count up front")
    reserved = 1 if fmt == "mrc" and _MRC_STORE[dtype][1] != dtype else 0
    labels = _check_labels(labels, reserved)
    if pixel_size is not None:
        pixel_size = (float(pixel_size[0]), float(pixel_size[1]))
        if not all(math.isfinite(v) and v > 0 for v in pixel_size):
            raise ValueError(f"pixel size must be positive, got {pixel_size}")

    atomic.check_target(target, force=force)
    tmp = os.fspath(atomic.temporary_path(target))

    kw = dict(height=int(height), width=int(width), dtype=dtype, n_frames=n_frames, force=force,
              pixel_size=pixel_size, description=description or "", labels=labels)
    cls = _TiffStackWriter if fmt == "tiff" else _MrcStackWriter
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
