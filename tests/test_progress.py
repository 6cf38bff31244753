"""Progress advances within a group as its tiles are decoded, not once per group
(issue 16, item 13): a 4k group takes minutes."""

import numpy as np
import torch

from emcodec import api
from emcodec.decoders.base import Decoder, decode_group, tile_starts


class _Mean(Decoder):
    """Each frame the normalised measurement over the mask count: instant, for counting calls."""

    name = "mean"

    def decode_tile(self, y, masks):
        return (y / masks.sum(1).clamp(min=1))[:, None].expand(masks.shape).contiguous()


def test_decode_group_reports_each_batch_of_tiles():
    seen = []
    y = np.random.default_rng(0).poisson(40, (100, 70)).astype(np.float64)
    decode_group(_Mean(), y, 4, 0, tile=32, overlap=8, batch=3, progress=seen.append)
    tiles = len(tile_starts(100, 32, 8)[0]) * len(tile_starts(70, 32, 8)[0])
    assert len(seen) == -(-tiles // 3) and seen == sorted(seen) and seen[-1] == 1.0


def test_progress_moves_within_a_group_and_counts_the_frames_asked_for(tmp_path):
    # frames of 1000 x 40 px: five 256-px tiles, two batches of four, per group of B = 4
    x = np.random.default_rng(1).poisson(30, (12, 1000, 40)).astype(np.uint16)
    api.compress(x, tmp_path / "m.tcs", B=4)
    torch.set_num_threads(1)
    for frames, total in ((None, 12), ("2:9", 7)):
        calls = []
        api.decompress(tmp_path / "m.tcs", tmp_path / "d.tif", method="gap-tv", frames=frames, force=True,
                       threads=1, progress=calls.append)
        assert sum(calls) == total and all(isinstance(n, int) and n > 0 for n in calls)
        groups = 3
        assert len(calls) > groups  # not once per group: within it, as its tile batches finish


def test_the_movie_decoder_moves_progress_within_a_group(tmp_path, monkeypatch):
    """The default decoder: each group's first pass (tile batches) and fit (tiles) report."""
    import emcodec.decoders.movie as movie

    monkeypatch.setattr(movie, "TILE", 32)  # the fit in tiles too
    x = np.random.default_rng(2).poisson(30, (12, 300, 40)).astype(np.uint16)
    api.compress(x, tmp_path / "m.tcs", B=4)
    torch.set_num_threads(1)
    for frames, total in ((None, 12), ("2:9", 7)):
        calls = []
        api.decompress(tmp_path / "m.tcs", tmp_path / "d.tif", frames=frames, force=True, threads=1,
                       progress=calls.append)
        assert sum(calls) == total and all(isinstance(n, int) and n > 0 for n in calls)
        assert len(calls) > 3
