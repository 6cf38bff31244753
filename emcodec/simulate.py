"""Simulated in-situ TEM/STEM movies with known clean frames (numpy only).

The training set of the shipped TCS-DL weights and the source of the built-in sample movie.
Every movie is drawn from one seed: a scene (crystal film with grain boundaries, faceted
nanoparticles that drift, rotate and sinter, fibres and particles at low magnification, on an
amorphous support), a motion (stage drift, rotation, slow deformation), a contrast-transfer-like
blur, and detector noise (Poisson at a dose of ~0.5-300 counts/pixel/frame, gain, read noise).
Scenes are evaluated analytically at per-frame warped coordinates, vectorised over frames, so a
16-frame 128x128 training clip takes a few tens of milliseconds.
The yardstick movies of the temporal benchmark live here too: a static scene under a known
motion (with its true optical flow), and a static scene with events timed against the groups.
"""

from __future__ import annotations

from dataclasses import dataclass

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


# ---------------------------------------------------------------- yardstick movies
#
# Movies for the temporal benchmark (emcodec.bench.temporal): a static textured scene seen
# through a motion we know exactly, so the true optical flow can be handed back, or a static
# scene with events placed at chosen frames relative to the encoder's groups. Scenes are
# evaluated on a grid PAD px larger on every side and cropped after the blur, so the FFT blur
# never wraps content across the frame edge; the blur is a plain Gaussian (no CTF ringing),
# so an event's change stays inside its mask. Detector: electron counting, unit gain, Poisson.

MOTIONS = ("drift", "deformation")
SCENE_KINDS = ("nanoparticles", "atomic")
PAD = 8
EVENT_RADIUS = 6.0  # px
EVENT_CONTRAST = 0.3  # of the local mean intensity
JUMP = 20  # px
BLANK_FRAMES = 3


def _grid(h, w, pad):
    """Pixel coordinates (yy, xx) about the frame centre, float32 (h + 2 pad, w + 2 pad)."""
    return np.meshgrid(np.arange(-pad, h + pad, dtype=np.float32) - np.float32(h / 2),
                       np.arange(-pad, w + pad, dtype=np.float32) - np.float32(w / 2), indexing="ij")


def _gauss_blur(img, sigma):
    """Gaussian point spread over the last two axes: smooth, and no ringing outside events."""
    h, w = img.shape[-2:]
    ky = np.fft.fftfreq(h).astype(np.float32)[:, None]
    kx = np.fft.rfftfreq(w).astype(np.float32)[None, :]
    transfer = np.exp(np.float32(-2 * np.pi**2 * sigma**2) * (ky * ky + kx * kx))
    spec = np.fft.rfft2(img, axes=(-2, -1)) * transfer
    return np.fft.irfft2(spec, s=(h, w), axes=(-2, -1)).astype(np.float32)


def _static_scene(rng, kind, ys, xs, h, w):
    """A scene fixed in scene coordinates, sampled at (ys, xs): all change comes from the warp.

    Particles are drawn with one time step (n=1) so they neither move nor grow; the support
    is strong enough that there is texture everywhere for motion to show.
    """
    if kind not in SCENE_KINDS:
        raise ValueError(f"unknown kind {kind!r}; use one of {SCENE_KINDS}")
    size = min(h, w)
    support = _texture(rng, ys, xs, rng.uniform(1.5, 4.0), 0)
    if kind == "atomic":
        sig = rng.uniform(0.5, 1.0) * _lattice(rng, ys, xs, rng.uniform(5.0, 12.0), rng.uniform(0, np.pi))
    else:
        thick, cols = _particles(rng, ys, xs, 1, h, w, count=int(rng.integers(2, 5)),
                                 pmin=0.08 * size, pmax=0.2 * size)
        sig = thick * (rng.uniform(0.3, 0.7) * cols + rng.uniform(0.3, 0.6))
    sig = sig + np.float32(rng.uniform(0.2, 0.35)) * support
    haadf = rng.random() < 0.4
    img = np.float32(0.4) + sig if haadf else np.float32(1.3) - np.float32(0.7) * sig
    return img.astype(np.float32)


