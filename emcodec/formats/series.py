"""A folder (or glob) of single-frame files read as one movie, in natural sort order.

Cameras that save every frame as its own file (a folder of DM4s or TIFFs) name them
frame_1, frame_2, ... frame_10: natural sort puts frame_10 after frame_9. Each file is
opened only while its frame is read, so the folder may hold any number of frames. Every
file must hold one frame of the same shape and type as the first; the first file's pixel
size, unit and metadata stand for the movie.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re

import numpy as np

from ..errors import InputError
from .base import StackInfo, StackReader


def is_glob(path: str) -> bool:
    return any(c in os.path.basename(path) for c in "*?[")


def natural_key(name: str) -> list:
    """'f10' after 'f9': digit runs compare as numbers, the rest case-insensitively."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", name) if part]


def series_files(path: str) -> list[str]:
    """The frame files of a folder or glob, in natural order; one format only."""
    from . import _by_extension

    if is_glob(path):
        candidates = [p for p in glob.glob(path) if os.path.isfile(p)]
        where = f"no files match '{path}'"
    elif os.path.isdir(path):
        candidates = [os.path.join(path, f) for f in os.listdir(path)
                      if not f.startswith(".") and os.path.isfile(os.path.join(path, f))]
        where = f"folder '{path}' holds no movie frames"
    else:
        raise InputError(f"'{path}': --series takes a folder or a glob such as 'frames/*.dm4'")
    known = _by_extension()
    files = [p for p in candidates if os.path.splitext(p)[1].lower() in known]
    if not files:
        raise InputError(where + " of a supported type")
    kinds = sorted({known[os.path.splitext(p)[1].lower()].name for p in files})
    if len(kinds) > 1:
        raise InputError(f"'{path}' mixes {', '.join(kinds)} files; a series is one format (use a glob)")
    return sorted(files, key=lambda p: natural_key(os.path.basename(p)))


class SeriesReader(StackReader):
    def __init__(self, path: str, options):
        from . import open_stack

        self._files = series_files(path)
        self._options = dataclasses.replace(options, series=False, single_frames=True)
        with open_stack(self._files[0], self._options) as first:
            head = first.info
        self._check(self._files[0], head)
        label = os.path.basename(os.path.normpath(path if not is_glob(path) else os.path.dirname(path) or "."))
        self.info = StackInfo(
            n_frames=len(self._files),
            height=head.height,
            width=head.width,
            dtype=head.dtype,
            pixel_size=head.pixel_size,
            source_format="series",
            source_name=label,
            extra={"frame_format": head.source_format, "files": len(self._files),
                   "first_file": os.path.basename(self._files[0]), "last_file": os.path.basename(self._files[-1])},
            frame_time=head.frame_time,
            pixel_unit=head.pixel_unit,
            metadata=head.metadata,
        )

    def _check(self, path: str, info: StackInfo) -> None:
        name = os.path.basename(path)
        if info.n_frames != 1:
            raise InputError(f"series file '{name}' holds {info.n_frames} frames; a series is one frame per file")
        if hasattr(self, "info") and ((info.height, info.width) != (self.info.height, self.info.width)
                                      or info.dtype != self.info.dtype):
            raise InputError(f"series file '{name}' is {info.height}x{info.width} {info.dtype}; the first is "
                             f"{self.info.height}x{self.info.width} {self.info.dtype}")

    def _get(self, start: int, stop: int) -> tuple[np.ndarray, bool]:
        from . import open_stack

        out = np.empty((stop - start, self.info.height, self.info.width), self.info.dtype)
        for k in range(start, stop):
            with open_stack(self._files[k], self._options) as r:
                self._check(self._files[k], r.info)
                out[k - start] = r.read(0, 1)[0]
        return out, False

    def close(self) -> None:
        pass
