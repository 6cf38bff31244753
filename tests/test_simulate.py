"""The simulator: seeded, right shapes and dtypes, dose in counts, motion between frames;
the yardstick movies: true flow that warps one frame onto another, events where they are said to be."""

import time

import numpy as np
import pytest

from emcodec.simulate import (KINDS, MOTIONS, SCENE_KINDS, sample_movie, simulate_events_movie,
                              simulate_motion_movie, simulate_movie)


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


# ---------------------------------------------------------------- yardstick movies


def bilinear(frame, ys, xs):
    """frame sampled at (ys, xs) (row, col), bilinear; coordinates must lie inside."""
    y0 = np.floor(ys).astype(int)
    x0 = np.floor(xs).astype(int)
    wy, wx = ys - y0, xs - x0
    f = frame.astype(np.float64)
    return ((1 - wy) * ((1 - wx) * f[y0, x0] + wx * f[y0, x0 + 1])
            + wy * ((1 - wx) * f[y0 + 1, x0] + wx * f[y0 + 1, x0 + 1]))


def warp_error(clean, flow, a, b, margin=4):
    """Mean |clean[b](p + flow(p)) - clean[a](p)| over the p whose target stays inside."""
    h, w = clean.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    ys, xs = yy + flow[0], xx + flow[1]
    ok = (ys >= margin) & (ys <= h - 1 - margin) & (xs >= margin) & (xs <= w - 1 - margin)
    ok &= (yy >= margin) & (yy < h - margin) & (xx >= margin) & (xx < w - margin)
    warped = bilinear(clean[b], np.where(ok, ys, margin), np.where(ok, xs, margin))
    return np.abs(warped - clean[a])[ok].mean(), ok.mean()


@pytest.mark.parametrize("motion", MOTIONS)
@pytest.mark.parametrize("kind", SCENE_KINDS)
def test_motion_movie_shapes_noise_and_determinism(motion, kind):
    clean, noisy, truth = simulate_motion_movie(12, 48, 56, seed=5, dose=100, motion=motion, kind=kind)
    assert clean.shape == noisy.shape == (12, 48, 56)
    assert clean.dtype == np.float32 and noisy.dtype == np.uint16 and clean.min() > 0
    assert abs(clean.mean() - 100) < 0.01 and abs(noisy.mean() - 100) < 1
    resid_var = np.var(noisy.astype(np.float64) - clean)  # Poisson at unit gain: variance = mean
    assert 0.9 * 100 < resid_var < 1.1 * 100 + 0.1
    assert clean.std() / clean.mean() > 0.05  # textured: motion must show
    again = simulate_motion_movie(12, 48, 56, seed=5, dose=100, motion=motion, kind=kind)
    assert np.array_equal(clean, again[0]) and np.array_equal(noisy, again[1])
    assert truth == again[2]
    assert not np.array_equal(clean, simulate_motion_movie(12, 48, 56, seed=6, dose=100, motion=motion,
                                                           kind=kind)[0])
    assert truth.flow(3, 7).shape == (2, 48, 56) and truth.flow(3, 7).dtype == np.float32
    assert np.abs(truth.flow(4, 4)).max() < 1e-3


def test_drift_flow_is_the_velocity():
    for seed in range(5):
        _, _, truth = simulate_motion_movie(2, 32, 32, seed=seed, dose=10, motion="drift")
        speed = np.hypot(*truth.velocity)
        assert 0.3 <= speed <= 1.0
        flow = truth.flow(2, 9)
        assert np.allclose(flow[0], 7 * truth.velocity[0], atol=1e-4)
        assert np.allclose(flow[1], 7 * truth.velocity[1], atol=1e-4)


def test_deformation_is_non_rigid_and_a_few_px():
    _, _, truth = simulate_motion_movie(2, 128, 128, seed=0, dose=10, motion="deformation")
    bend = truth.flow(0, 60) - 60 * np.array(truth.velocity, dtype=np.float32)[:, None, None]
    assert 2.5 < np.abs(bend).max() < 7  # 3-6 px over 60 frames
    assert bend.std(axis=(1, 2)).min() > 1  # not a translation
    assert 0.7 * 128 < truth.period < 1.3 * 128
    # flow(b, a) undoes flow(a, b): p -> q -> p
    fwd, back = truth.flow(10, 50), truth.flow(50, 10)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float64)
    inside = ((yy + fwd[0] > 0) & (yy + fwd[0] < 126) & (xx + fwd[1] > 0) & (xx + fwd[1] < 126))
    ret_y = yy + fwd[0] + bilinear(back[0], np.clip(yy + fwd[0], 0, 126), np.clip(xx + fwd[1], 0, 126))
    ret_x = xx + fwd[1] + bilinear(back[1], np.clip(yy + fwd[0], 0, 126), np.clip(xx + fwd[1], 0, 126))
    assert np.abs(ret_y - yy)[inside].max() < 0.05 and np.abs(ret_x - xx)[inside].max() < 0.05


