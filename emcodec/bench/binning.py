"""Binning as a codec: what microscopists do today, stored the way emcodec stores a measurement.

Each group's plain sum of B frames (no masks) goes through the same noise-aware quantiser
(the detector fitted from the first group, its `frames` = B since every frame is summed)
and the same zstd packing as a .tcs group; the container's own overhead (header, records,
index, trailer) is charged too. The quantiser step is searched so the total fits the
emcodec file's bytes, largest first. Decoding shows each group's mean for all its frames.
"""

from __future__ import annotations

import numpy as np

from ..container import pack_measurement, zstd_compressor
from ..quantize import MAX_STEP, MIN_STEP, Quantizer, auto_quantizer
from .temporal import binning, binning_measurements

STEPS = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0, 5.6, 8.0)


def _store(sums: list[np.ndarray], q: Quantizer | None, level: int) -> tuple[int, list[np.ndarray]]:
    """(payload bytes, the sums as the decoder would see them) for one quantiser."""
    zstd = zstd_compressor(level)
    total, back = 0, []
    for y in sums:
        if q is None or y.dtype.kind == "f":
            total += len(pack_measurement(y, zstd)[4])
            back.append(y.astype(np.float64))
            continue
        values, offset = q.quantize(y)
        total += len(pack_measurement(values, zstd, offset)[4])
        back.append(q.dequantize(values.astype(np.int64) + offset))
    return total, back


def binning_at_budget(frames: np.ndarray, B: int, budget: int, overhead: int, *, level: int = 1) -> dict:
    """The binning baseline within `budget` bytes: its bytes, step and decoded frames.

    `overhead` is the .tcs container's bytes outside the group payloads, charged to binning
    as well. Lossless sums are tried first; then quantiser steps from fine to coarse.
    """
    sums = binning_measurements(frames, B)
    counts = [min(B, len(frames) - s) for s in range(0, len(frames), B)]
    q0 = auto_quantizer(frames[:B], B, 1.0)
    trials = [("off", None)] + ([(s, Quantizer(step=s, gain=q0.gain, offset=q0.offset, read_noise=q0.read_noise,
                                               frames=float(B)))
                                 for s in STEPS if MIN_STEP <= s <= MAX_STEP] if q0 is not None else [])
    tried = []
    for label, q in trials:
        payload, back = _store(sums, q, level)
        nbytes = payload + overhead
        tried.append({"step": label, "bytes": nbytes})
        if nbytes <= budget:
            decoded = np.concatenate([np.repeat((y / c)[None].astype(np.float32), c, axis=0)
                                      for y, c in zip(back, counts)])
            return {"fits": True, "step": label, "bytes": nbytes, "tried": tried, "frames": decoded}
    return {"fits": False, "tried": tried, "frames": binning(frames, B)}
