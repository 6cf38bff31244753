"""Temporal compressive-sensing encoder: B masked frames summed into one measurement.

Y = sum_k C_k * X_k (Eq. 1 of the paper). The masks are made once per file; each frame
costs one masked add into an accumulator wide enough that the sum cannot overflow. Only
one group of frames is held at a time, so memory does not grow with the movie length.
"""

from __future__ import annotations

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
    """Turns groups of up to B frames into measurements with one file's masks."""

    def __init__(self, B: int, seed: int, height: int, width: int, dtype):
        self.B = check_B(B)
        self.acc_dtype = np.dtype(ACCUMULATORS[np.dtype(dtype).name])
        self.masks = make_masks(seed, B, 0, 0, height, width)
        self._tmp = np.empty((height, width), dtype=self.acc_dtype)
        # Mask-sum of k..B-1: the weight of the repeated last frame in a padded group.
        self._tail_weights: dict[int, np.ndarray] = {}

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """Measurement of one group; a short group is padded with repeats of its last frame."""
        m = len(frames)
        if not 1 <= m <= self.B:
            raise ValueError(f"a group holds 1..{self.B} frames, got {m}")
        y = np.zeros(self._tmp.shape, dtype=self.acc_dtype)
        for k in range(m):
            np.multiply(frames[k], self.masks[k], out=self._tmp)
            y += self._tmp
        if m < self.B:
            np.multiply(frames[m - 1], self._tail_weight(m), out=self._tmp)
            y += self._tmp
        return y

    def _tail_weight(self, m: int) -> np.ndarray:
        if m not in self._tail_weights:
            self._tail_weights[m] = self.masks[m:].sum(axis=0, dtype=self.acc_dtype)
        return self._tail_weights[m]


def pad_group(frames: np.ndarray, B: int) -> np.ndarray:
    """The B frames a short group stands for: its frames, then repeats of its last one."""
    if len(frames) >= B:
        return frames[:B]
    reps = np.repeat(frames[-1:], B - len(frames), axis=0)
    return np.concatenate([frames, reps], axis=0)
