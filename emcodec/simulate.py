"""Simulated in-situ TEM/STEM movies with known clean frames (numpy only).

The training set of the shipped TCS-DL weights and the source of the built-in sample movie.
Every movie is drawn from one seed: a scene (crystal film with grain boundaries, faceted
nanoparticles that drift, rotate and sinter, fibres and particles at low magnification, on an
amorphous support), a motion (stage drift, rotation, slow deformation), a contrast-transfer-like
blur, and detector noise (Poisson at a dose of ~0.5-300 counts/pixel/frame, gain, read noise).
Scenes are evaluated analytically at per-frame warped coordinates, vectorised over frames, so a
16-frame 128x128 training clip takes a few tens of milliseconds.
"""

from __future__ import annotations

import numpy as np

KINDS = ("atomic", "nanoparticles", "lowmag")
DOSE_RANGE = (0.5, 300.0)
SAMPLE_SEED = 20211  # the built-in sample movie; training never uses seeds < 10**6 (see training)


# ---------------------------------------------------------------- motion


def _sigmoid(x):
    """Logistic function without overflow warnings."""
    return np.float32(0.5) + np.float32(0.5) * np.tanh(np.float32(0.5) * x)


def _motion(rng, n, h, w):
    """Per-frame sample coordinates (ys, xs), float32 (n, h, w): drift, rotation, deformation.

    Speeds are those of in-situ work: drift up to ~3 px/frame (usually < 1), rotation up to
    ~0.3 degrees/frame, a smooth deformation field reaching a few px over the movie.
    """
    t = np.arange(n, dtype=np.float32)
    speed = rng.choice([0.0, 0.2, 0.7, 1.5, 3.0], p=[0.1, 0.3, 0.3, 0.2, 0.1]) * rng.uniform(0.5, 1.0)
    ang = rng.uniform(0, 2 * np.pi)
    vy, vx = speed * np.sin(ang), speed * np.cos(ang)
    acc = rng.normal(0, 0.02, 2)
    jit = np.cumsum(rng.normal(0, rng.uniform(0, 0.15), (n, 2)), axis=0)
    dy = (vy * t + 0.5 * acc[0] * t**2 + jit[:, 0]).astype(np.float32)
    dx = (vx * t + 0.5 * acc[1] * t**2 + jit[:, 1]).astype(np.float32)
    omega = np.deg2rad(rng.choice([0.0, 1.0]) * rng.normal(0, 0.15))
    th = (omega * t).astype(np.float32)
    yy, xx = np.meshgrid(np.arange(h, dtype=np.float32) - h / 2, np.arange(w, dtype=np.float32) - w / 2,
                         indexing="ij")
    c, s = np.cos(th)[:, None, None], np.sin(th)[:, None, None]
    ys = c * yy + s * xx + dy[:, None, None]
    xs = -s * yy + c * xx + dx[:, None, None]
    if rng.random() < 0.5:  # slow smooth deformation (strain, bending of the support)
        amp = rng.uniform(0.5, 3.0) / max(n - 1, 1)
        period = rng.uniform(60, 300)
        ph = rng.uniform(0, 2 * np.pi, 2)
        ft = (t * amp)[:, None, None]
        ys = ys + ft * np.sin(2 * np.pi * xx / period + ph[0])
        xs = xs + ft * np.sin(2 * np.pi * yy / period + ph[1])
    return ys.astype(np.float32), xs.astype(np.float32)


# ---------------------------------------------------------------- scene parts


def _lattice(rng, ys, xs, spacing, theta, sharp=None):
    """Atomic columns in [0, 1] at coordinates (ys, xs): hexagonal, square or rectangular."""
    kind = rng.integers(3)
    if kind == 0:
        angles, mags = [0, 2 * np.pi / 3, 4 * np.pi / 3], [1, 1, 1]
    elif kind == 1:
        angles, mags = [0, np.pi / 2], [1, 1]
    else:
        angles, mags = [0, np.pi / 2], [1, rng.uniform(0.55, 0.9)]
    ph = rng.uniform(0, 2 * np.pi, len(angles))
    f = 0
    for a, m, p in zip(angles, mags, ph):
        g = 2 * np.pi * m / spacing
        f = f + np.cos(np.float32(g * np.cos(theta + a)) * xs + np.float32(g * np.sin(theta + a)) * ys + np.float32(p))
    k = sharp if sharp is not None else rng.uniform(1.0, 3.0)
    return np.exp(np.float32(k) * (f - np.float32(len(angles))))


