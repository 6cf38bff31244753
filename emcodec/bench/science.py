"""What a microscopist measures in a decoded movie: the lattice, the resolution, the atom columns.

PSNR against noise-free frames rewards smoothing; these measures ask whether the science
survives. Movies are (n, h, w) arrays; the reference is the clean (or best available)
movie. Every spectrum is taken under a Hann window so the frame edges add no streaks.
One function per measure; `prepare` does the reference's share once per movie.
"""

from __future__ import annotations

import numpy as np

PEAK_SIGMA = 5.0  # a Bragg peak stands this many robust sigmas above its ring's background
MAX_PEAKS = 60
DYNAMIC_RANGE = 1e-4  # a peak's power above background is at least this fraction of the strongest's
PEAK_RADIUS = 4  # bins: no two peaks closer (drops the window's side lobes), and the DC region
KEEP = 0.8  # a peak is kept when its cross-power is at least this
AMPLIFIED = 1.1  # cross-power above this is amplification (sharpening, ringing), flagged
FRC_THRESHOLD = 0.5
MIN_COLUMNS = 20
MIN_SPACING = 4.0  # px between neighbouring columns for them to count as resolved
MATCH_RADIUS = 0.3  # columns are matched within this fraction of the nearest-neighbour spacing
COLUMN_FRAMES = 6  # frames scored for columns (evenly spaced): the fit costs more than the FFTs


# ---------------------------------------------------------------- spectra


def _window(h: int, w: int) -> np.ndarray:
    return np.outer(np.hanning(h), np.hanning(w))


def _fft(frame: np.ndarray, win: np.ndarray) -> np.ndarray:
    f = np.asarray(frame, dtype=np.float64)
    return np.fft.fft2((f - f.mean()) * win)


