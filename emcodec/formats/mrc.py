"""MRC/MRCS movies through mrcfile: memory-mapped reading, pre-sized memory-mapped writing."""

from __future__ import annotations

import math
import re
import warnings
from typing import Sequence

import numpy as np

from ..errors import InputError, OutputError
from .base import StackInfo, StackReader, StackWriter, _check_dtype, _from_mapped, _one_line, _pixel_pair

_MRC_DTYPE_LABEL = re.compile(r"^emcodec: original dtype (\w+)")
_MRC_FRAME_TIME_LABEL = re.compile(r"^emcodec: frame time ([0-9.eE+-]+) s$")
_MRC_MAX_LABELS = 10
_MRC_LABEL_LEN = 80
_FLOAT32_EXACT_INT = 2**24  # int32/uint32 stored as MRC float32 must stay exactly representable


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
        if int(mrc.header.ispg) >= 401:  # a volume stack: its volumes' depth, for the decoded file
            extra["mz"] = int(mrc.header.mz)
        times = [float(m.group(1)) for m in map(_MRC_FRAME_TIME_LABEL.match, labels) if m]
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
            frame_time=times[0] if times and times[0] > 0 else None,
        )

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        return _from_mapped(self._data[start:stop], self.info.dtype)

    def close(self) -> None:
        self._data = None
        self._mrc.close()



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
    """MRC2014 image stack (ispg 0, or the source MRC's space group) written through
    mrcfile's memory map.

    MRC has no uint8 or 32-bit integer mode: uint8 is widened to uint16 (mode 6) and
    int32/uint32 are stored as float32 (mode 2, refused if a value is beyond 2**24 where
    float32 stops being exact); a label 'emcodec: original dtype X' lets open_stack return
    the original dtype again. The frame count must be known (the file is pre-sized).
    Header statistics are accumulated while writing, so nothing is re-read at the end.
    """

    def __init__(self, target, tmp, *, pixel_size, description, labels, frame_time=None, pixel_unit=None,
                 source_metadata=None, space_group=None, **kw):
        super().__init__(target, tmp, **kw)
        import mrcfile

        # MRC states sizes in Å (pixel_unit is not needed); the source's metadata tree does not
        # fit its ten 80-character labels and stays in the .tcs file.
        mode, self._stored = _MRC_STORE[self.dtype]
        all_labels = []
        if self._stored != self.dtype:
            all_labels.append(f"emcodec: original dtype {self.dtype.name}")
        if frame_time:
            all_labels.append(f"emcodec: frame time {float(frame_time):.9g} s")
        all_labels += list(labels)
        # what the description adds to the labels only (emcodec's provenance comes as both, and
        # written twice it filled the ten slots with a copy)
        joined = "; ".join(labels)
        rest = description[len(joined):].strip() if labels and description.startswith(joined) else description
        for chunk in _wrap_labels(rest):
            if len(all_labels) >= _MRC_MAX_LABELS:
                break  # the description is truncated to the free label slots
            all_labels.append(chunk)
        self._mrc = mrcfile.new_mmap(
            tmp, shape=(self.n_frames, self.height, self.width), mrc_mode=mode, overwrite=True
        )
        try:
            _set_space_group(self._mrc, space_group, self.n_frames)
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


def space_group(value, depth=None) -> tuple[int, int | None] | None:
    """(space group, volume depth) of a source MRC that a decoded MRC can state again, or
    None: 0 (image stack), 1-230 (a volume) or 401-630 (a volume stack), as MRC2014 allows."""
    if isinstance(value, bool) or not isinstance(value, int) or not (0 <= value <= 230 or 401 <= value <= 630):
        return None
    ok = isinstance(depth, int) and not isinstance(depth, bool) and depth >= 1
    return value, depth if value >= 401 and ok else None


def _set_space_group(mrc, carried, n_frames: int) -> None:
    """The source's space group on the new file (a movie kept as a volume stays one);
    without one, an image stack. A volume stack keeps its volumes' depth where the frames
    written divide into it, else each frame is one volume."""
    group, depth = carried if carried else (0, None)
    if group == 0:
        mrc.set_image_stack()
        return
    mrc.set_volume()
    mrc.header.ispg = group
    if group >= 401:
        mrc.header.mz = depth if depth and n_frames % depth == 0 else 1


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




Writer = _MrcStackWriter


def open_reader(path: str, name: str, options, fmt: str = "") -> StackReader:
    return _MrcReader(path, name)


def reserved_labels(dtype: np.dtype, frame_time: float | None = None) -> int:
    """Label slots taken by emcodec's own markers: the dtype (uint8, int32, uint32 are
    widened) and the frame time."""
    return (1 if _MRC_STORE[dtype][1] != dtype else 0) + (1 if frame_time else 0)


def read_description(path: str, name: str) -> str:
    """The header labels, one per line, minus emcodec's own dtype marker."""
    with _MrcReader(path, name) as r:
        labels = r.info.extra.get("labels", [])
    return "\n".join(lab for lab in labels
                     if not _MRC_DTYPE_LABEL.match(lab) and not _MRC_FRAME_TIME_LABEL.match(lab))