@pytest.mark.parametrize("motion", MOTIONS)
def test_true_flow_warps_frame_b_onto_frame_a(motion):
    clean, _, truth = simulate_motion_movie(40, 96, 96, seed=2, dose=100, motion=motion)
    for a, b in [(0, 5), (3, 20), (30, 12), (0, 39)]:
        flow = truth.flow(a, b)
        err, used = warp_error(clean, flow, a, b)
        still, _ = warp_error(clean, np.zeros_like(flow), a, b)
        wrong, _ = warp_error(clean, -flow, a, b)
        assert used > 0.3
        # ~0.02-0.06 of either; a drift-only flow on the deformation movie scores 0.18-0.73
        assert err < 0.1 * still and err < 0.1 * wrong, (a, b, err, still, wrong)
        assert err < 0.01 * clean.mean()


def test_events_movie_layout_and_timing():
    B = 8
    clean, noisy, events = simulate_events_movie(60, 128, 128, B=B, seed=3, dose=100)
    assert clean.shape == noisy.shape == (60, 128, 128) and noisy.dtype == np.uint16
    kinds = [(e["kind"], e["timing"]) for e in events]
    assert kinds == [("appear", "group_start"), ("appear", "mid_group"), ("appear", "group_end"),
                     ("disappear", "mid_group"), ("jump", "mid_group"), ("blank", "mid_group")]
    g = events[0]["frame"] // B
    assert 0 < g and events[0]["frame"] == B * g
    assert events[1]["frame"] == B * g + B // 2 and events[2]["frame"] == B * g + B - 1
    assert all(e["frame"] == B * g + B // 2 for e in events[3:5])
    blank = events[5]
    assert blank["frame"] % B == B // 2 and blank["end"] - blank["frame"] == 3
    assert blank["frame"] >= events[1]["frame"] + 2 * B  # no event window sees the blank
    spots = [e["mask"] for e in events[:4]] + [events[4]["mask_before"], events[4]["mask_after"]]
    assert np.array_equal(events[4]["mask"], spots[4] | spots[5])
    assert np.hypot(*np.subtract(events[4]["centre_after"], events[4]["centre_before"])) == 20
    ring = np.ones((128, 128), bool)
    ring[12:-12, 12:-12] = False
    for i, m in enumerate(spots):
        assert 150 < m.sum() < 400 and not (m & ring).any()  # radius ~6 px + blur, well inside
        for other in spots[i + 1:5]:  # the jump's two positions are 20 px apart: they touch
            ys, xs = np.nonzero(m)
            oy, ox = np.nonzero(other)
            gap = np.hypot(ys[:, None] - oy[None], xs[:, None] - ox[None]).min()
            assert gap > 8  # room for a background ring between them
    assert {e["sign"] for e in events} <= {-1, 1}


@pytest.mark.parametrize("dose", [10.0, 100.0])
def test_event_masks_are_where_the_clean_movie_changes(dose):
    B = 10
    clean, noisy, events = simulate_events_movie(70, 128, 128, B=B, seed=4, dose=dose)
    blank = events[-1]
    dark = range(blank["frame"], blank["end"])
    lit = np.ones(len(clean), bool)
    lit[list(dark)] = False
    assert np.all(clean[~lit] == 0) and noisy[~lit].mean() < 0.5  # read noise only
    assert abs(noisy[lit].mean() - clean[lit].mean()) < 0.02 * dose
    assert 0.8 * dose < clean[lit].mean() < 1.2 * dose
    spots = [e for e in events if e["kind"] != "blank"]
    for t in range(1, len(clean)):
        if not (lit[t] and lit[t - 1]):
            continue
        change = np.abs(clean[t] - clean[t - 1])
        here = [e for e in spots if e["frame"] == t]
        if not here:
            assert change.max() == 0  # static scene: nothing else changes
            continue
        union = np.any([e["mask"] for e in here], axis=0)
        assert change[~union].sum() < 0.01 * change.sum()
        for e in here:
            m = e["mask"]
            local = clean[t - 1][m].mean()
            assert 0.2 < change[m].max() / local < 0.45  # a 30 % cluster
            if e["kind"] == "jump":  # both positions change
                assert change[e["mask_before"]].max() > 0.2 * local
                assert change[e["mask_after"]].max() > 0.2 * local
        # the sign: brighter after an appearance of a +1 cluster, darker after it disappears
        for e in here:
            m = e.get("mask_after", e["mask"])
            delta = (clean[t] - clean[t - 1])[m].sum()
            expect = -e["sign"] if e["kind"] == "disappear" else e["sign"]
            assert np.sign(delta) == expect


def test_yardstick_movies_bad_arguments():
    with pytest.raises(ValueError):
        simulate_motion_movie(4, 32, 32, seed=1, dose=10, motion="spin")
    with pytest.raises(ValueError):
        simulate_motion_movie(4, 32, 32, seed=1, dose=10, kind="lowmag")
    with pytest.raises(ValueError):
        simulate_motion_movie(4, 32, 32, seed=1, dose=0)
    with pytest.raises(ValueError):
        simulate_events_movie(20, 128, 128, B=8, seed=1, dose=10)  # too few frames
    with pytest.raises(ValueError):
        simulate_events_movie(60, 64, 64, B=8, seed=1, dose=10)  # too small
    with pytest.raises(ValueError):
        simulate_events_movie(60, 128, 128, B=1, seed=1, dose=10)