def _freq(h: int, w: int) -> np.ndarray:
    """|k| of each unshifted FFT bin in cycles per pixel."""
    return np.hypot(*np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij"))


def _rings(h: int, w: int) -> np.ndarray:
    """Ring index of each bin: |k| in units of 1/min(h, w), rounded."""
    return np.rint(_freq(h, w) * min(h, w)).astype(np.int64)


def _ring_stats(values: np.ndarray, rings: np.ndarray):
    """Per-bin median and robust sigma (1.4826 MAD) of the bin's ring."""
    flat, idx = values.ravel(), rings.ravel()
    order = np.argsort(idx, kind="stable")
    bounds = np.searchsorted(idx[order], np.arange(idx.max() + 2))
    med = np.zeros(idx.max() + 1)
    sd = np.zeros(idx.max() + 1)
    for r in range(idx.max() + 1):
        v = flat[order[bounds[r]:bounds[r + 1]]]
        if len(v):
            med[r] = np.median(v)
            sd[r] = 1.4826 * np.median(np.abs(v - med[r]))
    return med[rings], sd[rings]


def _box3(a: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Sum of the 3x3 bins around each (y, x), wrapping: a windowed peak spreads over them."""
    h, w = a.shape
    return sum(a[(ys + dy) % h, (xs + dx) % w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def power_spectrum(movie) -> np.ndarray:
    """Frame-averaged |FFT|^2 (unshifted), each frame's mean removed, under a Hann window."""
    movie = np.asarray(movie)
    win = _window(*movie.shape[1:])
    acc = np.zeros(movie.shape[1:])
    for f in movie:
        acc += np.abs(_fft(f, win)) ** 2
    return acc / len(movie)


def bragg_peaks(reference, *, sigma: float = PEAK_SIGMA, max_peaks: int = MAX_PEAKS) -> dict:
    """Bragg peaks of the reference: local maxima of its frame-averaged power spectrum that
    stand >= `sigma` robust sigmas above the median of their ring (the radial background),
    and within 40 dB (DYNAMIC_RANGE) of the strongest peak: far out, where the noise-free
    reference has almost no power, the ring's sigma is tiny and specks would pass.

    One of each Friedel pair is kept (the spectrum of a real image is symmetric). Returns
    the bins ("y", "x"), their frequency in cycles/px ("freq") and height in sigmas ("snr").
    """
    from scipy.ndimage import maximum_filter

    ref = np.asarray(reference)
    h, w = ref.shape[1:]
    p = power_spectrum(ref)
    rings = _rings(h, w)
    med, sd = _ring_stats(p, rings)
    snr = (p - med) / np.maximum(sd, 1e-300)
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    half = (fy > 0) | ((fy == 0) & (fx > 0))
    local = p == maximum_filter(p, size=2 * PEAK_RADIUS + 1, mode="wrap")
    ok = local & half & (snr >= sigma) & (rings > PEAK_RADIUS)
    above = p - med
    if ok.any():
        ok &= above >= DYNAMIC_RANGE * above[ok].max()
    ys, xs = np.nonzero(ok)
    order = np.argsort(-snr[ys, xs])[:max_peaks]
    ys, xs = ys[order], xs[order]
    freq = np.hypot(fy[ys, xs], fx[ys, xs])
    by_freq = np.argsort(freq, kind="stable")
    return {"y": ys[by_freq], "x": xs[by_freq], "freq": freq[by_freq], "snr": snr[ys, xs][by_freq]}


def lattice_fidelity(reference, decoded, peaks: dict, *, pixel_size: float | None = None,
                     keep: float = KEEP) -> dict:
    """How much of each Bragg peak the decoded movie keeps, in phase with the reference.

    Per peak: Re<F_dec F_ref*> / <|F_ref|^2> over frames, each with its ring's median
    subtracted (the diffuse background), summed over the peak's 3x3 bins. Noise in the decode
    is uncorrelated with the reference and averages out, so it cannot raise the value; a blur
    H(k) gives H(k); a shift d gives cos(2 pi k.d). Summary "kept_freq": the largest frequency
    f such that every peak with |k| <= f keeps >= `keep` (0 when the first one fails), in
    1/Å with a pixel size (Å/px), else 1/px. "error" is each peak's standard error from the
    frame-to-frame scatter; a peak counts as amplified when its value is > 1.1 by more than
    two of them (a noisy decode scatters around 1, it does not amplify).
    """
    ref, dec = np.asarray(reference), np.asarray(decoded)
    if ref.shape != dec.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {dec.shape}")
    unit = "1/Å" if pixel_size else "1/px"
    scale = 1.0 / pixel_size if pixel_size else 1.0
    if len(peaks["freq"]) == 0:
        return {"peaks": 0, "unit": unit, "note": f"no Bragg peak >= {PEAK_SIGMA:g} sigma in the reference"}
    h, w = ref.shape[1:]
    win = _window(h, w)
    cross = np.zeros((h, w))
    power = np.zeros((h, w))
    ys, xs = peaks["y"], peaks["x"]
    per_frame = []  # each frame's cross-power at the peaks, for the standard error
    for r, d in zip(ref, dec):
        fr = _fft(r, win)
        c = (_fft(d, win) * np.conj(fr)).real
        cross += c
        power += np.abs(fr) ** 2
        per_frame.append(_box3(c, ys, xs))
    rings = _rings(h, w)
    cross -= _ring_stats(cross, rings)[0]
    power -= _ring_stats(power, rings)[0]
    denom = np.maximum(_box3(power, ys, xs), 1e-300)
    ratio = _box3(cross, ys, xs) / denom
    error = np.std(per_frame, axis=0) * len(ref) / np.sqrt(max(1, len(ref) - 1)) / denom
    freqs = peaks["freq"] * scale
    kept_freq = 0.0
    for f, v in zip(freqs, ratio):  # peaks come sorted by frequency
        if v < keep:
            break
        kept_freq = float(f)
    return {"peaks": int(len(ratio)), "unit": unit, "kept_freq": kept_freq,
            "all_kept": bool((ratio >= keep).all()), "max_freq": float(freqs.max()),
            "median_cross_power": float(np.median(ratio)),
            "amplified": int((ratio - 2 * error > AMPLIFIED).sum()),
            "per_peak": [{"freq": float(f), "cross_power": float(v), "error": float(e)}
                         for f, v, e in zip(freqs, ratio, error)]}


# ---------------------------------------------------------------- resolution


def frc_curve(reference_frame, decoded_frame) -> tuple[np.ndarray, np.ndarray]:
    """Fourier ring correlation of one frame pair: (ring frequency in cycles/px, FRC), rings
    of width 1/min(h, w) up to Nyquist."""
    a, b = np.asarray(reference_frame), np.asarray(decoded_frame)
    h, w = a.shape
    win = _window(h, w)
    fa, fb = _fft(a, win), _fft(b, win)
    rings = _rings(h, w).ravel()
    n = min(h, w) // 2 + 1
    num = np.bincount(rings, (fa * np.conj(fb)).real.ravel(), minlength=n)[:n]
    da = np.bincount(rings, (np.abs(fa) ** 2).ravel(), minlength=n)[:n]
    db = np.bincount(rings, (np.abs(fb) ** 2).ravel(), minlength=n)[:n]
    with np.errstate(invalid="ignore", divide="ignore"):
        frc = num / np.sqrt(da * db)
    return np.arange(n) / min(h, w), frc


def _crossing(freq: np.ndarray, frc: np.ndarray, threshold: float) -> float:
    """First frequency (after the DC ring) where the FRC falls below threshold, interpolated."""
    for i in range(1, len(frc)):
        if not frc[i] >= threshold:  # nan counts as below
            if i == 1 or not np.isfinite(frc[i]):
                return float(freq[i])
            t = (frc[i - 1] - threshold) / (frc[i - 1] - frc[i])
            return float(freq[i - 1] + t * (freq[i] - freq[i - 1]))
    return float(freq[-1])


def frc_resolution(reference, decoded, *, threshold: float = FRC_THRESHOLD, pixel_size: float | None = None) -> dict:
    """Resolution of each decoded frame against its reference frame: where the FRC drops below
    0.5. "freq" is the median over frames (1/Å with a pixel size, else 1/px); Nyquist (0.5/px)
    when it never drops; "curve" the FRC averaged over frames."""
    ref, dec = np.asarray(reference), np.asarray(decoded)
    if ref.shape != dec.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {dec.shape}")
    scale = 1.0 / pixel_size if pixel_size else 1.0
    crossings, curves = [], []
    for r, d in zip(ref, dec):
        freq, frc = frc_curve(r, d)
        crossings.append(_crossing(freq, frc, threshold) * scale)
        curves.append(frc)
    return {"unit": "1/Å" if pixel_size else "1/px", "threshold": threshold,
            "freq": float(np.median(crossings)), "freq_frames": [float(c) for c in crossings],
            "curve": [float(v) for v in _nanmean0(np.array(curves))]}


def _nanmean0(a: np.ndarray) -> np.ndarray:
    """Mean over axis 0 ignoring nan (an empty ring), nan where every value is nan, no warning."""
    ok = np.isfinite(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, a, 0).sum(axis=0) / ok.sum(axis=0)


# ---------------------------------------------------------------- atom columns


def _nn_distances(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance, index) of each point's nearest other point."""
    from scipy.spatial import cKDTree

    d, i = cKDTree(points).query(points, k=2)
    return d[:, 1], i[:, 1]


def _affine_scale(src: np.ndarray, dst: np.ndarray) -> float:
    """sqrt|det A| of the least-squares affine map dst ~ A src + t: its area scale as a length."""
    design = np.column_stack([src, np.ones(len(src))])
    m, *_ = np.linalg.lstsq(design, dst, rcond=None)
    return float(np.sqrt(abs(np.linalg.det(m[:2].T))))


def _maxima(frame: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """(positions (n, 2), background-subtracted image) of the columns' local maxima."""
    from scipy.ndimage import gaussian_filter
    from skimage.feature import peak_local_max

    img = params["sign"] * np.asarray(frame, dtype=np.float64)
    img = gaussian_filter(img, params["smooth"])
    img = img - gaussian_filter(img, params["background"])
    pts = peak_local_max(img, min_distance=params["min_distance"], threshold_abs=params["threshold"],
                         exclude_border=params["radius"] + 1)
    return pts.reshape(-1, 2), img


def fit_gaussians(image: np.ndarray, points: np.ndarray, radius: int, iterations: int = 12) -> dict:
    """2-D Gaussian (amplitude, centre, width, offset) least-squares fit around each point.

    Levenberg-Marquardt on a (2r+1)^2 window, vectorised over all points at once (one
    scipy.optimize.least_squares call per column costs ~1 ms, and a frame holds thousands).
    Centres stay within the window. Returns "pos" (n, 2), "amp", "sigma".
    """
    img = np.asarray(image, dtype=np.float64)
    pts = np.asarray(points, dtype=np.int64).reshape(-1, 2)
    n = len(pts)
    off = np.arange(-radius, radius + 1)
    dy, dx = np.meshgrid(off, off, indexing="ij")
    dy, dx = dy.ravel().astype(np.float64), dx.ravel().astype(np.float64)
    data = img[pts[:, :1] + dy.astype(np.int64), pts[:, 1:] + dx.astype(np.int64)]  # (n, m)
    lo = data.min(axis=1)
    # parameters: amplitude, y, x, log sigma, offset
    p = np.stack([data.max(axis=1) - lo, np.zeros(n), np.zeros(n), np.full(n, np.log(radius / 2.0 + 0.5)), lo], 1)
    lam = np.full(n, 1e-2)

    def model(p):
        s2 = np.exp(2 * p[:, 3:4])
        r2 = (dy - p[:, 1:2]) ** 2 + (dx - p[:, 2:3]) ** 2
        g = np.exp(-r2 / (2 * s2))
        return g, r2, s2

    def cost(p):
        g, _, _ = model(p)
        return ((p[:, :1] * g + p[:, 4:5] - data) ** 2).sum(axis=1)

    current = cost(p)
    for _ in range(iterations):
        g, r2, s2 = model(p)
        a = p[:, :1]
        jac = np.stack([g, a * g * (dy - p[:, 1:2]) / s2, a * g * (dx - p[:, 2:3]) / s2, a * g * r2 / s2,
                        np.ones_like(g)], axis=2)  # (n, m, 5)
        res = a * g + p[:, 4:5] - data
        jtj = np.einsum("nmi,nmj->nij", jac, jac)
        jtr = np.einsum("nmi,nm->ni", jac, res)
        damp = jtj + lam[:, None, None] * (np.eye(5) * np.diagonal(jtj, axis1=1, axis2=2)[:, None, :] + 1e-12 * np.eye(5))
        step = np.linalg.solve(damp, -jtr[..., None])[..., 0]
        trial = p + step
        trial[:, 1:3] = np.clip(trial[:, 1:3], -radius, radius)
        trial[:, 3] = np.clip(trial[:, 3], np.log(0.3), np.log(2.0 * radius))
        new = cost(trial)
        better = new < current
        p[better], current[better] = trial[better], new[better]
        lam = np.where(better, lam / 3, lam * 4)
    sigma = np.exp(p[:, 3])
    return {"pos": pts + p[:, 1:3], "amp": p[:, 0], "sigma": sigma}


def column_parameters(reference) -> dict:
    """Detection settings taken from the reference and then used for every movie alike.

    Polarity from the skew of the middle frame (bright columns on dark, or dark on bright),
    spacing from the median nearest-neighbour distance of a first pass, maxima at least 0.4x
    the spacing apart (an invented column midway must not hide four real ones), threshold at 0.3x the
    reference's median column height. "resolved" is False (with a reason) unless the
    reference shows >= 20 columns at >= 4 px spacing.
    """
    from scipy.ndimage import gaussian_filter
    from skimage.feature import peak_local_max

    frame = np.asarray(reference)[len(reference) // 2].astype(np.float64)
    z = frame - frame.mean()
    sign = 1.0 if (z ** 3).mean() >= 0 else -1.0
    smooth = gaussian_filter(sign * frame, 1.0)
    pts = peak_local_max(smooth - gaussian_filter(smooth, 8.0), min_distance=2, exclude_border=2)
    if len(pts) < MIN_COLUMNS:
        return {"resolved": False, "reason": f"{len(pts)} local maxima in the reference (< {MIN_COLUMNS})"}
    spacing = float(np.median(_nn_distances(pts.astype(np.float64))[0]))
    params = {"sign": sign, "spacing": spacing, "smooth": max(0.5, 0.12 * spacing), "background": spacing,
              "min_distance": max(2, int(0.4 * spacing)), "radius": max(2, int(round(0.35 * spacing))),
              "threshold": None}
    _, img = _maxima(frame, {**params, "threshold": None})
    heights = img[tuple(peak_local_max(img, min_distance=params["min_distance"],
                                       exclude_border=params["radius"] + 1).T)]
    params["threshold"] = 0.3 * float(np.median(heights)) if len(heights) else 0.0
    cols, _ = _maxima(frame, params)
    params["count"] = int(len(cols))
    if len(cols) >= 2:
        params["spacing"] = spacing = float(np.median(_nn_distances(cols.astype(np.float64))[0]))
    if len(cols) < MIN_COLUMNS or spacing < MIN_SPACING:
        return {"resolved": False, **params,
                "reason": f"{len(cols)} columns at {spacing:.1f} px spacing in the reference "
                          f"(needs >= {MIN_COLUMNS} at >= {MIN_SPACING:g} px)"}
    return {"resolved": True, **params}


def find_columns(frame, params: dict) -> dict:
    """Columns of one frame: local maxima (scikit-image), refined by a 2-D Gaussian fit.

    "intensity" is the background-subtracted sum over a disc of the window's radius at the
    maximum: linear in the data, so noise scatters it without biasing it (a fitted volume
    A 2 pi sigma^2 blows up when noise widens the fit)."""
    pts, img = _maxima(frame, params)
    if len(pts) == 0:
        return {"pos": np.zeros((0, 2)), "intensity": np.zeros(0)}
    r = params["radius"]
    fit = fit_gaussians(img, pts, r)
    off = np.arange(-r, r + 1)
    dy, dx = np.meshgrid(off, off, indexing="ij")
    disc = dy ** 2 + dx ** 2 <= r * r
    fit["intensity"] = img[pts[:, :1] + dy[disc], pts[:, 1:] + dx[disc]].sum(axis=1)
    return fit


def match_columns(ref_pos: np.ndarray, dec_pos: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian matching (scipy's linear_sum_assignment) of two column lists within `radius`.

    Only pairs closer than radius may match; the assignment is solved per connected group
    of candidates (exact, and fast when groups are small). Returns index arrays (i_ref, i_dec).
    """
    from scipy.optimize import linear_sum_assignment
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    n, m = len(ref_pos), len(dec_pos)
    if n == 0 or m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = cKDTree(ref_pos).sparse_distance_matrix(cKDTree(dec_pos), radius, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    i, j, d = pairs["i"], pairs["j"], pairs["v"]
    graph = coo_matrix((np.ones(len(i)), (i, n + j)), shape=(n + m, n + m))
    _, label = connected_components(graph, directed=False)
    out_i, out_j = [], []
    comp = label[i]
    order = np.argsort(comp, kind="stable")
    bounds = np.flatnonzero(np.diff(comp[order])) + 1
    for sel in np.split(order, bounds):
        if len(sel) == 1:
            out_i.append(i[sel]); out_j.append(j[sel])
            continue
        ri, ci = np.unique(i[sel], return_inverse=True)
        rj, cj = np.unique(j[sel], return_inverse=True)
        cost = np.full((len(ri), len(rj)), 1e6 * radius)
        cost[ci, cj] = d[sel]
        a, b = linear_sum_assignment(cost)
        ok = cost[a, b] <= radius
        out_i.append(ri[a[ok]]); out_j.append(rj[b[ok]])
    return np.concatenate(out_i), np.concatenate(out_j)


def column_fidelity(reference, decoded, params: dict, *, pixel_size: float | None = None,
                    frames: int = COLUMN_FRAMES, cache: dict | None = None) -> dict:
    """Atom columns found alike in reference and decoded frames, matched within 0.3x spacing.

    Over `frames` evenly spaced frames: RMS displacement of matched columns (Å with a pixel
    size, else px); fraction of reference columns missed; fraction of decoded columns
    invented (no reference column near); RMS error of the column intensity (see
    find_columns; atom counting relies on it) over the reference's median column intensity;
    and the lattice-spacing error: the scale, minus 1, of the affine map that best takes the
    matched reference columns onto the decoded ones (a decoder that warps the frame fakes
    strain; random position errors leave a least-squares map unbiased, where comparing
    neighbour distances would read them as expansion). `cache` keeps the reference's
    columns between calls.
    """
    if not params.get("resolved"):
        return {"note": params.get("reason", "no resolved columns in the reference")}
    ref, dec = np.asarray(reference), np.asarray(decoded)
    if ref.shape != dec.shape:
        raise ValueError(f"shape mismatch: {ref.shape} vs {dec.shape}")
    idx = np.unique(np.linspace(0, len(ref) - 1, min(frames, len(ref))).round().astype(int))
    radius = MATCH_RADIUS * params["spacing"]
    disp2, missed, invented, n_ref, n_dec, ierr, strain, typical = [], 0, 0, 0, 0, [], [], []
    for t in idx:
        key = ("columns", int(t))
        if cache is not None and key in cache:
            rc = cache[key]
        else:
            rc = find_columns(ref[t], params)
            if cache is not None:
                cache[key] = rc
        dc = find_columns(dec[t], params)
        i, j = match_columns(rc["pos"], dc["pos"], radius)
        n_ref += len(rc["pos"])
        n_dec += len(dc["pos"])
        missed += len(rc["pos"]) - len(i)
        invented += len(dc["pos"]) - len(j)
        if len(i) == 0:
            continue
        disp2.extend(((dc["pos"][j] - rc["pos"][i]) ** 2).sum(axis=1))
        ierr.extend(dc["intensity"][j] - rc["intensity"][i])
        typical.append(np.median(rc["intensity"]))
        if len(i) >= 3:
            strain.append(_affine_scale(rc["pos"][i], dc["pos"][j]) - 1)
    scale = pixel_size or 1.0
    return {"unit": "Å" if pixel_size else "px", "frames": [int(t) for t in idx],
            "spacing": params["spacing"] * scale, "reference_columns": n_ref, "decoded_columns": n_dec,
            "rms_displacement": float(np.sqrt(np.mean(disp2))) * scale if disp2 else float("nan"),
            "missed": missed / n_ref if n_ref else float("nan"),
            "invented": invented / n_dec if n_dec else 0.0,
            "intensity_error": float(np.sqrt(np.mean(np.square(ierr))) / np.median(typical)) if ierr else float("nan"),
            "spacing_error": float(np.mean(strain)) if strain else float("nan")}


# ---------------------------------------------------------------- all at once


def prepare(reference, *, pixel_size: float | None = None) -> dict:
    """The reference's share of the work, done once per movie: Bragg peaks, column settings."""
    ref = np.asarray(reference)
    return {"peaks": bragg_peaks(ref), "columns": column_parameters(ref), "pixel_size": pixel_size, "cache": {}}


def science_report(reference, decoded, prep: dict) -> dict:
    """Lattice, resolution and column measures of one decoded movie (JSON-able)."""
    ps = prep["pixel_size"]
    return {"lattice": lattice_fidelity(reference, decoded, prep["peaks"], pixel_size=ps),
            "frc": frc_resolution(reference, decoded, pixel_size=ps),
            "columns": column_fidelity(reference, decoded, prep["columns"], pixel_size=ps, cache=prep["cache"])}
