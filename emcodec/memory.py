"""Refuse a decode that cannot fit, before it starts, instead of dying of "out of memory".

A valid 8 KB file can claim 16384 x 16384 frames; one group of it decodes into gigabytes.
`decode_peak` estimates the peak of decoding one group (the movie decoder holds a window of
groups), `available` is what this process may use (free RAM and the cgroup limit), and
`check` raises with both figures. `--max-memory` replaces `available`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from .errors import EmcodecError

UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """`8G`, `512M`, `1.5G`, `4000000000` (bytes) -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:i?B)?\s*", str(text), re.IGNORECASE)
    if not m or float(m.group(1)) <= 0:
        raise EmcodecError(f"--max-memory takes a size such as 8G or 512M, got {text!r}")
    return int(float(m.group(1)) * UNITS[m.group(2).upper()])


def human(n: float) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= UNITS[unit]:
            return f"{n / UNITS[unit]:.1f} {unit}iB"
    return f"{int(n)} bytes"


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _cgroup_room() -> int | None:
    """The cgroup's limit less what it already uses (v2, else v1); None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit = _read_int(limit_file)
        if limit is not None and limit < 1 << 60:
            return max(0, limit - (_read_int(usage_file) or 0))
    return None


def _mem_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def available() -> int | None:
    """Bytes this process can still use: min(available RAM, cgroup room); None if unknown."""
    figures = [v for v in (_mem_available(), _cgroup_room()) if v is not None]
    return min(figures) if figures else None


BASE = 300 << 20  # the interpreter with numpy, OpenCV and torch loaded
TILE_REGION = (512 + 2 * 96) ** 2  # px of a movie-decoder tile with its halo (motion up to 64 px)
# the movie decoder's fit keeps its sample points up to this size (a 704 px tile's window at
# B = 30 is 595 MB): rebuilding them at each step cost a quarter of its CPU time
HELD_POINTS_BYTES = 768 << 20
FIT_CHUNK_BYTES = 8 << 20  # the fit samples a part's frames in chunks of about this size


def decode_peak(height: int, width: int, B: int, *, movie: bool, window: int, itemsize: int = 4) -> int:
    """Estimated peak resident bytes of decoding one group (or, for the movie decoder, its
    window), the interpreter with its libraries (BASE) included.

    Per-group methods: the measurement and its float64 copies (4 H W x 8 bytes) and 8 float64
    copies of the B frames (decoded frames, blending weights, clipping, the output's dtype).
    The movie decoder (emcodec/decoders/movie.py) holds the output group's frames in the
    writer's dtype (`itemsize` bytes), 2K + 1 parts (measurement and first pass, float32),
    the K(3K + 1) flows between them (half resolution, float16: 1 byte per pixel each) and
    the mask count; its fit works on one tile at a time: per frame of the window a float16
    displacement and a uint8 mask, and its sample points when they fit in
    HELD_POINTS_BYTES; per chunk of frames (FIT_CHUNK_BYTES), sample points, sampled frames
    and gradient.
    At 768 x 768 x 10 (uint16) this gives 678 MiB (GAP-TV) and 677 MiB (movie), where whole
    decodes peaked at 622 (b225130) and 643 MiB (the fit in chunks).
    """
    pixels = height * width
    if not movie:
        return BASE + 4 * pixels * 8 + 8 * B * pixels * 8
    parts, flows = 2 * window + 1, window * (3 * window + 1)
    region = min((height + 128) * (width + 128), TILE_REGION)
    points = parts * B * region * 8
    return (BASE + B * pixels * itemsize + parts * pixels * 8 + flows * pixels + 2 * pixels * 4
            + parts * B * region * 5 + (points if points <= HELD_POINTS_BYTES else 0)
            + min(B * region, max(region, FIT_CHUNK_BYTES // 8)) * 24)


def release() -> None:
    """Hand freed heap memory back to the system (glibc's malloc_trim; elsewhere nothing).

    The movie decoder's tiles allocate many arrays of 1-40 MB, below glibc's adaptive mmap
    threshold (up to 32 MB), so freed ones stay in the heap: at 4096 x 4096 the heap held
    1.3 GB of freed tiles. Called after each tile and each part's motion.
    """
    global _trim
    if _trim is None:
        try:
            import ctypes

            _trim = ctypes.CDLL("libc.so.6").malloc_trim
        except (OSError, AttributeError):
            _trim = False
    if _trim:
        _trim(0)


_trim = None


def check(height: int, width: int, B: int, *, movie: bool, window: int, limit: int | None,
          itemsize: int = 4) -> None:
    """Raise when one group needs more than `limit` (default: what is available now)."""
    need = decode_peak(height, width, B, movie=movie, window=window, itemsize=itemsize)
    room = limit if limit is not None else available()
    if room is not None and need > room:
        source = "--max-memory" if limit is not None else "available (free RAM and the cgroup limit)"
        raise EmcodecError(f"decoding a group of {B} frames of {height} x {width} needs about {human(need)}, "
                           f"more than the {human(room)} {source}; use --max-memory to allow more, "
                           f"or another machine")