def _texture(rng, ys, xs, corr, margin):
    """Amorphous support: smooth Gaussian random field sampled bilinearly at (ys, xs)."""
    y0, y1 = float(ys.min()) - 2, float(ys.max()) + 2
    x0, x1 = float(xs.min()) - 2, float(xs.max()) + 2
    step = max(corr / 2.0, 0.5)
    gh, gw = int((y1 - y0) / step) + 3, int((x1 - x0) / step) + 3
    g = rng.standard_normal((gh, gw)).astype(np.float32)
    # smooth with a 3-tap binomial twice: correlation ~ 2 grid steps = corr px
    for _ in range(2):
        g = 0.25 * np.roll(g, 1, 0) + 0.5 * g + 0.25 * np.roll(g, -1, 0)
        g = 0.25 * np.roll(g, 1, 1) + 0.5 * g + 0.25 * np.roll(g, -1, 1)
    g /= g.std() + 1e-6
    fy = (ys - np.float32(y0)) * np.float32(1 / step)
    fx = (xs - np.float32(x0)) * np.float32(1 / step)
    iy = np.minimum(fy.astype(np.int32), gh - 2)
    ix = np.minimum(fx.astype(np.int32), gw - 2)
    wy = fy - iy
    wx = fx - ix
    flat = g.ravel()
    i00 = iy * gw + ix
    top = flat.take(i00) * (1 - wx) + flat.take(i00 + 1) * wx
    i00 += gw
    bot = flat.take(i00) * (1 - wx) + flat.take(i00 + 1) * wx
    return top * (1 - wy) + bot * wy


def _particles(rng, ys, xs, n, h, w, *, lattice=True, count=None, pmin=None, pmax=None):
    """Faceted nanoparticles that move, rotate and sinter: (thickness in [0,1], columns)."""
    size = min(h, w)
    count = count if count is not None else int(rng.integers(1, 5))
    pmin = pmin if pmin is not None else 0.08 * size
    pmax = pmax if pmax is not None else 0.3 * size
    t = np.arange(n, dtype=np.float32)[:, None, None]
    centres = rng.uniform(-0.4, 0.4, (count, 2)) * np.array([h, w])
    radii = rng.uniform(pmin, max(pmax, pmin + 1.0), count)
    sinter = count >= 2 and rng.random() < 0.6
    if sinter:  # put a pair close, moving towards each other (coalescence)
        d = radii[0] + radii[1] + rng.uniform(-0.2, 0.3) * radii[1]
        a = rng.uniform(0, 2 * np.pi)
        centres[1] = centres[0] + d * np.array([np.sin(a), np.cos(a)])
    dists, cols = [], []
    for p in range(count):
        v = rng.normal(0, 0.15, 2)
        if sinter and p < 2:
            other = centres[1 - p]
            u = (other - centres[p]) / (np.linalg.norm(other - centres[p]) + 1e-6)
            v = v + u * rng.uniform(0.05, 0.4)
        om = np.deg2rad(rng.normal(0, 0.3))
        th0 = rng.uniform(0, 2 * np.pi)
        cy = np.float32(centres[p, 0]) + np.float32(v[0]) * t
        cx = np.float32(centres[p, 1]) + np.float32(v[1]) * t
        th = np.float32(th0) + np.float32(om) * t
        py, px = ys - cy, xs - cx
        c, s = np.cos(th), np.sin(th)
        ly, lx = c * py + s * px, -s * py + c * px
        nf = int(rng.integers(5, 9))
        fa = np.sort(rng.uniform(0, 2 * np.pi, nf)) if rng.random() < 0.5 else \
            np.arange(nf) * 2 * np.pi / nf + rng.normal(0, 0.1, nf)
        fr = radii[p] * rng.uniform(0.85, 1.1, nf)
        grow = np.float32(rng.normal(0, 0.02))
        dist = None
        for a, r in zip(fa, fr):
            e = np.float32(r) + grow * t - (np.float32(np.cos(a)) * lx + np.float32(np.sin(a)) * ly)
            dist = e if dist is None else np.minimum(dist, e)
        dists.append(dist)
        if lattice:
            sp = rng.uniform(3.0, 10.0)
            cols.append(_lattice(rng, ly, lx, sp, rng.uniform(0, np.pi)))
    D = np.stack(dists)  # (count, n, h, w) signed distance, positive inside
    k = np.float32(rng.uniform(1.0, 4.0))  # neck radius of the sintering union
    m = D.max(0)
    union = m + k * np.log(np.exp((D - m) / k).sum(0))
    edge = np.float32(rng.uniform(0.5, 1.5))
    inside = _sigmoid(union / edge)
    # projected thickness grows towards the centre (rounded particles)
    thick = inside * np.clip(0.5 + union / np.float32(2 * radii.mean()), 0.5, 1.0)
    if lattice:
        wts = np.exp((D - m) / np.float32(1.0))
        wts /= wts.sum(0)
        columns = (wts * np.stack(cols)).sum(0)
    else:
        columns = np.zeros_like(thick)
    return thick, columns