def _finish(img, sigma, pad):
    """Blur on the padded grid, crop, keep intensities positive."""
    out = _gauss_blur(img, sigma)[..., pad:img.shape[-2] - pad, pad:img.shape[-1] - pad]
    return np.maximum(out, np.float32(0.02))


def _count(rng, clean, read_noise=0.0):
    """Electron counting at unit gain: Poisson counts, optional Gaussian read noise, uint16."""
    noisy = rng.poisson(clean).astype(np.float32)
    if read_noise > 0:
        noisy += rng.normal(0, read_noise, noisy.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 65535).astype(np.uint16)


@dataclass(frozen=True)
class KnownMotion:
    """The true motion of a simulate_motion_movie: content drifts at `velocity` and is bent
    by a growing sinusoidal field, so frame t samples the scene at
    s_t(p) = p - velocity * t - t * rate * (sin(2 pi k1.p / period + phase1), sin(2 pi k2.p / period + phase2)).

    flow(a, b) is the true optical flow: float32 (2, h, w) = (dy, dx) such that the pixel p of
    frame a is found at p + flow[:, p] in frame b, i.e. clean[b][p + flow(p)] ~ clean[a][p].
    """

    motion: str
    height: int
    width: int
    velocity: tuple  # (vy, vx) px/frame
    rate: float = 0.0  # deformation amplitude growth, px/frame
    period: float = 1.0  # px
    k1: tuple = (0.0, 1.0)  # unit vector (ky, kx) of the dy field's wave
    k2: tuple = (1.0, 0.0)  # unit vector of the dx field's wave
    phase: tuple = (0.0, 0.0)

    def _bend(self, yy, xx):
        """The unit deformation field at (yy, xx): (gy, gx) in [-1, 1]."""
        c = np.float32(2 * np.pi / self.period)
        gy = np.sin(c * (np.float32(self.k1[0]) * yy + np.float32(self.k1[1]) * xx) + np.float32(self.phase[0]))
        gx = np.sin(c * (np.float32(self.k2[0]) * yy + np.float32(self.k2[1]) * xx) + np.float32(self.phase[1]))
        return gy, gx

    def sample_coords(self, t, yy, xx):
        """Scene coordinates (ys, xs) seen at pixels (yy, xx) of frames t (array, broadcast)."""
        t = np.asarray(t, dtype=np.float32)
        ys = yy - np.float32(self.velocity[0]) * t
        xs = xx - np.float32(self.velocity[1]) * t
        if self.rate:
            gy, gx = self._bend(yy, xx)
            ft = np.float32(self.rate) * t
            ys, xs = ys - ft * gy, xs - ft * gx
        return ys.astype(np.float32), xs.astype(np.float32)

    def flow(self, a: int, b: int, iterations: int = 40) -> np.ndarray:
        """True flow from frame a to frame b, float32 (2, h, w) (dy, dx), see the class doc.

        The scene point X = s_a(p) is where s_b(q) = X, i.e. q = X + v b + b rate g(q):
        a fixed point, found by iteration (a contraction while 2 pi rate b / period < 1).
        """
        yy, xx = _grid(self.height, self.width, 0)
        Y, X = self.sample_coords(a, yy, xx)
        vy, vx = np.float32(self.velocity[0] * b), np.float32(self.velocity[1] * b)
        qy, qx = Y + vy, X + vx
        if self.rate:
            fb = np.float32(self.rate * b)
            for _ in range(iterations):
                gy, gx = self._bend(qy, qx)
                ny, nx = Y + vy + fb * gy, X + vx + fb * gx
                done = max(float(np.abs(ny - qy).max()), float(np.abs(nx - qx).max())) < 1e-4
                qy, qx = ny, nx
                if done:
                    break
        return np.stack([qy - yy, qx - xx]).astype(np.float32)


