"""Scene cuts inside a group: found by the encoder, stored in parts, decoded without blending."""

import json

import numpy as np
import pytest
import tifffile

from emcodec.coherence import CutDetector, split
from emcodec.metrics import psnr_frames
from emcodec.simulate import simulate_movie


def groups_of(movie, B):
    return [movie[s : s + B] for s in range(0, len(movie), B)]


@pytest.mark.parametrize("seed", [2000000101, 2000000102, 2000000103])
@pytest.mark.parametrize("dose", [1.0, 30.0, 200.0])
def test_no_cut_in_a_continuous_movie(seed, dose):
    _, noisy = simulate_movie(40, 96, 96, seed=seed, dose=dose)
    detector = CutDetector(96, 96)
    assert [detector.cuts(g) for g in groups_of(noisy, 10)] == [[]] * 4


def two_scenes(cut, n=30, size=64, dose=30.0):
    clean_a, noisy_a = simulate_movie(n, size, size, seed=2000000201, dose=dose, kind="nanoparticles")
    clean_b, noisy_b = simulate_movie(n, size, size, seed=2000000202, dose=dose, kind="atomic")
    join = lambda a, b: np.concatenate([a[:cut], b[cut:]])  # noqa: E731
    return join(clean_a, clean_b), join(noisy_a, noisy_b)


def test_a_cut_and_a_blanked_beam_are_found_where_they_are():
    _, movie = two_scenes(15)
    detector = CutDetector(64, 64)
    assert [detector.cuts(g) for g in groups_of(movie, 10)] == [[], [5], []]
    blanked = movie.copy()
    blanked[23:26] = np.random.default_rng(0).poisson(0.2, blanked[23:26].shape)
    detector = CutDetector(64, 64)
    assert [detector.cuts(g) for g in groups_of(blanked, 10)] == [[], [5], [3, 6]]
    # B = 2: one pair per group, judged against the pairs of earlier groups
    detector = CutDetector(64, 64)
    found = [k + 2 * i for i, g in enumerate(groups_of(movie[:20], 2)) for k in detector.cuts(g)]
    assert found == [15]  # group 7 holds frames 14 and 15, the last of scene A and the first of B
    assert split(10, [3, 6]) == [(0, 3), (3, 3), (6, 4)]


def test_frames_after_a_cut_decode_like_ordinary_frames(tmp_path):
    # Scene A for frames 0-14, scene B from 15: the cut is inside group 1 (frames 10-19).
    from emcodec.codec import compress, decompress, info

    clean, noisy = two_scenes(15)
    src = tmp_path / "cut.tif"
    tifffile.imwrite(src, noisy)
    scores = {}
    for split_cuts in (True, False):
        tcs = tmp_path / f"cut-{split_cuts}.tcs"
        compress(src, tcs, B=10, split_cuts=split_cuts)
        out = decompress(tcs, tmp_path / f"cut-{split_cuts}.tif", method="tcsdl", device="cpu", threads=1)
        p = psnr_frames(clean, tifffile.imread(out).astype(np.float64))
        scores[split_cuts] = (p[15:20].mean(), p[20:30].mean(), p[10:15].mean(), p[0:10].mean())
        facts = info(tcs)
        assert facts["split_groups"] == (1 if split_cuts else 0)
        assert facts["scene_cuts_at"] == ([15] if split_cuts else [])
        sidecar = json.loads(out.with_name(out.name + ".emcodec.json").read_text())
        assert sidecar["groups"][1].get("split_at") == ([15] if split_cuts else None)
    after, ordinary_b, before, ordinary_a = scores[True]
    assert after > ordinary_b - 3.0 and before > ordinary_a - 3.0, scores
    # without the split both scenes blend in group 1: the test above would fail
    after, ordinary_b, before, ordinary_a = scores[False]
    assert after < ordinary_b - 3.0 or before < ordinary_a - 3.0, scores