def _fibres(rng, ys, xs, n, h, w):
    """Low-magnification fibres that bend over time: projected thickness in [0, 1]."""
    size = min(h, w)
    out = np.zeros_like(ys)
    t = np.arange(n, dtype=np.float32)[:, None, None]
    for _ in range(int(rng.integers(1, 4))):
        a = rng.uniform(0, np.pi)
        c, s = np.float32(np.cos(a)), np.float32(np.sin(a))
        off = np.float32(rng.uniform(-0.4, 0.4) * size)
        u = c * xs + s * ys
        v = -s * xs + c * ys - off
        length = rng.uniform(0.6, 2.0) * size
        bend = np.float32(rng.normal(0, 0.15)) * t + np.float32(rng.normal(0, 0.1 * size))
        centre = bend * np.sin(np.float32(np.pi / length) * u)
        half = np.float32(rng.uniform(2.0, 0.08 * size + 2.5))
        r = (v - centre) / half
        out = np.maximum(out, np.sqrt(np.clip(1 - r * r, 0, 1)))
    return out


def _ctf_blur(rng, img):
    """Contrast-transfer-like filter: Gaussian envelope times a weak oscillating transfer."""
    n, h, w = img.shape
    ky = np.fft.fftfreq(h).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    k2 = ky * ky + kx * kx
    sigma = rng.uniform(0.4, 1.5)  # px
    env = np.exp(-2 * np.pi**2 * sigma**2 * k2)
    alpha = rng.uniform(0.0, 0.4)
    k0 = rng.uniform(0.08, 0.3)
    transfer = env * ((1 - alpha) + alpha * np.cos(np.pi * k2 / (k0 * k0) + rng.uniform(0, np.pi)))
    transfer[0, 0] = 1.0
    spec = np.fft.rfft2(img, axes=(1, 2))
    return np.fft.irfft2(spec * transfer.astype(np.complex64), s=(h, w), axes=(1, 2)).astype(np.float32)


# ---------------------------------------------------------------- movies


