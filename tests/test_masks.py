"""Masks: published test vectors, vectorised == reference, tiles independent of the frame."""

import re
from pathlib import Path

import numpy as np
import pytest

from emcodec.masks import make_masks, mask_bit, splitmix64

FORMAT_MD = Path(__file__).resolve().parents[1] / "docs" / "format.md"


def published_vectors():
    rows = re.findall(r"^\| (\d+) \| (\d+) \| (\d+) \| (0x[0-9a-f]+) \| ([01]{16}) \|$", FORMAT_MD.read_text(), re.M)
    assert len(rows) >= 8
    return [(int(s), int(k), int(y), int(w, 16), bits) for s, k, y, w, bits in rows]


@pytest.mark.parametrize("seed,k,y,word,bits", published_vectors())
def test_published_vectors(seed, k, y, word, bits):
    counter = np.array([(k << 40) | (y << 20)], dtype=np.uint64)
    assert int(splitmix64(seed, counter)[0]) == word
    assert "".join(str(mask_bit(seed, k, y, x)) for x in range(16)) == bits
    tile = make_masks(seed, k + 1, y, 0, 1, 16)[k, 0]
    assert "".join(str(int(b)) for b in tile) == bits


def test_splitmix64_reference_first_output():
    # The first output of splitmix64 from state 0, as published with the algorithm.
    assert int(splitmix64(0, np.array([0], dtype=np.uint64))[0]) == 0xE220A8397B1DCDAF


def test_word_boundary_vector():
    assert "".join(str(mask_bit(0, 0, 0, x)) for x in range(60, 70)) == "0111001011"


@pytest.mark.parametrize("y0,x0,h,w", [(0, 0, 3, 5), (7, 61, 4, 9), (100, 127, 2, 130)])
def test_vectorised_matches_reference(y0, x0, h, w):
    m = make_masks(99, 3, y0, x0, h, w)
    ref = np.array([[[mask_bit(99, k, y, x) for x in range(x0, x0 + w)] for y in range(y0, y0 + h)] for k in range(3)])
    assert m.dtype == bool and m.shape == (3, h, w)
    np.testing.assert_array_equal(m, ref.astype(bool))


def test_tiles_equal_crops_of_the_full_frame():
    full = make_masks(5, 4, 0, 0, 70, 200)
    np.testing.assert_array_equal(make_masks(5, 4, 13, 77, 20, 90), full[:, 13:33, 77:167])


def test_density_and_independence():
    m = make_masks(123, 8, 0, 0, 256, 256).astype(np.float64)
    assert abs(m.mean() - 0.5) < 0.005
    # different frames and different seeds are uncorrelated
    corr = np.corrcoef(m.reshape(8, -1))
    assert np.abs(corr[~np.eye(8, dtype=bool)]).max() < 0.02
    other = make_masks(124, 1, 0, 0, 256, 256)[0]
    assert abs(np.mean(other == m[0].astype(bool)) - 0.5) < 0.01


def test_out_of_range_rejected():
    with pytest.raises(ValueError):
        make_masks(0, 0, 0, 0, 4, 4)
    with pytest.raises(ValueError):
        make_masks(0, 2, (1 << 20) - 1, 0, 2, 2)


def test_frames_can_be_made_one_at_a_time():
    full = make_masks(8, 5, 3, 60, 7, 9)
    for k in range(5):
        np.testing.assert_array_equal(make_masks(8, 1, 3, 60, 7, 9, first=k)[0], full[k])


def test_batches_of_hashes_give_the_same_masks(monkeypatch):
    from emcodec import masks

    whole = make_masks(3, 7, 5, 70, 9, 130)  # 3 words per row: all 7 frames in one batch
    monkeypatch.setattr(masks, "CHUNK_WORDS", 2 * 9 * 3 + 1)  # now 2 frames per batch, the last alone
    np.testing.assert_array_equal(make_masks(3, 7, 5, 70, 9, 130), whole)
    assert whole[6, 2, 11] == mask_bit(3, 6, 7, 81)