def _draw_motion(rng, motion, h, w):
    """Seeded known motion: drift 0.3-1 px/frame; deformation grows by 3-6 px per 60 frames
    with a period of about the frame size."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown motion {motion!r}; use one of {MOTIONS}")
    speed = rng.uniform(0.3, 1.0)
    ang = rng.uniform(0, 2 * np.pi)
    velocity = (float(speed * np.sin(ang)), float(speed * np.cos(ang)))
    if motion == "drift":
        return KnownMotion(motion, h, w, velocity)
    a1, a2 = rng.uniform(0, 2 * np.pi, 2)
    return KnownMotion(motion, h, w, velocity, rate=float(rng.uniform(3.0, 6.0) / 60),
                       period=float(rng.uniform(0.8, 1.2) * max(h, w)),
                       k1=(float(np.sin(a1)), float(np.cos(a1))), k2=(float(np.sin(a2)), float(np.cos(a2))),
                       phase=tuple(float(p) for p in rng.uniform(0, 2 * np.pi, 2)))


def simulate_motion_movie(n_frames: int, height: int, width: int, *, seed: int, dose: float,
                          motion: str = "drift", kind: str = "nanoparticles"):
    """A movie whose motion is known exactly: (clean float32, noisy uint16, KnownMotion).

    A static textured scene (`kind` "nanoparticles" or "atomic", on amorphous support) seen
    through `motion` "drift" (constant velocity 0.3-1 px/frame, seeded direction) or
    "deformation" (that drift plus a smooth sinusoidal field growing 3-6 px per 60 frames,
    period ~ the frame size). The third value's .flow(a, b) is the true optical flow, so
    motion yardsticks need no estimator. Noise: electron counting at `dose` counts/px/frame,
    unit gain, Poisson. The same arguments always give the same movie.
    """
    if n_frames < 1 or height < 1 or width < 1:
        raise ValueError(f"need a positive movie shape, got {(n_frames, height, width)}")
    if dose <= 0:
        raise ValueError(f"dose must be positive, got {dose}")
    rng = np.random.default_rng(seed)
    truth = _draw_motion(rng, motion, height, width)
    yy, xx = _grid(height, width, PAD)
    t = np.arange(n_frames, dtype=np.float32)[:, None, None]
    ys, xs = truth.sample_coords(t, yy[None], xx[None])
    img = _finish(_static_scene(rng, kind, ys, xs, height, width), rng.uniform(0.6, 1.2), PAD)
    clean = (img * np.float32(dose / img.mean())).astype(np.float32)
    return clean, _count(rng, clean), truth


def _disc(yy, xx, centre, h, w):
    """A soft disc of EVENT_RADIUS at `centre` (row, col of the cropped frame), in [0, 1]."""
    r = np.hypot(yy - np.float32(centre[0] - h / 2), xx - np.float32(centre[1] - w / 2))
    return _sigmoid((np.float32(EVENT_RADIUS) - r) / np.float32(0.5))


def _event_layout(rng, h, w):
    """Event centres (row, col), seeded jitter of +-3 px: two rows, >= 30 px apart, well inside."""
    j = lambda: rng.integers(-3, 4, 2)  # noqa: E731
    top, bottom = 0.3 * h, 0.72 * h
    spots = {"group_start": (top, 0.2 * w), "mid_group": (top, 0.5 * w), "group_end": (top, 0.8 * w),
             "disappear": (bottom, 0.2 * w), "jump": (bottom, 0.55 * w)}
    return {k: tuple(int(round(c) + d) for c, d in zip(v, j())) for k, v in spots.items()}


def simulate_events_movie(n_frames: int, height: int, width: int, *, B: int, seed: int, dose: float,
                          kind: str = "nanoparticles", read_noise: float = 0.5):
    """A static scene with events timed against groups of B frames: (clean, noisy, events).

    Every event is a cluster of radius 6 px at +-30 % of the local mean intensity. With the
    events' group g (a group in the middle of the movie, g >= 1):
      appear at B*g (group_start), at B*g + B//2 (mid_group) and at B*g + B - 1 (group_end:
      the last frame of group g, so the new state straddles the boundary into group g+1);
      disappear at B*g + B//2; jump by 20 px along x at B*g + B//2;
      blank: frames B*(g+2) + B//2 .. +2 carry no beam (clean 0; counts are read noise only).
    Each event is a dict: kind ("appear", "disappear", "jump", "blank"), timing ("group_start",
    "mid_group", "group_end"), frame (the first frame of the new state), mask (bool (h, w): the
    region the event changes; for jump the union of mask_before and mask_after, also given;
    all True for blank), sign (the cluster's contrast: +1 brighter, -1 darker than its surroundings), centre (row, col) (centre_before and
    centre_after for jump), and for blank end (the first lit frame after it).
    Static scene, so outside the events consecutive clean frames are identical.
    """
    if B < 2:
        raise ValueError(f"B must be at least 2, got {B}")
    if height < 96 or width < 96:
        raise ValueError(f"events need a frame of at least 96x96, got {height}x{width}")
    groups = n_frames // B
    g = max(1, (groups - 3) // 2)
    blank = B * (g + 2) + B // 2
    if blank + BLANK_FRAMES > n_frames:
        raise ValueError(f"{n_frames} frames are too few for events with B={B}; "
                         f"need at least {3 * B + B // 2 + BLANK_FRAMES}")
    if dose <= 0:
        raise ValueError(f"dose must be positive, got {dose}")
    rng = np.random.default_rng(seed)
    h, w = height, width
    yy, xx = _grid(h, w, PAD)
    scene = _static_scene(rng, kind, yy[None], xx[None], h, w)[0]
    spots = _event_layout(rng, h, w)
    jumped = (spots["jump"][0], spots["jump"][1] + JUMP)
    centres = [spots["group_start"], spots["mid_group"], spots["group_end"], spots["disappear"],
               spots["jump"], jumped]
    stack = np.stack([scene] + [_disc(yy, xx, c, h, w) for c in centres])
    sigma = rng.uniform(0.6, 1.2)
    blurred = _gauss_blur(stack, sigma)[:, PAD:h + PAD, PAD:w + PAD]
    base = np.maximum(blurred[0], np.float32(0.02))
    base /= base.mean()
    discs = np.clip(blurred[1:], 0, 1)
    signs = rng.choice([-1, 1], 5)
    signs = np.append(signs, signs[-1])  # the jumping cluster keeps its sign
    amps = [s * EVENT_CONTRAST * float(base[d > 0.5].mean()) for s, d in zip(signs, discs)]
    mid = B * g + B // 2
    t = np.arange(n_frames)
    present = np.stack([t >= B * g, t >= mid, t >= B * g + B - 1, t < mid, t < mid, t >= mid], 1)
    clean = np.repeat(base[None], n_frames, axis=0)
    for i, (d, a) in enumerate(zip(discs, amps)):
        clean[present[:, i]] += np.float32(a) * d
    clean = np.maximum(clean, 0)
    clean[blank:blank + BLANK_FRAMES] = 0
    clean *= np.float32(dose)
    masks = [d >= 0.01 for d in discs]
    events = [
        {"kind": "appear", "timing": "group_start", "frame": B * g, "mask": masks[0], "sign": int(signs[0]),
         "centre": centres[0]},
        {"kind": "appear", "timing": "mid_group", "frame": mid, "mask": masks[1], "sign": int(signs[1]),
         "centre": centres[1]},
        {"kind": "appear", "timing": "group_end", "frame": B * g + B - 1, "mask": masks[2],
         "sign": int(signs[2]), "centre": centres[2]},
        {"kind": "disappear", "timing": "mid_group", "frame": mid, "mask": masks[3], "sign": int(signs[3]),
         "centre": centres[3]},
        {"kind": "jump", "timing": "mid_group", "frame": mid, "mask": masks[4] | masks[5],
         "mask_before": masks[4], "mask_after": masks[5], "sign": int(signs[4]),
         "centre_before": centres[4], "centre_after": centres[5]},
        {"kind": "blank", "timing": "mid_group", "frame": blank, "end": blank + BLANK_FRAMES,
         "mask": np.ones((h, w), bool), "sign": -1},
    ]
    return clean, _count(rng, clean, read_noise), events
