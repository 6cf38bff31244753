"""Noise-aware quantiser for the measurement: a variance-stabilising transform, then a uniform step.

Y is a sum of noisy detector counts, so its low bits are shot noise; storing them exactly is
where most of a lossless file's bytes go. The generalised Anscombe transform

    f(Y) = (2 / g) * sqrt(g * Y + 3/8 * g^2 + n * c),     c = read_noise^2 - gain * offset

makes the noise of Y (a sum of n frames, each with variance g * x + c) about 1 everywhere,
so one uniform step in f costs the same fraction of the noise in dark and bright pixels.
Below the point where the root would start to flatten, f continues as a straight line, so
values under the detector offset are still told apart rather than clipped to one code.

The encoder applies it as a table lookup (`Quantizer.quantize`: one read per measurement
pixel; the formula itself for measurements too wide for a table); the decoder maps each code
to the mean of the integer Ys that share it. docs/format.md ("Quantised measurement") is the
specification.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import numpy as np

TRANSFORM_NONE = 0
TRANSFORM_ANSCOMBE = 1  # generalised Anscombe, linear below the knee, uniform step
TRANSFORMS = {TRANSFORM_NONE: "none", TRANSFORM_ANSCOMBE: "generalised-anscombe"}

# The default step, in units of the measurement's noise standard deviation, chosen from the
# rate-distortion measurements in docs/BENCHMARKS.md ("Quantised measurement").
AUTO_STEP = 1.0
MIN_STEP, MAX_STEP = 0.01, 16.0
MIN_GAIN, MAX_DETECTOR = 1e-12, 1e12  # beyond these the transform's squares overflow float64
LUT_SLACK = 1.25  # a new table covers a quarter more than asked, so it is rarely rebuilt
MAX_TABLE = 1 << 22  # entries (4-32 MB); wider measurements (32-bit counts) use the formula per pixel


@dataclass(frozen=True)
class Quantizer:
    """The transform's parameters for one file; all a decoder needs to invert it.

    `frames` is the mean number of frames a measurement pixel sums (B x mask density).
    """

    step: float
    gain: float = 1.0
    offset: float = 0.0
    read_noise: float = 0.0
    frames: float = 5.0

    def __post_init__(self):
        if not (MIN_STEP <= self.step <= MAX_STEP):
            raise ValueError(f"quantiser step must be between {MIN_STEP} and {MAX_STEP}, got {self.step}")
        if not (MIN_GAIN <= self.gain <= MAX_DETECTOR):
            raise ValueError(f"detector gain must be between {MIN_GAIN:g} and {MAX_DETECTOR:g}, got {self.gain}")
        if not (abs(self.offset) <= MAX_DETECTOR and 0 <= self.read_noise <= MAX_DETECTOR):
            raise ValueError(f"detector offset and read noise must be finite, within {MAX_DETECTOR:g} "
                             "(read noise >= 0)")

    # ------------------------------------------------------------ the transform

    @property
    def _shift(self) -> float:
        """f(Y) = (2/g) sqrt(g Y + shift): 3/8 g^2 plus the read noise less the offset, n frames of each."""
        c = self.read_noise**2 - self.gain * self.offset
        return 0.375 * self.gain**2 + self.frames * c

    def transform(self, y: np.ndarray) -> np.ndarray:
        """f(Y) in float64, monotone increasing; the noise of Y is about 1 in its units."""
        g = self.gain
        knee = 0.375 * g * g  # argument of the root at zero counts without read noise
        arg = g * np.asarray(y, dtype=np.float64) + self._shift
        root = np.sqrt(np.maximum(arg, knee))
        return (2.0 / g) * np.where(arg >= knee, root, root + (arg - knee) / (2.0 * root))

    def inverse(self, t: np.ndarray) -> np.ndarray:
        """The real Y with f(Y) = t (float64)."""
        g = self.gain
        knee = 0.375 * g * g
        t = np.asarray(t, dtype=np.float64) * (g / 2.0)
        r0 = np.sqrt(knee)
        arg = np.where(t >= r0, t * t, knee + 2.0 * r0 * (t - r0))
        return (arg - self._shift) / g

    def codes_of(self, y: np.ndarray) -> np.ndarray:
        """The code of each integer Y: round(f(Y) / step), as int64."""
        return np.floor(self.transform(y) / self.step + 0.5).astype(np.int64)

    # ------------------------------------------------------------ encoder side

    def quantize(self, y: np.ndarray, cache: dict | None = None) -> tuple[np.ndarray, int]:
        """Codes of an integer measurement, ready to store: (unsigned values, offset), code = value + offset.

        One table read per pixel and no pass after it: the table holds the codes less its
        first code in the narrowest unsigned type. `cache` (a dict the caller keeps per file)
        holds the table and the index buffer between groups; a group outside the table
        rebuilds it over the union of both ranges, with some slack.
        """
        if y.dtype.kind not in "iu":
            raise TypeError("only integer measurements are quantised (float input is stored losslessly)")
        lo, hi = int(y.min()), int(y.max())
        cache = {} if cache is None else cache
        table = cache.get("lut")
        if hi - lo >= MAX_TABLE:  # no table: the formula itself, a few float passes per pixel
            return to_unsigned(self.codes_of(y))
        if table is None or lo < table[0] or hi >= table[0] + table[2].size:
            lo_t, hi_t = (lo, hi) if table is None else (min(lo, table[0]), max(hi, table[0] + table[2].size - 1))
            if 0 < lo_t <= hi_t - lo_t and hi_t < MAX_TABLE:  # from Y = 0 when that at most doubles it: Y is the index
                lo_t = 0
            hi_t = max(hi_t, min(lo_t + int((hi_t - lo_t + 1) * LUT_SLACK), lo_t + MAX_TABLE - 1))
            lut, first = to_unsigned(self.codes_of(np.arange(lo_t, hi_t + 1, dtype=np.int64)))
            table = cache["lut"] = (lo_t, first, lut)
        base, first, lut = table
        if base == 0:
            index = y
        else:  # shifted into an index buffer kept per file (np.take would make a fresh one per group)
            index = cache.get("index")
            if index is None or index.shape != y.shape:
                index = cache["index"] = np.empty(y.shape, np.intp)
            np.subtract(y, base, out=index, dtype=np.intp, casting="unsafe")
        values = np.take(lut, index, mode="clip")  # in range by the check above; "clip" skips the error path
        low, high = int(lut[lo - base]), int(lut[hi - base])  # the table is monotone
        narrow = np.min_scalar_type(high - low)
        if narrow.itemsize < values.itemsize:  # this group spans less than the table
            return (values - values.dtype.type(low)).astype(narrow), first + low
        return values, first

    # ------------------------------------------------------------ decoder side

    def dequantize(self, codes: np.ndarray) -> np.ndarray:
        """Each code's mean integer Y (float64): the centre of the Ys the encoder mapped there.

        The Ys of a code are a run of integers (the transform is monotone), so their mean is
        the run's midpoint: found from the runs' first Ys, one per code, whatever the range
        of Y (a table over every Y would not fit for 32-bit counts).
        """
        codes = np.asarray(codes, dtype=np.int64)
        cmin, cmax = int(codes.min()), int(codes.max())
        if cmax - cmin >= codes.size:  # sparse codes (a tiny gain or step): only those present
            present, where = np.unique(codes, return_inverse=True)
            lower, upper = self._first_y(present), self._first_y(present + 1)
            centre = np.where(upper > lower, 0.5 * (lower + upper - 1), self.inverse(present * self.step))
            return centre[where.reshape(codes.shape)]
        c = np.arange(cmin, cmax + 2, dtype=np.int64)
        first = self._first_y(c)  # first[i]: the smallest integer Y whose code is >= c[i]
        count = first[1:] - first[:-1]
        centre = np.where(count > 0, 0.5 * (first[:-1] + first[1:] - 1), self.inverse(c[:-1] * self.step))
        return centre[codes - cmin]

    def _first_y(self, c: np.ndarray) -> np.ndarray:
        """Smallest integer Y with code >= c: the inverse at the code's lower edge, then exact."""
        y = np.ceil(self.inverse((c - 0.5) * self.step)).astype(np.int64)
        for _ in range(64):  # the float inverse misses the boundary by an integer or so, if at all
            down, up = self.codes_of(y - 1) >= c, self.codes_of(y) < c
            if not (down.any() or up.any()):
                break
            y = y - down + up
        return y

    def describe(self) -> dict:
        return {"transform": TRANSFORMS[TRANSFORM_ANSCOMBE], "step": self.step, "gain": self.gain,
                "offset": self.offset, "read_noise": self.read_noise}


