"""Science yardsticks (emcodec/bench/science.py) on lattices with known answers.

A periodic square lattice of Gaussian columns (period 8 px in a 96x96 frame, so every
Bragg peak sits on an FFT bin) is shifted, blurred, scaled or made noisy by a known amount;
each measure must return that amount. Tiny movies: the file runs in a few seconds.
"""

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from emcodec.bench import science as sc

SIZE, PERIOD, FRAMES = 96, 8.0, 4


def lattice(shift=(0.0, 0.0), scale=1.0, frames=FRAMES, size=SIZE):
    """Columns exp(2 (cos + cos - 2)) on a square lattice, 100 counts high on 10; shifted by
    `shift` px (y, x) and with the period multiplied by `scale`."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    g = 2 * np.pi / (PERIOD * scale)
    img = np.exp(2.0 * (np.cos(g * (xx - shift[1])) + np.cos(g * (yy - shift[0])) - 2)) * 100 + 10
    return np.repeat(img[None], frames, axis=0)


@pytest.fixture(scope="module")
def ref():
    return lattice()


@pytest.fixture(scope="module")
def prep(ref):
    return sc.prepare(ref)


def test_peaks_are_the_lattice_harmonics(prep):
    peaks = prep["peaks"]
    assert len(peaks["freq"]) >= 6
    assert peaks["freq"][0] == pytest.approx(1 / PERIOD)  # the first order, |k| = 1/8 per px
    # every peak is a harmonic (h, k) / 8 of the square lattice
    f8 = peaks["freq"] * PERIOD
    assert np.allclose(np.round(f8 ** 2), f8 ** 2, atol=1e-6)


def test_identical_movie_keeps_every_peak_and_full_resolution(ref, prep):
    r = sc.science_report(ref, ref, prep)
    lat = r["lattice"]
    assert lat["all_kept"] and lat["kept_freq"] == pytest.approx(lat["max_freq"]) and lat["amplified"] == 0
    assert [p["cross_power"] for p in lat["per_peak"]] == pytest.approx([1.0] * lat["peaks"])
    assert r["frc"]["freq"] == pytest.approx(0.5)
    col = r["columns"]
    assert col["missed"] == 0 and col["invented"] == 0 and col["rms_displacement"] == pytest.approx(0, abs=1e-6)


def test_blur_loses_the_known_high_frequency_cross_power(ref, prep):
    sigma = 1.5
    blurred = np.stack([gaussian_filter(f, sigma, mode="wrap") for f in ref])
    lat = sc.lattice_fidelity(ref, blurred, prep["peaks"])
    expected = np.exp(-2 * np.pi ** 2 * sigma ** 2 * prep["peaks"]["freq"] ** 2)  # the Gaussian's transfer
    got = np.array([p["cross_power"] for p in lat["per_peak"]])
    assert np.allclose(got, expected, atol=0.02)
    # kept up to the last frequency where the transfer is still >= 0.8: none here (H(1/8) = 0.50)
    assert lat["kept_freq"] == 0.0
    mild = np.stack([gaussian_filter(f, 0.6, mode="wrap") for f in ref])
    lat = sc.lattice_fidelity(ref, mild, prep["peaks"])
    h = np.exp(-2 * np.pi ** 2 * 0.36 * prep["peaks"]["freq"] ** 2)
    assert lat["kept_freq"] == pytest.approx(prep["peaks"]["freq"][np.flatnonzero(h < 0.8)[0] - 1])


def test_added_noise_does_not_raise_the_cross_power(ref, prep):
    rng = np.random.default_rng(3)
    blurred = np.stack([gaussian_filter(f, 1.0, mode="wrap") for f in ref])
    clean = sc.lattice_fidelity(ref, blurred, prep["peaks"])
    noisy = sc.lattice_fidelity(ref, blurred + rng.normal(0, 20, ref.shape), prep["peaks"])
    a = np.array([p["cross_power"] for p in clean["per_peak"]])
    b = np.array([p["cross_power"] for p in noisy["per_peak"]])
    err = np.array([p["error"] for p in noisy["per_peak"]])
    assert np.all(b - a < 3 * err + 1e-3)  # within its own standard error, never systematically above
    w = 1 / err ** 2  # the error-weighted mean change is within three of its standard errors of none
    assert abs(np.sum(w * (b - a)) / np.sum(w)) < 3 / np.sqrt(np.sum(w))
    strong = err < 0.05
    assert strong.sum() >= 4 and np.allclose(b[strong], a[strong], atol=0.1)
    assert noisy["amplified"] == 0
    assert noisy["kept_freq"] <= clean["kept_freq"] + 1e-12


def test_shift_gives_the_known_phase_and_displacement(ref, prep):
    d = (0.5, 0.3)
    moved = lattice(shift=d)
    lat = sc.lattice_fidelity(ref, moved, prep["peaks"])
    ky = np.fft.fftfreq(SIZE)[prep["peaks"]["y"]]
    kx = np.fft.fftfreq(SIZE)[prep["peaks"]["x"]]
    expected = np.cos(2 * np.pi * (ky * d[0] + kx * d[1]))
    low = prep["peaks"]["freq"] < 0.36  # far out the window's leakage from strong peaks adds a few %
    assert low.sum() >= 10
    assert np.allclose(np.array([p["cross_power"] for p in lat["per_peak"]])[low], expected[low], atol=0.01)
    col = sc.column_fidelity(ref, moved, prep["columns"])
    assert col["rms_displacement"] == pytest.approx(np.hypot(*d), abs=0.02)
    assert col["missed"] == 0 and col["invented"] == 0
    assert col["spacing_error"] == pytest.approx(0, abs=1e-3)  # a rigid shift is no strain


def test_scaled_lattice_gives_the_known_spacing_error(ref, prep):
    col = sc.column_fidelity(ref, lattice(scale=1.02), prep["columns"])
    assert col["spacing_error"] == pytest.approx(0.02, abs=0.003)


def columns_image(centres, size=SIZE, sigma=1.2):
    """Gaussian columns 100 counts high on 10 at the given (y, x) centres."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    img = np.full((size, size), 10.0)
    for cy, cx in centres:
        img += 100 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    return np.repeat(img[None], 2, axis=0)


