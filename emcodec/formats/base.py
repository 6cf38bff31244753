"""What every movie format shares: StackInfo, the reader and writer bases, pixel-size helpers.

A movie is always seen as frames ``(n, height, width)``; a single 2-D image is a 1-frame movie.
Files are never loaded whole where the format allows: contiguous uncompressed data are
memory-mapped (chunks are views, so the encoder reads at page-cache speed), anything else is
decoded a few frames at a time.

Pixel types: uint8, int8, uint16, int16, uint32, int32 and float32 are read as they are stored
(byte-swapped to native order when needed); float16 is upcast to float32 because the rest of the
codec has no half-precision path. Everything else (RGB, complex, bool, 64-bit) is an InputError.

Pixel size is carried as ``(x, y)`` in Ångström per pixel, or None when the file states none.
"""

from __future__ import annotations

import math
import mmap
import os
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .. import atomic
from ..errors import InputError, OutputError

SUPPORTED_DTYPES = tuple(
    np.dtype(t) for t in ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32")
)

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


@dataclass
class StackInfo:
    n_frames: int
    height: int
    width: int
    dtype: np.dtype  # dtype of the arrays the reader returns (native byte order)
    pixel_size: tuple[float, float] | None  # (x, y) Å per pixel
    source_format: str  # a name from emcodec.formats.FORMATS ("tiff", "mrc", "dm", ...)
    source_name: str  # basename
    extra: dict = field(default_factory=dict)  # small, JSON-serialisable
    frame_time: float | None = None  # seconds from one frame to the next, if the file says
    pixel_unit: str | None = None  # the length unit the file states its pixel size in ("nm")
    metadata: dict | None = None  # the file's own metadata tree, bounded (formats/metadata.py)



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
            chunk = None  # not held while the next chunk is read (a decoded chunk is freed as soon as it is used)
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

