"""Binary coding masks as a pure function of (seed, k, y, x).

Each group of 64 horizontally adjacent mask bits is one splitmix64 output, addressed by a
counter made from the frame index k within a group, the row y and the 64-pixel word x >> 6.
Nothing depends on the frame size, numpy's random generators or the platform, so a decoder
can make the masks of any tile alone, and a detector's FPGA or a C program can make the same
bits with one 64-bit hash per 64 pixels (docs/format.md has the definition and test vectors).

    counter = (k << 40) | (y << 20) | (x >> 6)       (k < 2**24, y, x < 2**20)
    z       = seed + (counter + 1) * 0x9E3779B97F4A7C15          (mod 2**64)
    z       = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9               (mod 2**64)
    z       = (z ^ (z >> 27)) * 0x94D049BB133111EB               (mod 2**64)
    z       =  z ^ (z >> 31)
    bit     = (z >> (x & 63)) & 1

That is, word x >> 6 of row y of frame k is the counter-th output of a splitmix64 generator
seeded with `seed`; every bit is Bernoulli(0.5).
"""

from __future__ import annotations

import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
MIX1 = np.uint64(0xBF58476D1CE4E5B9)
MIX2 = np.uint64(0x94D049BB133111EB)
MAX_K = 1 << 24
MAX_COORD = 1 << 20
CHUNK_WORDS = 1 << 13  # hash words per batch in make_masks: 64 kB temporaries, below malloc's mmap threshold
DENSITY = 0.5  # the only density this mask definition makes; recorded in every .tcs header


def splitmix64(seed: int, counter: np.ndarray) -> np.ndarray:
    """The counter-th output of splitmix64 seeded with `seed`, element-wise (uint64)."""
    with np.errstate(over="ignore"):
        z = np.uint64(seed & 0xFFFFFFFFFFFFFFFF) + (counter.astype(np.uint64) + np.uint64(1)) * GOLDEN
        z ^= z >> np.uint64(30)
        z *= MIX1
        z ^= z >> np.uint64(27)
        z *= MIX2
        z ^= z >> np.uint64(31)
    return z


def make_masks(
    seed: int,
    n_frames: int,
    y0: int = 0,
    x0: int = 0,
    height: int = 1,
    width: int = 1,
    first: int = 0,
) -> np.ndarray:
    """Masks for frames k = first..first+n_frames-1 over the tile [y0:y0+height, x0:x0+width].

    Returns a bool array of shape (n_frames, height, width). The hashes are made in batches
    of up to CHUNK_WORDS words (small temporaries), then all bits are unpacked in one call
    straight into the result: per-frame unpacking and copying cost more than the hashing.
    """
    if not (0 < n_frames and 0 <= first and first + n_frames <= MAX_K):
        raise ValueError(f"number of mask frames out of range: {n_frames}")
    if y0 < 0 or x0 < 0 or height < 1 or width < 1 or y0 + height > MAX_COORD or x0 + width > MAX_COORD:
        raise ValueError("tile lies outside the 2**20 x 2**20 mask plane")
    w0, w1 = x0 >> 6, (x0 + width - 1) >> 6
    rows = np.arange(y0, y0 + height, dtype=np.uint64)[:, None] << np.uint64(20)
    words = rows | np.arange(w0, w1 + 1, dtype=np.uint64)[None, :]
    z = np.empty((n_frames, *words.shape), dtype="<u8")
    per = max(1, CHUNK_WORDS // words.size)
    for i in range(0, n_frames, per):
        ks = np.arange(first + i, first + min(n_frames, i + per), dtype=np.uint64) << np.uint64(40)
        z[i : i + len(ks)] = splitmix64(seed, words[None] | ks[:, None, None])
    bits = np.unpackbits(z.view(np.uint8), axis=-1, bitorder="little").view(bool)
    lo = x0 - (w0 << 6)
    if lo == 0 and bits.shape[-1] == width:
        return bits
    return np.ascontiguousarray(bits[..., lo : lo + width])


def mask_bit(seed: int, k: int, y: int, x: int) -> int:
    """One mask bit in plain Python integers: the reference the vectorised code is tested on."""
    m = (1 << 64) - 1
    counter = (k << 40) | (y << 20) | (x >> 6)
    z = (seed + (counter + 1) * 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    z ^= z >> 31
    return (z >> (x & 63)) & 1
