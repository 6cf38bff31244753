"""Thermo Fisher EER (Electron Event Representation) movies through tifffile + imagecodecs.

An EER file is a BigTIFF whose pages are single raw frames of counted electron events,
each run-length coded (compression 65000-65002, decoded by imagecodecs.eer_decode). The
raw frames are far too many and too sparse to compress one by one, so ``eer_fraction`` raw
frames are summed into each output frame (a remainder that does not fill a frame is dropped,
as RELION does), optionally at 2x or 4x super-resolution from the events' sub-pixel bits.
A gain reference multiplies every raw frame; multiplying the sum of a fraction is the same
number, so it is applied once per output frame.

Memory: imagecodecs' EER decoder adds each event to the array it is given (``dst[i] += 1``
in imcd_eer_decode, for uint8 and uint16), so every raw page's strip is decoded straight
into the output frame it belongs to; no raw frame is ever materialised (tifffile's
``page.asarray`` allocates a new frame-sized array per raw page, which at a fraction of 10
is ten allocations of 16 MiB per 4096x4096 output frame). Whether the installed
imagecodecs accumulates is checked once on a 16-pixel stream; where it does not (or a page
has several strips, or counts need 32 bits) each page is decoded by tifffile into one
reused buffer and added. Either way memory holds the chunk being returned and at most two
reused frame-sized buffers (a gain reference's counts, the fallback's page), never the raw
frames or the movie.

The file states no specimen pixel size (``sensorPixelSize`` is the camera's), so none is
carried; the frame time is the exposure time over the raw frame count, times the fraction.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

from ..errors import InputError, MissingDependencyError
from .base import StackInfo, StackReader, _one_line
from .metadata import bounded_tree

UPSAMPLE_LEVELS = {1: 0, 2: 1, 4: 2}  # --eer-upsample -> tifffile's superres level

# A 4x4 frame coded 7_2_2 (compression 65001): one event at pixel 0 (sub-pixel bits 0, 0,
# stored XOR'd with 2), then a skip of 15 to the frame's end, zero-padded to 48 bits.
_PROBE = bytes([0x00, 0x7D, 0x00, 0x00, 0x00, 0x00])
_ACCUMULATES: bool | None = None


def _decoder_accumulates() -> bool:
    """Whether imagecodecs.eer_decode adds events to a given uint8/uint16 `out` (rather than
    zeroing it, refusing it or returning another array); checked once per process."""
    global _ACCUMULATES
    if _ACCUMULATES is None:
        ok = True
        try:
            import imagecodecs

            for t in (np.uint8, np.uint16):
                out = np.ones((4, 4), t)
                got = imagecodecs.eer_decode(_PROBE, (4, 4), 7, 2, 2, superres=0, out=out)
                want = np.ones((4, 4), t)
                want[0, 0] = 2
                ok = ok and got is out and np.array_equal(out, want)
        except Exception:
            ok = False
        _ACCUMULATES = ok
    return _ACCUMULATES


def _code_bits(page) -> tuple[int, int, int]:
    """(skip, horizontal, vertical) bits of a page's EER code, as tifffile reads them."""
    if page.compression == 65002:
        return (int(page.tags.valueof(65007, 7)), int(page.tags.valueof(65008, 2)),
                int(page.tags.valueof(65009, 2)))
    return (7, 2, 2) if page.compression == 65001 else (8, 2, 2)


def _count_dtype(fraction: int) -> np.dtype:
    """The narrowest unsigned type holding `fraction` events per pixel (one per raw frame)."""
    for t in (np.uint8, np.uint16, np.uint32):
        if fraction <= np.iinfo(t).max:
            return np.dtype(t)
    raise InputError(f"--eer-fraction {fraction} is too large")


def _raw_frame_time(md: dict) -> float | None:
    exposure, count = md.get("exposureTime"), md.get("numberOfFrames")
    unit = md.get("exposureTime.unit", "s")
    if not isinstance(exposure, (int, float)) or not isinstance(count, int) or count < 1 or unit != "s":
        return None
    return float(exposure) / count if exposure > 0 else None


