"""The measurement quantiser: it stabilises the noise, its table is exact, and it inverts well."""

import numpy as np
import pytest

from emcodec.quantize import Quantizer, auto_quantizer, estimate_noise


@pytest.mark.parametrize("gain, read_noise, offset", [(1.0, 0.0, 0.0), (2.5, 3.0, 0.0), (0.8, 1.5, 20.0)])
def test_transform_makes_the_noise_of_a_measurement_one(gain, read_noise, offset):
    # a measurement pixel sums n = 5 frames: variance gain * signal + n * read_noise^2
    rng = np.random.default_rng(0)
    q = Quantizer(step=1.0, gain=gain, offset=offset, read_noise=read_noise, frames=5.0)
    for electrons in (5.0, 40.0, 400.0, 4000.0):
        y = gain * rng.poisson(electrons, 200_000) + 5 * offset + rng.normal(0, read_noise * np.sqrt(5), 200_000)
        std = q.transform(np.rint(y)).std()
        assert 0.9 < std < 1.1, (electrons, std)


def test_lookup_table_equals_the_formula_across_rebuilds():
    q = Quantizer(step=0.7, gain=1.3, offset=10.0, read_noise=2.0, frames=10.0)
    cache = {}
    rng = np.random.default_rng(1)
    for lo, hi in [(0, 50), (-40, 30), (0, 5000), (100, 200_000), (-500, 10)]:  # grows, shifts
        y = rng.integers(lo, hi, (17, 23)).astype(np.int64)
        values, offset = q.quantize(y, cache)
        assert values.dtype.kind == "u" and values.dtype == np.min_scalar_type(int(values.max()))
        np.testing.assert_array_equal(values.astype(np.int64) + offset, q.codes_of(y))


@pytest.mark.parametrize("lo,hi,zero_based", [(100, 300, True), (10_000, 10_100, False), (0, 40, True)])
def test_table_from_zero_reads_the_measurement_itself(lo, hi, zero_based):
    """A table from Y = 0 (when that at most doubles it) takes Y as the index; else Y is shifted."""
    q = Quantizer(step=1.0, gain=2.0, frames=10.0)
    cache = {}
    y = np.random.default_rng(2).integers(lo, hi, (40, 64)).astype(np.uint16)
    values, offset = q.quantize(y, cache)
    assert (cache["lut"][0] == 0) == zero_based and ("index" in cache) != zero_based
    np.testing.assert_array_equal(values.astype(np.int64) + offset, q.codes_of(y))


def test_codes_are_monotone_and_low_counts_stay_exact():
    q = Quantizer(step=1.0, frames=5.0)
    y = np.arange(0, 100_000)
    codes = q.codes_of(y)
    assert np.all(np.diff(codes) >= 0)
    small = np.arange(0, 3)  # f' > 1 step per count here: every value its own code
    np.testing.assert_array_equal(q.dequantize(q.codes_of(small)), small)


def test_dequantize_is_the_mean_of_each_codes_integers():
    q = Quantizer(step=2.0, gain=1.7, offset=-3.0, read_noise=0.5, frames=15.0)
    y = np.arange(-200, 30_000)
    codes = q.codes_of(y)
    got = q.dequantize(codes)
    for c in np.unique(codes)[1:-1:37]:  # the end codes also hold integers outside y
        np.testing.assert_allclose(got[codes == c], y[codes == c].mean())


def test_quantisation_error_is_a_fraction_of_the_noise():
    # step s in noise units adds about s^2/12 of the noise variance, at every brightness;
    # the bin centres are not the conditional means of a peaked distribution: a small bias
    rng = np.random.default_rng(2)
    for step in (0.5, 1.0, 2.0):
        q = Quantizer(step=step, frames=5.0)
        for mean in (30, 3000):
            y = rng.poisson(mean, 100_000)
            err = q.dequantize(q.codes_of(y)) - y
            ratio = err.std() / np.sqrt(mean)
            assert ratio < 1.15 * step / np.sqrt(12) and abs(err.mean()) < 0.1 * np.sqrt(mean)


def drifting_movie(gain, read_noise, offset, n=10, size=128, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    frames = []
    for k in range(n):
        signal = 40 + 30 * np.sin((xx + 0.7 * k) / 9.0) * np.cos(yy / 13.0) + 0.2 * xx
        frames.append(gain * rng.poisson(signal) + offset + rng.normal(0, read_noise, signal.shape))
    return np.clip(np.rint(frames), 0, 65535).astype(np.uint16)


@pytest.mark.parametrize("gain, read_noise, offset", [(1.0, 0.0, 0.0), (3.0, 4.0, 0.0), (2.0, 1.0, 100.0)])
def test_noise_is_estimated_from_the_data(gain, read_noise, offset):
    model = estimate_noise(drifting_movie(gain, read_noise, offset))
    level = 40 * gain + offset
    true_var = gain * (level - offset) + read_noise**2
    est_var = model.gain * level + model.floor
    assert model.gain == pytest.approx(gain, rel=0.15)
    assert est_var == pytest.approx(true_var, rel=0.1)


def test_auto_quantizer_prefers_the_users_detector_and_skips_floats():
    x = drifting_movie(1.0, 0.0, 0.0)
    q = auto_quantizer(x, 10, 0.5, gain=2.0, offset=5.0)
    assert (q.gain, q.offset, q.read_noise, q.frames) == (2.0, 5.0, 0.0, 5.0)
    assert auto_quantizer(x.astype(np.float32), 10, 0.5) is None
    assert estimate_noise(np.full((4, 64, 64), 7, np.uint16)) is None  # flat: nothing to fit
    with pytest.raises(ValueError):
        Quantizer(step=0.0)


@pytest.mark.parametrize("block", [4, 3, 1])
def test_block_sums_equal_a_plain_reshape_sum(block):
    from emcodec.quantize import _block_sums

    a = np.random.default_rng(3).integers(0, 1000, (3, 8 * block, 5 * block)).astype(np.float32)
    expected = a.reshape(3, 8, block, 5, block).sum(axis=(2, 4), dtype=np.float64).ravel()
    np.testing.assert_array_equal(_block_sums(a, block), expected)


def test_measurements_too_wide_for_a_table_use_the_formula_both_ways():
    """32-bit counts: a table over every Y would not fit in memory (it ran out of it)."""
    from emcodec.quantize import MAX_TABLE

    q = Quantizer(step=1.0, gain=2e7, frames=5.0)
    y = np.random.default_rng(4).integers(0, 10**11, (30, 40), dtype=np.int64)
    assert int(y.max() - y.min()) >= MAX_TABLE
    cache = {}
    values, offset = q.quantize(y, cache)
    codes = values.astype(np.int64) + offset
    np.testing.assert_array_equal(codes, q.codes_of(y))
    assert "lut" not in cache
    back = q.dequantize(codes)
    np.testing.assert_array_equal(q.codes_of(np.rint(back).astype(np.int64)), codes)  # each centre in its code