def _scene(rng, kind, n, h, w):
    """Clean intensity (n, h, w), mean ~1, before blur and dose."""
    ys, xs = _motion(rng, n, h, w)
    haadf = rng.random() < 0.4  # STEM HAADF: bright atoms on dark; else bright-field TEM
    sign = 1.0 if haadf else -1.0
    support = _texture(rng, ys, xs, rng.uniform(1.5, 6.0), 0)
    if kind == "atomic":
        sp = rng.uniform(3.0, 12.0)
        lat1 = _lattice(rng, ys, xs, sp, rng.uniform(0, np.pi))
        cols = lat1
        thick = np.ones_like(ys)
        if rng.random() < 0.6:  # grain boundary, slowly migrating
            lat2 = _lattice(rng, ys, xs, sp * rng.uniform(0.8, 1.25), rng.uniform(0, np.pi))
            a = rng.uniform(0, 2 * np.pi)
            mig = np.float32(rng.normal(0, 0.1)) * np.arange(n, dtype=np.float32)[:, None, None]
            d = np.float32(np.cos(a)) * xs + np.float32(np.sin(a)) * ys - np.float32(rng.uniform(-0.3, 0.3) * min(h, w)) - mig
            wgt = _sigmoid(d / np.float32(rng.uniform(0.5, 2.0)))
            cols = wgt * lat2 + (1 - wgt) * lat1
        if rng.random() < 0.4:  # film edge: a surface to vacuum/support
            a = rng.uniform(0, 2 * np.pi)
            d = np.float32(np.cos(a)) * xs + np.float32(np.sin(a)) * ys - np.float32(rng.uniform(0, 0.4) * min(h, w))
            thick = _sigmoid(d)
        if rng.random() < 0.4:
            pt, pc = _particles(rng, ys, xs, n, h, w, count=int(rng.integers(1, 3)))
            thick = np.maximum(thick, pt)
            cols = cols * (1 - pt) + pc * pt
        contrast = rng.uniform(0.3, 0.9)
        sig = thick * (contrast * cols + rng.uniform(0.0, 0.5)) + rng.uniform(0.02, 0.15) * support
    elif kind == "nanoparticles":
        thick, cols = _particles(rng, ys, xs, n, h, w)
        contrast = rng.uniform(0.3, 0.9)
        sig = thick * (contrast * cols + rng.uniform(0.2, 0.8)) + rng.uniform(0.03, 0.2) * support
    else:  # lowmag
        fib = _fibres(rng, ys, xs, n, h, w) if rng.random() < 0.75 else np.zeros_like(ys)
        thick, _ = _particles(rng, ys, xs, n, h, w, lattice=False, count=int(rng.integers(1, 6)),
                              pmin=3.0, pmax=0.12 * min(h, w)) if rng.random() < 0.8 else (np.zeros_like(ys), None)
        sig = np.maximum(fib * rng.uniform(0.3, 0.9), thick * rng.uniform(0.3, 0.9))
        sig = sig + rng.uniform(0.03, 0.2) * support + 0.1 * sig * _texture(rng, ys, xs, rng.uniform(2, 8), 0)
    if haadf:
        img = rng.uniform(0.05, 0.3) + sig
    else:
        img = 1.0 + sign * sig * rng.uniform(0.5, 1.0)
    img = _ctf_blur(rng, img.astype(np.float32))
    img = np.maximum(img, np.float32(0.02))
    return img / img.mean()


def simulate_movie(n_frames: int, height: int, width: int, *, seed: int, dose: float | None = None,
                   kind: str = "mixed"):
    """A simulated movie: (clean float32 (n, h, w) expected detector counts, noisy uint16 counts).

    `dose` is the mean electron count per pixel per frame (None: log-uniform in 0.5..300).
    `kind` is "atomic", "nanoparticles", "lowmag" or "mixed" (one of them, by seed).
    The same arguments always give the same movie.
    """
    if n_frames < 1 or height < 1 or width < 1:
        raise ValueError(f"need a positive movie shape, got {(n_frames, height, width)}")
    rng = np.random.default_rng(seed)
    if kind == "mixed":
        kind = KINDS[int(rng.choice(3, p=[0.4, 0.4, 0.2]))]
    elif kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {KINDS + ('mixed',)}")
    if dose is None:
        dose = float(np.exp(rng.uniform(np.log(DOSE_RANGE[0]), np.log(DOSE_RANGE[1]))))
    if dose <= 0:
        raise ValueError(f"dose must be positive, got {dose}")
    img = _scene(rng, kind, n_frames, height, width)
    electrons = img * np.float32(dose)
    counting = dose < 5 or rng.random() < 0.3  # electron counting: unit gain, no read noise
    gain = 1.0 if counting else float(rng.uniform(0.7, 2.0))
    read = 0.0 if counting else float(rng.uniform(0.1, 1.0))
    clean = (electrons * np.float32(gain)).astype(np.float32)
    if dose >= 50:  # Poisson is Gaussian to well within the read noise here, and 5x faster
        noisy = electrons + np.sqrt(electrons) * rng.standard_normal(electrons.shape, dtype=np.float32)
    else:
        noisy = rng.poisson(electrons).astype(np.float32)
    noisy *= np.float32(gain)
    if read > 0:
        noisy += rng.normal(0, read, noisy.shape).astype(np.float32)
    noisy = np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)
    return clean, noisy


def sample_movie():
    """The built-in sample: 40 frames of 256x256 nanoparticles on support at dose 30 (fixed)."""
    return simulate_movie(40, 256, 256, seed=SAMPLE_SEED, dose=30.0, kind="nanoparticles")
