"""OME-Zarr movies (zarr-python 3, format 3, OME-NGFF 0.5): a group with one array ``0``
(t, y, x) and ``multiscales`` metadata whose scale carries the pixel size and frame time.

A zarr store is a folder: it is written under a hidden temporary name beside the target
and renamed into place when complete (an existing store is replaced only with --force,
after the new one is whole). The ``emcodec`` attribute block (formats/stores.py) keeps the
same provenance as a decoded TIFF or MRC.
"""

from __future__ import annotations

import os
import secrets
import shutil

import numpy as np

from ..errors import InputError, MissingDependencyError, OutputError
from .base import StackInfo, StackReader, StackWriter, _check_dtype, _one_line
from .carry import in_unit
from .stores import carried, provenance

ARRAY = "0"
NGFF_VERSION = "0.5"
# OME-NGFF spells units as UDUNITS names
_OME_UNITS = {"Å": "angstrom", "pm": "picometer", "nm": "nanometer", "µm": "micrometer", "um": "micrometer",
              "μm": "micrometer", "micron": "micrometer"}
CHUNK_BYTES = 1 << 22  # about 4 MB of frames per chunk: a few frames of a large detector


def _zarr():
    try:
        import zarr
    except ImportError:
        raise MissingDependencyError("zarr output needs zarr-python 3: pip install 'emcodec[zarr]'") from None
    return zarr


def ome_multiscales(name: str, pixel_size, pixel_unit, frame_time) -> dict:
    """The OME-NGFF 0.5 ``ome`` attribute: axes t, y, x with units and one scale per axis."""
    t_axis = {"name": "t", "type": "time"}
    y_axis, x_axis = {"name": "y", "type": "space"}, {"name": "x", "type": "space"}
    scale = [float(frame_time) if frame_time else 1.0, 1.0, 1.0]
    if frame_time:
        t_axis["unit"] = "second"
    if pixel_size is not None:
        (xs, unit), (ys, _) = in_unit(pixel_size[0], pixel_unit or "nm"), in_unit(pixel_size[1], pixel_unit or "nm")
        if unit not in _OME_UNITS:  # a unit OME cannot name: state the size in Å
            (xs, ys), unit = pixel_size, "Å"
        scale[1:] = [float(ys), float(xs)]
        y_axis["unit"] = x_axis["unit"] = _OME_UNITS[unit]
    return {"version": NGFF_VERSION, "multiscales": [{
        "name": name, "axes": [t_axis, y_axis, x_axis],
        "datasets": [{"path": ARRAY, "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
    }]}


class _ZarrWriter(StackWriter):
    def __init__(self, target, tmp, *, pixel_size, description, labels, frame_time=None, pixel_unit=None,
                 source_metadata=None, **kw):
        super().__init__(target, tmp, **kw)
        zarr = _zarr()
        os.unlink(tmp)  # the reserved temporary name becomes a folder
        frame_bytes = self.height * self.width * self.dtype.itemsize
        t_chunk = max(1, min(self.n_frames or 1 << 30, CHUNK_BYTES // frame_bytes))
        attrs = {"ome": ome_multiscales(os.path.basename(target), pixel_size, pixel_unit, frame_time),
                 "emcodec": provenance(pixel_size=pixel_size, description=description, labels=labels,
                                       frame_time=frame_time, pixel_unit=pixel_unit,
                                       source_metadata=source_metadata)}
        group = zarr.create_group(store=tmp, zarr_format=3, attributes=attrs)
        self._array = group.create_array(ARRAY, shape=(self.n_frames or 0, self.height, self.width),
                                         chunks=(t_chunk, self.height, self.width), dtype=self.dtype,
                                         dimension_names=("t", "y", "x"))

    def _write_frames(self, frames: np.ndarray) -> None:
        a, b = self.written, self.written + len(frames)
        if b > self._array.shape[0]:
            self._array.resize((b, self.height, self.width))
        self._array[a:b] = frames

    def _finish(self) -> None:
        pass

    def _close_quietly(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def commit(self) -> None:
        """Rename the finished folder into place; with force, an old store is moved aside
        first and deleted only once the new one has its name."""
        aside = None
        if self.force and os.path.isdir(self.target) and not self._done:
            aside = os.path.join(os.path.dirname(os.path.abspath(self.target)),
                                 f".{os.path.basename(self.target)}.{secrets.token_hex(4)}.old")
            try:
                os.replace(self.target, aside)
            except OSError as e:
                self.abort()
                raise OutputError(f"cannot replace '{self.target}': {e.strerror}") from None
        try:
            super().commit()
        except BaseException:
            if aside is not None:
                os.replace(aside, self.target)
            raise
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


Writer = _ZarrWriter
DIRECTORY = True  # a store is a folder, not a file


class _ZarrReader(StackReader):
    def __init__(self, path: str, name: str):
        zarr = _zarr()
        try:
            node = zarr.open(path, mode="r")
            arr = node[ARRAY] if isinstance(node, zarr.Group) else node
            attrs = dict(node.attrs)
        except Exception as e:
            raise InputError(f"'{name}' is not a readable zarr store with an array '{ARRAY}': {_one_line(e)}") \
                from None
        if arr.ndim not in (2, 3) or 0 in arr.shape:
            raise InputError(f"'{name}': array '{ARRAY}' has shape {arr.shape}; emcodec needs (frames, y, x)")
        self._arr = arr
        n, h, w = (1, *arr.shape) if arr.ndim == 2 else arr.shape
        super().__init__(StackInfo(n_frames=int(n), height=int(h), width=int(w),
                                   dtype=_check_dtype(np.dtype(arr.dtype), name),
                                   source_format="zarr", source_name=name, **carried(attrs.get("emcodec"))))

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        arr = self._arr[...][None] if self._arr.ndim == 2 else self._arr[start:stop]
        return np.asarray(arr).astype(self.info.dtype, copy=False), False

    def close(self) -> None:
        pass


def open_reader(path: str, name: str, options, fmt: str = "") -> StackReader:
    return _ZarrReader(path, name)