def to_unsigned(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Integers as (a - min(a)) in the narrowest unsigned type, and min(a): how they are stored."""
    low = int(a.min()) if a.size else 0
    narrow = np.min_scalar_type(int(a.max()) - low if a.size else 0)
    return ((a - low).astype(narrow) if low else a.astype(narrow, copy=False)), low


# ---------------------------------------------------------------- auto: the noise from the data


@dataclass(frozen=True)
class NoiseModel:
    """Per-frame detector noise, variance = gain * value + floor (floor = read_noise^2 - gain * offset)."""

    gain: float
    floor: float

    def detector(self) -> tuple[float, float, float]:
        """(gain, offset, read noise) with the same variance law: a negative floor is an offset."""
        if self.floor >= 0:
            return self.gain, 0.0, float(np.sqrt(self.floor))
        return self.gain, -self.floor / self.gain, 0.0


def estimate_noise(frames: np.ndarray, *, block: int = 4, max_side: int = 128, max_pairs: int = 2,
                   bins: int = 16) -> NoiseModel | None:
    """Fit variance = gain * mean + floor from consecutive-frame differences, or None.

    The difference of two frames cancels what does not move, so half its variance in a small
    block is the noise variance at that block's mean level. Motion and edges only add
    variance, so within each brightness bin a low quantile is taken, not the mean (4x4 blocks
    and the 10% quantile: on 24 simulated movies with drift, dose 0.5-200, the variance at the
    mean level came out within 0.95-1.59x of the truth, against up to 3.1x with 8x8 blocks
    and the median). Runs once per file on a 128x128 centre crop of the first three frames:
    0.13 ms, still 3 us per frame of the 40-frame built-in sample.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) < 2 or frames.dtype.kind not in "iu":
        return None
    n, h, w = frames.shape
    y0, x0 = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    hb, wb = min(h, max_side) // block, min(w, max_side) // block
    if hb * wb < 4 * bins:
        return None
    crop = frames[: max_pairs + 1, y0 : y0 + hb * block, x0 : x0 + wb * block].astype(np.float32)
    sq = crop[1:] - crop[:-1]
    np.square(sq, out=sq)
    k = block * block
    # block sums of the frames give the pairs' sums and differences; only the squares need their own
    each = _block_sums(crop, block).reshape(len(crop), -1)
    sums, s1, s2 = each[1:] + each[:-1], each[1:] - each[:-1], _block_sums(sq, block)
    sums, s1 = sums.ravel(), s1.ravel()
    means = sums / (2 * k)
    var = (s2 - s1 * s1 / k) / (k - 1) / 2  # unbiased, halved
    per_bin = len(means) // bins
    order = np.argsort(means)[: bins * per_bin].reshape(bins, per_bin)  # equal-count brightness bins
    q = int(QUANTILE * (per_bin - 1))
    mx = means[order[:, per_bin // 2]]
    vy = np.partition(var[order], q, axis=1)[:, q] / QUANTILE_BIAS
    level, noise = statistics.median(mx.tolist()), statistics.median(vy.tolist())  # 16 values: no numpy needed
    if np.ptp(mx) > 0 and np.ptp(mx) >= NARROW * abs(level):  # (all-zero frames: no slope to fit)
        # least squares written out: np.polyfit goes through BLAS, whose idle threads then
        # spin for a while, costing as much CPU as compressing a short movie
        dx = mx - mx.mean()
        gain = float((dx * vy).sum() / (dx * dx).sum())
        floor = float(vy.mean() - gain * mx.mean())
        if np.isfinite(gain) and np.isfinite(floor) and gain > 0:
            return NoiseModel(gain, floor)
    # A (nearly) flat field: slope and floor cannot be told apart, so take it as shot noise
    # alone (a counting detector's law), which still puts the step at the right size there.
    if level > 0 and noise > 0 and np.isfinite(noise):
        return NoiseModel(noise / level, 0.0)
    return None


def _block_sums(a: np.ndarray, block: int) -> np.ndarray:
    """Sums over block x block tiles of (n, H, W), flattened to float64.

    Rows first (whole rows added, contiguous), then the columns of the 4x narrower result
    pairwise: half the time of strided column sums over the full array.
    """
    n, h, w = a.shape
    rows = a.reshape(n, h // block, block, w).sum(axis=2)
    if block & (block - 1):  # not a power of 2
        return sum(rows[..., i::block] for i in range(block)).astype(np.float64).ravel()
    while block > 1:
        rows, block = rows[..., 0::2] + rows[..., 1::2], block // 2
    return rows.astype(np.float64).ravel()


# The 10% quantile of a 4x4 block's sample variance (15 degrees of freedom) over the true
# variance, for Gaussian noise: scipy.stats.chi2.ppf(0.1, 15) / 15.
QUANTILE, QUANTILE_BIAS = 0.1, 0.5698
NARROW = 0.25  # brightness bins spanning less than this fraction of their level: a flat field


def auto_quantizer(frames: np.ndarray, B: int, density: float, *, step: float = AUTO_STEP,
                   gain: float | None = None, offset: float | None = None,
                   read_noise: float | None = None) -> Quantizer | None:
    """The quantiser `--quantize auto` uses: the user's detector values, else the fitted ones.

    None when the input is not integer counts or the noise cannot be fitted (then the file
    is stored losslessly, and `emcodec info` says so).
    """
    if np.asarray(frames).dtype.kind not in "iu":
        return None
    if gain is None:
        model = estimate_noise(frames)
        if model is None:
            return None
        g, o, r = model.detector()
        if offset is not None or read_noise is not None:  # the user's values win where given
            o = 0.0 if offset is None else offset
            r = 0.0 if read_noise is None else read_noise
    else:
        g, o, r = gain, offset or 0.0, read_noise or 0.0
    return Quantizer(step=step, gain=g, offset=o, read_noise=r, frames=B * density)