def load_gain(path: str, shape: tuple[int, int], upsample: int) -> np.ndarray:
    """A gain reference as float32 at the output's size: EPU's .gain (a TIFF) or any movie
    file emcodec reads holding one frame; a gain at the sensor's size is repeated to the
    super-resolution grid."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise InputError(f"gain reference '{path}': no such file")
    try:
        if os.path.splitext(name)[1].lower() == ".gain":
            import tifffile

            gain = np.asarray(tifffile.imread(path), dtype=np.float32)
        else:
            from . import open_stack

            with open_stack(path) as r:
                if r.info.n_frames != 1:
                    raise InputError(f"gain reference '{name}' has {r.info.n_frames} frames; it must be one image")
                gain = r.read(0, 1)[0].astype(np.float32)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"gain reference '{name}' is not readable: {_one_line(e)}") from None
    gain = np.squeeze(gain)
    if gain.shape != shape and gain.ndim == 2 and (gain.shape[0] * upsample, gain.shape[1] * upsample) == shape:
        gain = np.repeat(np.repeat(gain, upsample, axis=0), upsample, axis=1)
    if gain.shape != shape:
        raise InputError(f"gain reference '{name}' is {gain.shape[0]}x{gain.shape[1] if gain.ndim > 1 else 1}; "
                         f"the EER frames are {shape[0]}x{shape[1]}")
    if not np.all(np.isfinite(gain)) or np.any(gain < 0):
        raise InputError(f"gain reference '{name}' holds negative or non-finite values")
    return gain


class _EerReader(StackReader):
    def __init__(self, path: str, name: str, options):
        import tifffile

        if importlib.util.find_spec("imagecodecs") is None:  # tifffile decodes EER pages with it
            raise MissingDependencyError(f"reading '{name}' needs imagecodecs: pip install 'emcodec[formats]'")
        upsample = options.eer_upsample
        if upsample not in UPSAMPLE_LEVELS:
            raise InputError(f"--eer-upsample takes 1, 2 or 4, got {upsample}")
        fraction = options.eer_fraction
        if fraction < 1:
            raise InputError(f"--eer-fraction must be >= 1, got {fraction}")
        try:
            tf = tifffile.TiffFile(path, superres=UPSAMPLE_LEVELS[upsample])
        except Exception as e:
            raise InputError(f"'{name}' is not a readable EER file: {_one_line(e)}") from None
        self._tf = tf
        try:
            self._setup(name, options, fraction, upsample)
        except InputError:
            tf.close()
            raise
        except Exception as e:
            tf.close()
            raise InputError(f"'{name}' is not a readable EER file: {_one_line(e)}") from None

    def _setup(self, name: str, options, fraction: int, upsample: int) -> None:
        tf = self._tf
        frames = next((s for s in tf.series if s.kind == "eer" and s.name == "frames"), None)
        if not tf.is_eer or frames is None:
            raise InputError(f"'{name}' is not an EER movie (no EER metadata or event-coded frames)")
        self._pages = frames.pages
        n_raw = len(self._pages)
        if fraction > n_raw:
            raise InputError(f"--eer-fraction {fraction} is more than the {n_raw} raw frames in '{name}'")
        height, width = (int(d) for d in frames.shape[-2:])
        self._fraction = fraction
        self._acc_dtype = _count_dtype(fraction)
        self._superres = UPSAMPLE_LEVELS[upsample]
        self._direct = self._acc_dtype.itemsize <= 2 and _decoder_accumulates()
        self._acc = None  # with a gain reference: the counts of one output frame, reused
        self._scratch = None  # the fallback's decoded raw page, reused
        self._gain = load_gain(options.gain_ref, (height, width), upsample) if options.gain_ref else None
        md = dict(tf.eer_metadata or {})
        raw_dt = _raw_frame_time(md)
        extra = {"eer_raw_frames": n_raw, "eer_fraction": fraction, "eer_upsample": upsample,
                 "eer_compression": int(self._pages[0].compression)}
        if n_raw % fraction:
            extra["eer_dropped_frames"] = n_raw % fraction
        if options.gain_ref:
            extra["gain_reference"] = os.path.basename(options.gain_ref)
        self.info = StackInfo(
            n_frames=n_raw // fraction,
            height=height,
            width=width,
            dtype=np.dtype(np.float32) if self._gain is not None else self._acc_dtype,
            pixel_size=None,
            source_format="eer",
            source_name=name,
            extra=extra,
            frame_time=float(f"{raw_dt * fraction:.9g}") if raw_dt else None,
            metadata=bounded_tree(md) or None,
        )

    def _add_page(self, j: int, acc: np.ndarray) -> None:
        """Add raw frame j's events to `acc` (a C-contiguous frame of self._acc_dtype)."""
        page = self._pages[j]
        try:
            key = page.keyframe  # the page itself, or the page whose tags a TiffFrame shares
            if self._direct and len(page.dataoffsets) == 1:
                if not page.databytecounts[0]:
                    return  # an empty strip: no events (tifffile reads it as zeros)
                import imagecodecs

                fh = self._tf.filehandle
                fh.seek(page.dataoffsets[0])
                data = fh.read(page.databytecounts[0])
                imagecodecs.eer_decode(data, acc.shape, *_code_bits(key), superres=self._superres, out=acc)
                return
            if self._scratch is None or self._scratch.dtype != key.dtype:
                self._scratch = np.empty(acc.shape, key.dtype)
            page.asarray(out=self._scratch)
        except Exception as e:
            raise InputError(f"'{self.info.source_name}': raw frame {j} cannot be decoded: {_one_line(e)}") from None
        np.add(acc, self._scratch, out=acc, casting="unsafe")

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        info = self.info
        out = np.empty((stop - start, info.height, info.width), info.dtype)
        for k in range(start, stop):
            if self._gain is None:
                acc = out[k - start]  # counts summed in place, in the output's own type
            else:
                if self._acc is None:
                    self._acc = np.empty((info.height, info.width), self._acc_dtype)
                acc = self._acc
            acc[...] = 0
            for j in range(k * self._fraction, (k + 1) * self._fraction):
                self._add_page(j, acc)
            if self._gain is not None:
                np.multiply(acc, self._gain, out=out[k - start])
        return out, False

    def close(self) -> None:
        self._pages = None
        self._scratch = self._acc = None
        self._tf.close()


def open_reader(path: str, name: str, options, fmt: str = "") -> StackReader:
    return _EerReader(path, name, options)
