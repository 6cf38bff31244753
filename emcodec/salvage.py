"""decompress --salvage: find every intact group of a damaged or cut-short .tcs file.

A file that stopped mid-stream has no trailer, and one damaged group stops an ordinary
decode. Salvage trusts only the header: it uses the trailer's index when that is intact,
else it scans forward for group records, and keeps each group whose checksums match and
whose payload unpacks. Missing groups keep their frame numbers (decoded as 0, or NaN for
float output); the damaged ranges are reported, and the CLI exits 2 (partial).
"""

from __future__ import annotations

import mmap
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from .container import (DECODE, GROUP_TAG, MAX_GROUPS, Group, Header, Trailer, _next_record,
                        _read_group_rest, read_header)
from .errors import ContainerError


@dataclass
class Salvaged:
    """What could be recovered: intact groups by index (offset of their first record)."""

    header: Header
    trailer: Trailer  # the file's own, or one rebuilt from the intact groups
    intact: dict[int, int]
    trailer_found: bool
    problems: list[str] = field(default_factory=list)

    @property
    def frame_count(self) -> int:
        return self.trailer.frame_count

    def missing(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Frame ranges [a, b) within [start, stop) whose groups were not recovered."""
        B, out = self.header.B, []
        for g in range(start // B, (stop - 1) // B + 1):
            if g in self.intact:
                continue
            a, b = max(start, g * B), min(stop, (g + 1) * B)
            if out and out[-1][1] == a:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
        return out


def _group_at(f: BinaryIO, header: Header, offset: int) -> Group:
    f.seek(offset)
    return _read_group_rest(f, header, _next_record(f, header, "group"), DECODE)


def _value_range(dtype: str) -> tuple[float, float]:
    if np.dtype(dtype).kind == "f":
        return -np.inf, np.inf
    info = np.iinfo(dtype)
    return float(info.min), float(info.max)


def salvage(f: BinaryIO, reader_error: str | None = None) -> Salvaged:
    """Scan an open, seekable .tcs file. The header must be intact (nothing decodes without it)."""
    f.seek(0)
    header = read_header(f)
    data_start = f.tell()
    from .container import TcsReader

    trailer = None
    problems = [reader_error] if reader_error else []
    try:
        f.seek(0)
        trailer = TcsReader(f).trailer
    except ContainerError as exc:
        if not problems:
            problems.append(" ".join(str(exc).split()))
    intact: dict[int, int] = {}
    n_valid: dict[int, int] = {}
    if trailer is not None:
        for g, offset in enumerate(trailer.offsets):
            try:
                if _group_at(f, header, offset).index == g:
                    intact[g] = offset
                    continue
                problems.append(f"group {g} record holds another index")
            except ContainerError as exc:
                problems.append(" ".join(str(exc).split()))
        return Salvaged(header, trailer, intact, True, problems)
    size = f.seek(0, 2)
    with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else _Empty() as mm:
        pos = mm.find(GROUP_TAG, data_start) if size else -1
        while pos >= 0:
            try:
                group = _group_at(f, header, pos)
            except ContainerError:
                pos = mm.find(GROUP_TAG, pos + 1)
                continue
            if group.index < MAX_GROUPS and group.index not in intact:
                intact[group.index], n_valid[group.index] = pos, group.n_valid
            pos = mm.find(GROUP_TAG, max(f.tell(), pos + 1))
    last = max(intact, default=-1)
    last_frames = last * header.B + n_valid[last] if intact else 0
    vmin, vmax = _value_range(header.dtype)
    rebuilt = Trailer(last_frames, vmin, vmax, [intact.get(g, 0) for g in range(last + 1)])
    return Salvaged(header, rebuilt, intact, False, problems)


class _Empty:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


class RunReader:
    """A run of consecutive intact groups, seen as a whole file (for the movie decoder).

    Its groups are renumbered from 0, so a damaged neighbour is a boundary, never read.
    """

    def __init__(self, f: BinaryIO, saved: Salvaged, first: int, stop: int):
        self._f, self.header, self.first = f, saved.header, first
        B = saved.header.B
        frames = min(saved.frame_count, stop * B) - first * B
        offsets = [saved.intact[g] for g in range(first, stop)]
        self.trailer = Trailer(frames, saved.trailer.value_min, saved.trailer.value_max, offsets)

    def read_group(self, index: int, payloads: str = DECODE) -> Group:
        self._f.seek(self.trailer.offsets[index])
        group = _read_group_rest(self._f, self.header, _next_record(self._f, self.header, "group"), payloads)
        group.index = index
        return group


def intact_runs(saved: Salvaged, groups: range) -> list[tuple[int, int]]:
    """Maximal [first, stop) runs of intact groups within `groups`."""
    runs: list[tuple[int, int]] = []
    for g in groups:
        if g not in saved.intact:
            continue
        if runs and runs[-1][1] == g:
            runs[-1] = (runs[-1][0], g + 1)
        else:
            runs.append((g, g + 1))
    return runs
