"""The simulator: seeded, right shapes and dtypes, dose in counts, motion between frames."""

import time

import numpy as np
import pytest

from emcodec.simulate import KINDS, sample_movie, simulate_movie


@pytest.mark.parametrize("kind", KINDS + ("mixed",))
def test_shapes_dtypes_and_determinism(kind):
    clean, noisy = simulate_movie(6, 40, 52, seed=123, kind=kind)
    assert clean.shape == noisy.shape == (6, 40, 52)
    assert clean.dtype == np.float32 and noisy.dtype == np.uint16
    assert np.isfinite(clean).all() and clean.min() > 0
    clean2, noisy2 = simulate_movie(6, 40, 52, seed=123, kind=kind)
    assert np.array_equal(clean, clean2) and np.array_equal(noisy, noisy2)
    clean3, _ = simulate_movie(6, 40, 52, seed=124, kind=kind)
    assert not np.array_equal(clean, clean3)


@pytest.mark.parametrize("dose", [0.5, 3.0, 30.0, 300.0])
def test_dose_scaling(dose):
    clean, noisy = simulate_movie(4, 64, 64, seed=7, dose=dose)
    gain = clean.mean() / dose  # clean is in detector units: dose x gain
    assert 0.69 < gain < 2.01
    assert abs(noisy.mean() - clean.mean()) < 0.1 * clean.mean() + 0.2
    # the noise is Poisson-like: its variance grows with the signal
    resid_var = np.var(noisy.astype(np.float64) - clean)
    assert 0.5 * clean.mean() * gain < resid_var < 2.0 * clean.mean() * gain + 1.5


def test_random_dose_in_range():
    means = [simulate_movie(2, 16, 16, seed=s)[0].mean() for s in range(30)]
    assert min(means) < 10 and max(means) > 30


def test_motion_present():
    moved = 0
    for seed in range(8):
        clean, _ = simulate_movie(8, 64, 64, seed=seed)
        d = np.abs(clean[-1] - clean[0]).mean() / clean.mean()
        moved += d > 0.01
    assert moved >= 6


def test_training_clip_is_fast():
    simulate_movie(16, 128, 128, seed=0)
    t = time.perf_counter()
    for s in range(5):
        simulate_movie(16, 128, 128, seed=s)
    assert (time.perf_counter() - t) / 5 < 0.3  # ~40 ms alone on a 2-core machine; loose for busy CI


def test_sample_movie_fixed():
    clean, noisy = sample_movie()
    assert clean.shape == noisy.shape == (40, 256, 256) and noisy.dtype == np.uint16
    assert 20 < noisy.mean() < 50
    assert np.array_equal(sample_movie()[1][:2], noisy[:2])


def test_bad_arguments():
    with pytest.raises(ValueError):
        simulate_movie(0, 8, 8, seed=1)
    with pytest.raises(ValueError):
        simulate_movie(2, 8, 8, seed=1, kind="nope")
