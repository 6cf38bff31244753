"""Temporal yardsticks: each must tell a frame-exact movie from one that averages its groups."""

import subprocess
import sys

import numpy as np
import pytest

from emcodec.bench.temporal import (binning, binning_measurements, boundary_flicker, event_fidelity,
                                    motion_fidelity, sawtooth, temporal_report)
from emcodec.simulate import simulate_events_movie, simulate_motion_movie

B = 8


def group_average(movie, B):
    """Each whole group's mean frame repeated over the group (written here, not via binning)."""
    n = len(movie) // B * B
    means = movie[:n].astype(np.float64).reshape(-1, B, *movie.shape[1:]).mean(axis=1)
    return np.repeat(means, B, axis=0)


@pytest.fixture(scope="module")
def drifting():
    """40 frames drifting at 0.74 px/frame: a group of 8 spans ~6 px of motion."""
    clean, noisy, truth = simulate_motion_movie(40, 64, 64, seed=0, dose=100, motion="drift")
    assert np.hypot(*truth.velocity) > 0.6
    return clean, noisy


@pytest.fixture(scope="module")
def eventful():
    return simulate_events_movie(48, 128, 128, B=B, seed=2, dose=100)


def test_reference_scores_perfect(drifting):
    clean, _ = drifting
    assert sawtooth(clean, clean, B) == 0.0
    assert boundary_flicker(clean, clean, B) == pytest.approx(1.0)
    assert motion_fidelity(clean, clean) == pytest.approx({"slope": 1.0, "energy": 1.0})


def test_group_average_freezes_motion_and_flickers(drifting):
    clean, _ = drifting
    avg = group_average(clean, B)
    motion = motion_fidelity(clean, avg)
    assert motion["slope"] < 0.3 and motion["energy"] < 0.5
    assert boundary_flicker(clean, avg, B) > 2
    assert sawtooth(clean, avg, B) > 3  # the group's middle frames are nearest its average


def test_noise_keeps_motion_and_adds_no_flicker(drifting):
    clean, noisy = drifting
    motion = motion_fidelity(clean, noisy)
    assert motion["slope"] == pytest.approx(1.0, abs=0.03)
    assert motion["energy"] > 1.5  # noise adds change that is not motion
    assert boundary_flicker(clean, noisy, B) == pytest.approx(1.0, abs=0.1)


def test_motion_slope_and_energy_scale(drifting):
    clean, _ = drifting
    half = 0.5 * clean + 7.0
    assert motion_fidelity(clean, half) == pytest.approx({"slope": 0.5, "energy": 0.5})


def test_sawtooth_is_the_spread_over_positions_in_the_group(drifting):
    clean, _ = drifting
    n = 3 * B + 3  # 3 whole groups and a short one that must be ignored
    ref = clean[:n]
    offset = np.tile(np.arange(1, B + 1, dtype=np.float32), 4)[:n]  # error grows with position
    offset[3 * B:] = 1000.0
    dec = ref + offset[:, None, None]
    assert sawtooth(ref, dec, B) == pytest.approx(20 * np.log10(B), abs=1e-6)
    assert sawtooth(ref, ref + 1.0, B) == pytest.approx(0.0, abs=1e-4)  # float32 rounding


def test_flicker_sees_group_offsets_and_not_real_motion(drifting):
    clean, _ = drifting
    groups = np.arange(len(clean)) // B
    step = np.abs(np.diff(clean, axis=0)).mean()  # +-step: a jump of 2 steps every 8 frames
    jumpy = clean + np.where(groups % 2, step, -step)[:, None, None].astype(np.float32)
    assert boundary_flicker(clean, jumpy, B) > 1.5
    assert boundary_flicker(clean, clean + 5.0, B) == pytest.approx(1.0)
    # a reference whose own change sits at the boundaries: reproducing it is no flicker
    avg = group_average(clean, B)
    assert boundary_flicker(avg, avg, B) == pytest.approx(1.0)


def test_flicker_is_not_moved_by_single_events():
    """A static scene whose only changes are a beam blank inside a group and a particle that
    appears at a boundary: a decoder that keeps both, with a little noise, has no flicker."""
    rng = np.random.default_rng(0)
    ref = np.repeat(rng.random((1, 32, 32)).astype(np.float32) * 100, 40, axis=0)
    ref[19:22] = 0  # blank inside group 2 (frames 16-23)
    ref[24:, 10:16, 10:16] += 30  # appears at the boundary 23|24
    decoded = ref + rng.normal(0, 0.5, ref.shape).astype(np.float32)
    assert boundary_flicker(ref, decoded, B) == pytest.approx(1.0, abs=0.3)


def test_sawtooth_leaves_blank_frames_out(drifting):
    """A beam blank returned exactly would be a 200 dB frame at one position of the group."""
    clean, _ = drifting
    blanked = clean.copy()
    blanked[18:21] = 0
    decoded = blanked + np.random.default_rng(2).normal(0, 1.0, blanked.shape).astype(np.float32)
    decoded[18:21] = 0
    assert sawtooth(blanked, decoded, B) < 0.5