def test_missing_and_invented_columns_are_counted():
    grid = [(4.0 + 8 * i, 4.0 + 8 * j) for i in range(12) for j in range(12)]
    gone = {(44.0, 44.0), (44.0, 52.0), (52.0, 44.0), (60.0, 28.0)}
    extra = [(24.0, 72.0), (72.0, 24.0), (80.0, 80.0)]  # midway between columns
    ref = columns_image(grid)
    dec = columns_image([c for c in grid if c not in gone] + extra)
    params = sc.column_parameters(ref)
    assert params["resolved"] and params["spacing"] == pytest.approx(8.0, abs=0.1)
    col = sc.column_fidelity(ref, dec, params)
    per_frame = col["reference_columns"] / len(col["frames"])  # columns away from the border
    assert col["missed"] * per_frame == pytest.approx(4)
    assert col["invented"] * col["decoded_columns"] / len(col["frames"]) == pytest.approx(3)
    assert col["rms_displacement"] < 0.1 and col["intensity_error"] < 0.1  # only the extras' neighbours feel them


def test_gaussian_fit_recovers_a_subpixel_centre():
    yy, xx = np.mgrid[0:21, 0:21].astype(float)
    img = 5 + 50 * np.exp(-((yy - 10.3) ** 2 + (xx - 9.6) ** 2) / (2 * 1.4 ** 2))
    fit = sc.fit_gaussians(img, np.array([[10, 10]]), radius=4)
    assert fit["pos"][0] == pytest.approx([10.3, 9.6], abs=0.01)
    assert fit["sigma"][0] == pytest.approx(1.4, abs=0.01)


def test_matching_is_optimal_not_greedy():
    """Greedy nearest-first pairs ref 0 with dec 0 and leaves ref 1 unmatched; the optimal
    assignment matches both."""
    ref = np.array([[0.0, 0.0], [0.0, 1.0]])
    dec = np.array([[0.0, 0.55], [0.0, -0.5]])
    i, j = sc.match_columns(ref, dec, radius=0.6)
    assert sorted(zip(i.tolist(), j.tolist())) == [(0, 1), (1, 0)]
    i, j = sc.match_columns(ref, dec + 10, radius=0.6)
    assert len(i) == 0


