"""The shipped TCS-DL weights: present, verified, and above a PSNR floor on a held-out movie.

The movie (tests/data/README.md) comes from a simulator seed the training never used, and
is coded here with a non-default mask seed: the weights must work with any masks. The
floors sit about 1 dB under what the weights measured when they were committed (see
docs/BENCHMARKS.md), and each B must also beat GAP-TV on the same measurement.
"""

from pathlib import Path

import numpy as np
import pytest
import tifffile

from emcodec.codec import compress, decompress
from emcodec.metrics import psnr
from emcodec.model import available_B, load_model

DATA = Path(__file__).parent / "data"
SEED = 424242  # not the default seed 0

# B -> (minimum PSNR in dB of TCS-DL against the noise-free frames, minimum margin over GAP-TV).
# Measured with the committed weights (.venv/bin/python, this file's movie and seed):
# B=10 23.10 dB, GAP-TV 21.95 (+1.15); B=20 22.82 dB, GAP-TV 21.56 (+1.26); B=30 22.66 dB, GAP-TV 22.11 (+0.55).
FLOORS = {10: (22.1, 0.6), 20: (21.8, 0.6), 30: (21.6, 0.0)}


def test_weights_for_10_20_30_are_shipped_and_verify():
    assert {10, 20, 30} <= set(available_B())
    for B in (10, 20, 30):
        model, entry = load_model(B)
        assert entry["B"] == B and len(entry["sha256"]) == 64
        assert Path(__file__).parents[1].joinpath("weights", entry["file"]).stat().st_size < 50e6
        assert model.B == B


@pytest.mark.parametrize("B", [10, 20, 30])
def test_shipped_weights_beat_the_floor_and_gap_tv(B, tmp_path):
    clean = tifffile.imread(DATA / "heldout-sim-clean.tif")
    tcs = tmp_path / "m.tcs"
    compress(DATA / "heldout-sim.tif", tcs, B=B, seed=SEED)
    scores = {}
    for method in ("tcsdl", "gap-tv"):
        out = tmp_path / f"{method}.tif"
        decompress(tcs, out, method=method, device="cpu")
        scores[method] = psnr(clean, tifffile.imread(out).astype(np.float64))
    floor, margin = FLOORS[B]
    assert scores["tcsdl"] >= floor, scores
    assert scores["tcsdl"] - scores["gap-tv"] >= margin, scores
