"""HDF5 movies through h5py: a dataset ``movie`` (frames, y, x) with the provenance as attributes.

Written to a temporary file and renamed like every output. Besides the ``emcodec`` block
(JSON, formats/stores.py) the dataset states ``element_size_um`` [t, y, x], the attribute
Fiji's HDF5 plugin and ilastik read for the voxel size. Reading takes the ``movie``
dataset, or the file's only 2-D/3-D dataset.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import InputError, MissingDependencyError
from .base import StackInfo, StackReader, StackWriter, _check_dtype, _one_line
from .stores import carried, provenance

DATASET = "movie"


def _h5py():
    try:
        import h5py
    except ImportError:
        raise MissingDependencyError("HDF5 needs h5py: pip install 'emcodec[zarr]'") from None
    return h5py


class _HDF5Writer(StackWriter):
    def __init__(self, target, tmp, *, pixel_size, description, labels, frame_time=None, pixel_unit=None,
                 source_metadata=None, **kw):
        super().__init__(target, tmp, **kw)
        h5py = _h5py()
        self._f = h5py.File(tmp, "w")
        n = self.n_frames or 0
        frame_bytes = self.height * self.width * self.dtype.itemsize
        self._ds = self._f.create_dataset(
            DATASET, shape=(n, self.height, self.width), maxshape=(None, self.height, self.width),
            dtype=self.dtype, chunks=(max(1, min(n or 1, (1 << 20) // frame_bytes)), self.height, self.width))
        block = provenance(pixel_size=pixel_size, description=description, labels=labels, frame_time=frame_time,
                           pixel_unit=pixel_unit, source_metadata=source_metadata)
        self._ds.attrs["emcodec"] = json.dumps(block)
        if pixel_size is not None:
            self._ds.attrs["element_size_um"] = [1.0, pixel_size[1] * 1e-4, pixel_size[0] * 1e-4]
        if description:
            self._ds.attrs["description"] = description

    def _write_frames(self, frames: np.ndarray) -> None:
        a, b = self.written, self.written + len(frames)
        if b > self._ds.shape[0]:
            self._ds.resize(b, axis=0)
        self._ds[a:b] = frames

    def _finish(self) -> None:
        self._f.close()

    def _close_quietly(self) -> None:
        try:
            self._f.close()
        except Exception:
            pass


Writer = _HDF5Writer


class _HDF5Reader(StackReader):
    def __init__(self, path: str, name: str):
        h5py = _h5py()
        try:
            self._f = h5py.File(path, "r")
        except Exception as e:
            raise InputError(f"'{name}' is not a readable HDF5 file: {_one_line(e)}") from None
        try:
            ds = self._f.get(DATASET)
            if not isinstance(ds, h5py.Dataset):
                found = []
                self._f.visititems(lambda k, v: found.append(v) if isinstance(v, h5py.Dataset) and v.ndim in (2, 3)
                                   else None)
                if len(found) != 1:
                    raise InputError(f"'{name}' holds {len(found)} image datasets; emcodec needs one movie "
                                     f"(or a dataset named '{DATASET}')")
                ds = found[0]
            self._ds = ds
            n, h, w = (1, *ds.shape) if ds.ndim == 2 else ds.shape
            if 0 in (n, h, w):
                raise InputError(f"'{name}' has no frames (shape {ds.shape})")
            try:
                block = json.loads(ds.attrs.get("emcodec", "{}"))
            except (TypeError, ValueError):
                block = {}
            super().__init__(StackInfo(n_frames=int(n), height=int(h), width=int(w),
                                       dtype=_check_dtype(np.dtype(ds.dtype), name),
                                       source_format="hdf5", source_name=name,
                                       extra={"dataset": ds.name}, **carried(block)))
        except BaseException:
            self._f.close()
            raise

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        ds = self._ds
        arr = ds[()][None] if ds.ndim == 2 else ds[start:stop]
        return arr.astype(self.info.dtype, copy=False), False

    def close(self) -> None:
        self._f.close()


def open_reader(path: str, name: str, options, fmt: str = "") -> StackReader:
    return _HDF5Reader(path, name)
