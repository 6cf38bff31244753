"""Temporal compressive-sensing encoder: B masked frames summed into one measurement.

Y = sum_k C_k * X_k (Eq. 1 of the paper). The masks are made once per file; each frame
costs one masked add into an accumulator wide enough that the sum cannot overflow. Only
one group of frames is held at a time, so memory does not grow with the movie length.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .masks import make_masks

MIN_B, MAX_B, DEFAULT_B = 2, 64, 10

# Accumulator for each supported input dtype: holds the sum of 64 frames without overflow.
ACCUMULATORS = {
    "uint8": np.uint16,
    "int8": np.int16,
    "uint16": np.uint32,
    "int16": np.int32,
    "uint32": np.uint64,
    "int32": np.int64,
    "float32": np.float32,
}


def check_B(B: int) -> int:
    from .errors import EmcodecError

    if not MIN_B <= B <= MAX_B:
        raise EmcodecError(f"B must be between {MIN_B} and {MAX_B}, got {B}")
    return B


class GroupEncoder:
    """Turns groups of up to B frames into measurements with one file's masks.

    Work goes band by band (a few rows of all B frames at once) so the accumulator and
    the frames' rows stay in cache. The sum is bound by memory traffic, so by default the
    calling thread does it all: measured on 2048x2048 uint16, a second thread made it
    slower (benchmarks/encoder_speed.py); the spare core packs the previous group instead.
    """

    BAND_PIXELS = 1 << 15  # rows per band * width: B such rows fit in a core's L2 cache
    THREAD_MIN_PIXELS = 1 << 20  # smaller frames are packed in the calling thread too

    MAX_MASK_BYTES = 1 << 28  # larger mask sets are kept bit-packed and unpacked per band
    RELEASE_BAND_BYTES = 1 << 28  # groups larger than this give their input pages back per band

    def __init__(self, B: int, seed: int, height: int, width: int, dtype, threads: int = 1,
                 release=None):
        self.B = check_B(B)
        self.acc_dtype = np.dtype(ACCUMULATORS[np.dtype(dtype).name])
        self._packed = B * height * width > self.MAX_MASK_BYTES
        if self._packed:  # one frame's masks unpacked at a time, even while making them
            self.masks = np.stack([np.packbits(make_masks(seed, 1, 0, 0, height, width, first=k)[0], axis=-1)
                                   for k in range(B)])
        else:
            self.masks = make_masks(seed, B, 0, 0, height, width)
        self.shape = (height, width)
        # called with each frame's rows once they are summed: lets a memory-mapped input
        # give its pages back, so a group of 64 large frames is never resident at once.
        # Smaller groups skip it (it costs a system call per band; the reader releases
        # the whole group afterwards).
        big = B * height * width * np.dtype(dtype).itemsize > self.RELEASE_BAND_BYTES
        self._release = release if big else None
        rows = max(1, self.BAND_PIXELS // width)
        self._bands = [(r, min(height, r + rows)) for r in range(0, height, rows)]
        self._pool = ThreadPoolExecutor(threads) if threads > 1 else None
        # Counts that cannot overflow 16 bits are summed in 16 bits: half the memory traffic.
        self._narrow = np.dtype(np.uint16) if self.acc_dtype == np.uint32 else None
        # Mask-sum of k..B-1: the weight of the repeated last frame in a padded group.
        self._tail_weights: dict[int, np.ndarray] = {}
        self._tmp: np.ndarray | None = None

    def encode(self, frames: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Measurement of one group, and the group's min and max input value.

        A short group is padded with repeats of its last frame (docs/format.md).
        """
        m = len(frames)
        if not 1 <= m <= self.B:
            raise ValueError(f"a group holds 1..{self.B} frames, got {m}")
        tail = self._tail_weight(m) if m < self.B else None
        if isinstance(frames, np.memmap):  # plain views: slicing a memmap subclass costs more than the sums
            frames = frames.view(np.ndarray)
        if self._pool:
            y = np.empty(self.shape, dtype=self.acc_dtype)
            parts = list(self._pool.map(lambda band: self._band(frames, tail, *band), self._bands))
            for (r0, r1), (_, _, acc) in zip(self._bands, parts):
                y[r0:r1] = acc
        else:
            # 16-bit sums stay 16-bit (half the bytes to pack) until a band needs more; bands
            # are summed straight into y, with one scratch row block for the whole file
            y = np.empty(self.shape, dtype=self._narrow or self.acc_dtype)
            parts = []
            for r0, r1 in self._bands:
                lo, hi, acc = self._band(frames, tail, r0, r1, out=y[r0:r1])
                if acc.dtype.itemsize > y.dtype.itemsize:
                    y = y.astype(self.acc_dtype)
                if acc.base is not y:
                    y[r0:r1] = acc
                parts.append((lo, hi, None))
        return y, float(min(p[0] for p in parts)), float(max(p[1] for p in parts))

    def _band(self, frames, tail, r0, r1, out=None):
        rows = frames[:, r0:r1]
        lo, hi = np.minimum.reduce(rows, axis=None), np.maximum.reduce(rows, axis=None)
        acc_dtype = self.acc_dtype
        if self._narrow is not None and int(hi) * self.B <= np.iinfo(self._narrow).max:
            acc_dtype = self._narrow
        if out is not None and out.dtype == acc_dtype:
            acc, tmp = out, self._scratch(out.shape, acc_dtype)
        else:
            acc = np.empty((r1 - r0, self.shape[1]), dtype=acc_dtype)
            tmp = np.empty_like(acc)
        np.multiply(rows[0], self._mask(0, r0, r1), out=acc)
        for k in range(1, len(frames)):
            np.multiply(rows[k], self._mask(k, r0, r1), out=tmp)
            acc += tmp
        if tail is not None:
            np.multiply(rows[-1], tail[r0:r1], out=tmp, dtype=tmp.dtype, casting="unsafe")
            acc += tmp
        if self._release is not None:
            for k in range(len(frames)):
                self._release(rows[k])
        return lo, hi, acc

    def _scratch(self, shape, dtype) -> np.ndarray:
        """The calling thread's product buffer: reused by every band and group of the file."""
        if self._tmp is None or self._tmp.dtype != dtype or self._tmp.shape != shape:
            self._tmp = np.empty(shape, dtype)
        return self._tmp

    def _mask(self, k: int, r0: int, r1: int) -> np.ndarray:
        if not self._packed:
            return self.masks[k, r0:r1]
        return np.unpackbits(self.masks[k, r0:r1], axis=-1, count=self.shape[1]).view(bool)

    def _tail_weight(self, m: int) -> np.ndarray:
        """Counts of at most B - 1 < 256 masks: summed as bytes, no widening of the bools."""
        if m not in self._tail_weights:
            if self._packed:
                w = np.zeros(self.shape, np.uint8)
                for k in range(m, self.B):
                    w += self._mask(k, 0, self.shape[0])
            else:
                w = np.add.reduce(self.masks[m:].view(np.uint8), axis=0, dtype=np.uint8)
            self._tail_weights[m] = w
        return self._tail_weights[m]

    def close(self) -> None:
        if self._pool:
            self._pool.shutdown()


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def spare_core(frame_pixels: int) -> bool:
    """Whether packing a group on a second thread pays: large frames and a core to spare."""
    return frame_pixels >= GroupEncoder.THREAD_MIN_PIXELS and usable_cores() > 1


def pad_group(frames: np.ndarray, B: int) -> np.ndarray:
    """The B frames a short group stands for: its frames, then repeats of its last one."""
    if len(frames) >= B:
        return frames[:B]
    reps = np.repeat(frames[-1:], B - len(frames), axis=0)
    return np.concatenate([frames, reps], axis=0)