def test_psnr_leaves_blank_reference_frames_out():
    from emcodec.metrics import psnr

    rng = np.random.default_rng(1)
    ref = rng.random((6, 16, 16))
    ref[2] = 0.0  # the beam blanked
    exact_blank = ref + rng.normal(0, 0.01, ref.shape)
    exact_blank[2] = 0.0
    assert np.isfinite(psnr(ref, exact_blank))
    noisy_blank = exact_blank.copy()
    noisy_blank[2] = 0.5
    assert psnr(ref, noisy_blank) == pytest.approx(psnr(ref, exact_blank))


def expected_group_average(event, B):
    """kept, leak of an event under group averaging, window B//2 (the test's own arithmetic)."""
    timing, W = event["timing"], B // 2
    if event["kind"] == "blank":  # 3 dark frames of the B in the group
        return 3 / B, 3 / B
    if timing == "group_start":
        return 1.0, 0.0
    if timing == "mid_group":
        return 0.5, 0.5
    return (1 / B + (W - 1)) / W, 1 / B  # group_end: 1 of B frames in the group before


def test_events_of_the_reference_are_kept_without_leak(eventful):
    clean, _, events = eventful
    for e in events:
        assert event_fidelity(clean, clean, e, window=B // 2) == pytest.approx({"kept": 1.0, "leak": 0.0},
                                                                               abs=1e-6)


def test_group_average_smears_events_over_their_group(eventful):
    clean, _, events = eventful
    avg = group_average(clean, B)
    for e in events:
        kept, leak = expected_group_average(e, B)
        got = event_fidelity(clean, avg, e, window=B // 2)
        assert got == pytest.approx({"kept": kept, "leak": leak}, abs=0.01), (e["kind"], e["timing"])


def test_noisy_events_are_kept_within_the_noise(eventful):
    clean, noisy, events = eventful
    for e in events:
        got = event_fidelity(clean, noisy, e, window=B // 2)
        assert abs(got["kept"] - 1) < 0.2 and abs(got["leak"]) < 0.2, (e["kind"], got)


def test_disappearance_is_mirrored_and_jump_is_scored_at_its_new_place(eventful):
    clean, _, events = eventful
    disappear = next(e for e in events if e["kind"] == "disappear")
    jump = next(e for e in events if e["kind"] == "jump")
    appear = next(e for e in events if e["timing"] == "mid_group" and e["kind"] == "appear")
    f, W = disappear["frame"], B // 2
    late = clean.copy()
    late[f:f + W] = clean[f - 1]  # everything at this frame happens W frames late
    assert event_fidelity(clean, late, disappear, window=W) == pytest.approx({"kept": 1.0, "leak": 1.0})
    assert event_fidelity(clean, late, appear, window=W) == pytest.approx({"kept": 0.0, "leak": 0.0},
                                                                          abs=1e-6)
    assert event_fidelity(clean, late, jump, window=W) == pytest.approx({"kept": 0.0, "leak": 0.0},
                                                                        abs=1e-6)
    early = clean.copy()
    early[f - W:f] = clean[f]  # ... or W frames early
    assert event_fidelity(clean, early, jump, window=W) == pytest.approx({"kept": 1.0, "leak": 1.0})
    assert event_fidelity(clean, early, disappear, window=W) == pytest.approx({"kept": 0.0, "leak": 0.0},
                                                                              abs=1e-6)


def test_binning_is_the_group_mean():
    rng = np.random.default_rng(0)
    noisy = rng.poisson(20.0, (19, 6, 5)).astype(np.uint16)  # 2 groups of 8 and one of 3
    out = binning(noisy, B)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert np.allclose(out[:16], group_average(noisy, B))
    assert np.allclose(out[16:], noisy[16:].mean(axis=0))
    sums = binning_measurements(noisy, B)
    assert len(sums) == 3 and all(s.dtype == np.uint32 and s.shape == (6, 5) for s in sums)
    assert np.array_equal(sums[2], noisy[16:].sum(axis=0))
    assert np.allclose(out[0], sums[0] / 8) and np.allclose(out[18], sums[2] / 3)
    assert binning_measurements(noisy.astype(np.float32), B)[0].dtype == np.float32


def test_report_has_every_yardstick(drifting, eventful):
    clean, noisy = drifting
    report = temporal_report(clean, binning(noisy, B), B)
    assert {"sawtooth_db", "boundary_flicker", "motion_slope", "motion_energy"} <= set(report)
    assert "events" not in report and report["motion_slope"] < 0.3
    clean_e, _, events = eventful
    report = temporal_report(clean_e, binning(clean_e, B), B, events)
    assert {k: v["count"] for k, v in report["events"].items()} == {"appear": 3, "disappear": 1, "jump": 1,
                                                                    "blank": 1}
    assert report["events"]["jump"]["kept"] == pytest.approx(0.5, abs=0.01)
    assert len(report["event_list"]) == 6


def test_bad_input():
    a = np.zeros((16, 4, 4))
    with pytest.raises(ValueError):
        sawtooth(a, a[:, :3], B)
    with pytest.raises(ValueError):
        sawtooth(a[:5], a[:5], B)
    with pytest.raises(ValueError):
        boundary_flicker(a[:8], a[:8], B)
    with pytest.raises(ValueError):
        motion_fidelity(a, a)  # nothing moves


def test_numpy_only():
    code = "import sys, emcodec.bench.temporal; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
