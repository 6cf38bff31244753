"""The masked sum: exact against Eq. 1 on every path (threads, 16-bit fast path, padding)."""

import numpy as np
import pytest

from emcodec.encoder import ACCUMULATORS, GroupEncoder, check_B, pad_group
from emcodec.errors import EmcodecError
from emcodec.masks import make_masks


@pytest.mark.parametrize("dtype,high", [("uint16", 100), ("uint16", 65535), ("uint8", 255), ("int16", 3000),
                                        ("int8", 100), ("uint32", 2**32 - 1), ("int32", 2**31 - 1), ("float32", 1.0)])
@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("n", [10, 7, 1])
def test_measurement_is_the_masked_sum(dtype, high, threads, n, monkeypatch):
    monkeypatch.setattr(GroupEncoder, "BAND_PIXELS", 1000)  # many bands: band edges exercised
    rng = np.random.default_rng(1)
    x = (rng.random((n, 90, 130)) * high).astype(dtype)
    enc = GroupEncoder(10, 5, 90, 130, dtype, threads=threads)
    assert len(enc._bands) == 13  # 7 rows each
    y, lo, hi = enc.encode(x)
    expected = (pad_group(x, 10).astype(np.float64) * make_masks(5, 10, 0, 0, 90, 130)).sum(axis=0)
    # the 16-bit fast path keeps small uint16 sums in 16 bits; everything else is wide enough for B = 64
    narrow = dtype == "uint16" and high * 10 < 65536 and threads == 1
    assert y.dtype == (np.uint16 if narrow else ACCUMULATORS[dtype])
    np.testing.assert_allclose(y.astype(np.float64), expected, rtol=1e-6)
    assert (lo, hi) == (float(x.min()), float(x.max()))
    enc.close()


def test_sum_of_64_full_scale_frames_does_not_overflow():
    x = np.full((64, 4, 4), 65535, dtype=np.uint16)
    y, _, _ = GroupEncoder(64, 0, 4, 4, "uint16").encode(x)
    np.testing.assert_array_equal(y, make_masks(0, 64, 0, 0, 4, 4).sum(0) * 65535)


def test_B_range():
    for bad in (1, 65):
        with pytest.raises(EmcodecError):
            check_B(bad)
    assert check_B(2) == 2 and check_B(64) == 64


def test_bit_packed_masks_and_page_release(monkeypatch):
    monkeypatch.setattr(GroupEncoder, "MAX_MASK_BYTES", 100)  # force the bit-packed path
    monkeypatch.setattr(GroupEncoder, "RELEASE_BAND_BYTES", 100)  # and per-band page release
    released = []
    x = np.random.default_rng(2).integers(0, 1000, (6, 33, 70)).astype(np.uint16)
    enc = GroupEncoder(8, 9, 33, 70, "uint16", threads=1, release=released.append)
    assert enc._packed and enc.masks.dtype == np.uint8
    y, _, _ = enc.encode(x)
    expected = (pad_group(x, 8).astype(np.int64) * make_masks(9, 8, 0, 0, 33, 70)).sum(axis=0)
    np.testing.assert_array_equal(y, expected)
    # every row of every frame was handed back once it had been summed
    assert sum(r.shape[0] for r in released) == 6 * 33


def test_small_groups_leave_page_release_to_the_reader():
    released = []
    enc = GroupEncoder(4, 1, 16, 16, "uint16", release=released.append)
    enc.encode(np.ones((4, 16, 16), np.uint16))
    assert released == []


def test_16_bit_sums_widen_when_a_later_band_needs_it(monkeypatch):
    monkeypatch.setattr(GroupEncoder, "BAND_PIXELS", 64)  # one row per band
    x = np.full((10, 8, 64), 3, dtype=np.uint16)
    x[:, 6] = 60000  # only the 7th band overflows 16 bits
    enc = GroupEncoder(10, 3, 8, 64, "uint16")
    y, lo, hi = enc.encode(x)
    expected = (x.astype(np.int64) * make_masks(3, 10, 0, 0, 8, 64)).sum(axis=0)
    assert y.dtype == np.uint32 and (lo, hi) == (3, 60000)
    np.testing.assert_array_equal(y, expected)
    y_small, _, _ = enc.encode(np.full((10, 8, 64), 3, dtype=np.uint16))
    assert y_small.dtype == np.uint16
