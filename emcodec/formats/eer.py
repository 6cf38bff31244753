"""Thermo Fisher EER (Electron Event Representation) movies through tifffile + imagecodecs.

An EER file is a BigTIFF whose pages are single raw frames of counted electron events,
each run-length coded (compression 65000-65002, decoded by imagecodecs.eer_decode). The
raw frames are far too many and too sparse to compress one by one, so ``eer_fraction`` raw
frames are summed into each output frame (a remainder that does not fill a frame is dropped,
as RELION does), optionally at 2x or 4x super-resolution from the events' sub-pixel bits.
A gain reference multiplies every raw frame; multiplying the sum of a fraction is the same
number, so it is applied once per output frame. Pages are decoded one at a time: memory
holds one output frame and its accumulator, never the movie.

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

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        info = self.info
        out = np.empty((stop - start, info.height, info.width), info.dtype)
        acc = np.empty((info.height, info.width), self._acc_dtype)
        for k in range(start, stop):
            acc[:] = 0
            for j in range(k * self._fraction, (k + 1) * self._fraction):
                try:
                    events = self._pages[j].asarray()
                except Exception as e:
                    raise InputError(f"'{info.source_name}': raw frame {j} cannot be decoded: {_one_line(e)}") from None
                np.add(acc, events.reshape(acc.shape), out=acc, casting="unsafe")
            if self._gain is not None:
                np.multiply(acc, self._gain, out=out[k - start])
            else:
                out[k - start] = acc
        return out, False

    def close(self) -> None:
        self._pages = None
        self._tf.close()


def open_reader(path: str, name: str, options, fmt: str = "") -> StackReader:
    return _EerReader(path, name, options)