def test_frc_falls_with_noise():
    rng = np.random.default_rng(0)
    a = lattice(frames=1)[0]
    freq, frc = sc.frc_curve(a, a)
    assert np.allclose(frc[1:][np.isfinite(frc[1:])], 1.0)
    noisy = sc.frc_resolution(a[None], (a + rng.normal(0, 30, a.shape))[None])
    assert noisy["freq"] < 0.5


def test_unresolved_reference_is_said_not_scored():
    flat = np.full((3, 48, 48), 7.0) + np.random.default_rng(1).normal(0, 1e-3, (3, 48, 48))
    params = sc.column_parameters(gaussian_filter(flat, (0, 6, 6)))
    assert not params["resolved"] and "columns" in params["reason"] or "maxima" in params["reason"]
    assert "note" in sc.column_fidelity(flat, flat, params)


def test_random_position_errors_are_not_read_as_strain():
    """Columns jittered by 0.6 px at random: displaced, but the lattice is not expanded."""
    rng = np.random.default_rng(4)
    grid = np.array([(4.0 + 8 * i, 4.0 + 8 * j) for i in range(12) for j in range(12)])
    ref = columns_image(grid)
    dec = columns_image(grid + rng.normal(0, 0.6, grid.shape))
    col = sc.column_fidelity(ref, dec, sc.column_parameters(ref))
    assert col["rms_displacement"] == pytest.approx(0.6 * np.sqrt(2), rel=0.2)
    assert abs(col["spacing_error"]) < 0.003  # neighbour distances would read about +1 % here


def test_amplified_peaks_are_flagged(ref, prep):
    """A decode with 1.5x the lattice contrast keeps every peak at 1.5: amplification, flagged."""
    lat = sc.lattice_fidelity(ref, 10 + 1.5 * (ref - 10), prep["peaks"])
    assert [p["cross_power"] for p in lat["per_peak"]] == pytest.approx([1.5] * lat["peaks"], abs=1e-6)
    assert lat["amplified"] == lat["peaks"] and lat["all_kept"]
    lat = sc.lattice_fidelity(ref, 10 + 1.05 * (ref - 10), prep["peaks"])
    assert lat["amplified"] == 0  # 1.05 is under the 1.1 flag


def test_a_pixel_size_gives_inverse_angstrom_and_angstrom(ref, prep):
    """With 2 Å per pixel: frequencies halve (1/Å), lengths double (Å)."""
    d = (0.5, 0.3)
    moved = lattice(shift=d)
    mild = np.stack([gaussian_filter(f, 0.6, mode="wrap") for f in moved])
    px = sc.science_report(ref, mild, prep)
    prep_a = sc.prepare(ref, pixel_size=2.0)
    a = sc.science_report(ref, mild, prep_a)
    assert (px["lattice"]["unit"], a["lattice"]["unit"], a["frc"]["unit"], a["columns"]["unit"]) == \
        ("1/px", "1/Å", "1/Å", "Å")
    assert px["lattice"]["kept_freq"] > 0
    assert a["lattice"]["kept_freq"] == pytest.approx(px["lattice"]["kept_freq"] / 2)
    assert a["frc"]["freq"] == pytest.approx(px["frc"]["freq"] / 2)
    assert a["columns"]["rms_displacement"] == pytest.approx(2 * px["columns"]["rms_displacement"])
    assert a["columns"]["spacing"] == pytest.approx(2 * PERIOD, abs=0.2)


def test_brighter_columns_give_the_known_intensity_error(ref, prep):
    """Columns 10 % brighter (same background) are found in place with a 10 % intensity error."""
    col = sc.column_fidelity(ref, 10 + 1.1 * (ref - 10), prep["columns"])
    assert col["intensity_error"] == pytest.approx(0.10, abs=0.005)
    assert col["missed"] == 0 and col["invented"] == 0 and col["rms_displacement"] < 1e-3
