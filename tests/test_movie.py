"""The movie decoder: motion inside a group, fusion across groups, events, streaming bound,
--frames equality, measurement consistency, scene cuts; and the motion module under it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

cv2 = pytest.importorskip("cv2")
pytest.importorskip("torch")

from emcodec import codec, motion, simulate  # noqa: E402
from emcodec.bench import temporal  # noqa: E402
from emcodec.cli import main  # noqa: E402
from emcodec.decoders.base import Decoder, decode_group  # noqa: E402
from emcodec.decoders.movie import MovieDecoder, MovieWindow, Unit, effective_masks, units_of  # noqa: E402
from emcodec.metrics import psnr  # noqa: E402

B = 10


def _decode(tcs, out, method="movie", **kw):
    codec.decompress(tcs, out, method=method, device="cpu", threads=1, force=True, **kw)
    return tifffile.imread(out).astype(np.float32)


@pytest.fixture(scope="module")
def drift(tmp_path_factory):
    """A drifting 96x96 movie (0.3-1 px/frame, known) at 50 counts, compressed at B = 10."""
    d = tmp_path_factory.mktemp("drift")
    clean, noisy, truth = simulate.simulate_motion_movie(40, 96, 96, seed=11, dose=50, motion="drift")
    tifffile.imwrite(d / "m.tif", noisy)
    codec.compress(d / "m.tif", d / "m.tcs", B=B, quantize="off")
    return d, clean, truth


@pytest.fixture(scope="module")
def drift_decoded(drift):
    d, clean, truth = drift
    return {m: _decode(d / "m.tcs", d / f"{m}.tif", method=m) for m in ("movie", "tcsdl")}


def _shift(a, b):
    """(dx, dy) of b against a by phase correlation on the centre (no border effects)."""
    (dx, dy), _ = cv2.phaseCorrelate(np.ascontiguousarray(a[16:-16, 16:-16]), np.ascontiguousarray(b[16:-16, 16:-16]))
    return np.array([dx, dy])


# ---------------------------------------------------------------- motion module


def test_flow_finds_a_known_shift_and_warp_undoes_it():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.random((96, 96)).astype(np.float32), (0, 0), 2.0)
    moved = np.roll(img, (2, -3), axis=(0, 1))  # content moves down 2, left 3
    flow = motion.estimate_flow(img, moved, float(img.min()), float(img.max()))
    centre = flow[16:-16, 16:-16]
    assert np.median(centre[..., 0]) == pytest.approx(-3, abs=0.1)
    assert np.median(centre[..., 1]) == pytest.approx(2, abs=0.1)
    back = motion.warp(moved, flow)  # moved sampled at p + flow(p) = img
    assert np.abs(back - img)[16:-16, 16:-16].mean() < 0.1 * np.abs(moved - img).mean()


def test_a_far_part_is_linked_through_the_parts_between():
    """Two parts apart, the displacement (25 px on a 160 px frame) is beyond what DIS finds
    directly; the flow chained through the part between finds it, and where a direct flow
    is right (3 px steps) it is kept as it is."""
    big = cv2.GaussianBlur(np.random.default_rng(0).random((400, 400)).astype(np.float32), (0, 0), 2.0)
    for step, direct_ok in (((10, -7), False), ((3, -2), True)):
        crops = [big[120 + k * step[0]:280 + k * step[0], 160 + k * step[1]:320 + k * step[1]] for k in range(3)]
        parts = [Unit(k, 0, 10 * k, 10, np.zeros((160, 160)), crops[k]) for k in range(3)]
        dec = MovieDecoder(first_pass=None)
        dec.link(parts[0], parts[1])
        dec.link(parts[1], parts[2])
        dec.link(parts[0], parts[2])
        direct = parts[0].flows[2].full()
        dec.link(parts[0], parts[2], via=parts[1])
        flow = parts[0].flows[2].full()[20:-20, 20:-20]  # content at p is found at p - 2 * step in part 2
        error = np.hypot(flow[..., 0] + 2 * step[1], flow[..., 1] + 2 * step[0])
        assert np.median(error) < 0.1
        if direct_ok:
            assert np.array_equal(parts[0].flows[2].full(), direct)


def test_trajectory_inside_a_part_moves_frames_towards_their_neighbours():
    fwd = np.zeros((4, 4, 2), np.float32)
    fwd[..., 0] = 10.0  # content at the next centre (10 frames later) is 10 px to the right
    traj = motion.within_group(fwd, 10.0, -fwd, 10.0, 10)
    xs = [t[0, 0, 0] for t in traj]  # frame k shows the centre image at q + disp
    assert xs[0] == pytest.approx(4.5) and xs[-1] == pytest.approx(-4.5)
    assert np.all(np.diff(xs) < 0)
    assert motion.within_group(None, None, None, None, 3) == [None] * 3
    mirrored = motion.within_group(None, None, -fwd, 10.0, 10)  # no next part: the previous one's, mirrored
    assert [t[0, 0, 0] for t in mirrored] == pytest.approx(xs)


def test_effective_masks_of_a_padded_part_sum_the_repeated_frames():
    m = np.random.default_rng(1).random((5, 3, 3)) < 0.5
    eff = effective_masks(m, 3)
    assert eff.shape == (3, 3, 3)
    np.testing.assert_array_equal(eff[2], m[2:].sum(0))
    np.testing.assert_array_equal(eff.sum(0), m.sum(0))


def test_a_flow_kept_at_half_resolution_gives_back_dis_field_on_any_crop():
    """Flows are held at half resolution (an eighth of the bytes): DIS's medium preset
    estimates at half resolution, so its field comes back within float16's step, and a
    crop is the same whichever tile asks for it."""
    a = cv2.GaussianBlur(np.random.default_rng(2).random((121, 97)).astype(np.float32), (0, 0), 3.0)
    flow = motion.estimate_flow(a, np.roll(a, (2, -3), (0, 1)), float(a.min()), float(a.max()))
    half = motion.HalfFlow(flow)
    assert half.data.dtype == np.float16 and half.data.nbytes * 8 <= flow.nbytes + 8 * 4 * 122
    whole = half.full()
    assert np.abs(whole - flow).max() < 0.005
    np.testing.assert_array_equal(half.full(37, 120, 11, 96), whole[37:120, 11:96])
    np.testing.assert_array_equal(half.full(0, 1, 0, 3), whole[:1, :3])
    assert half.max_abs() >= np.abs(whole).max()


def test_a_tile_is_cut_from_the_part_as_if_the_canvas_were_padded():
    """`region` and `MaskPlane.crop` give what padding the whole frame and cropping gave,
    without the whole padded copies (at 4096 x 4096 these were GBs)."""
    from emcodec.decoders.movie import MaskPlane, region
    from emcodec.masks import make_masks

    rng = np.random.default_rng(3)
    y, mean = rng.random((30, 26)), rng.random((30, 26)).astype(np.float32)
    flow = cv2.GaussianBlur(rng.random((30, 26, 2)).astype(np.float32), (0, 0), 2.0)
    u = Unit(4, 0, 40, B, y, mean, {5: motion.HalfFlow(flow), 9: motion.HalfFlow(flow)})
    m = 6
    for top, bottom, left, right in ((0, 20, 0, 38), (10, 42, 15, 38), (3, 9, 4, 12)):
        cut = region(u, top, bottom, left, right, m, keep={4, 5})
        np.testing.assert_allclose(cut.y, np.pad(y, m)[top:bottom, left:right], rtol=1e-6)
        np.testing.assert_array_equal(cut.mean, np.pad(mean, m, mode="edge")[top:bottom, left:right])
        padded = np.pad(u.flows[5].full(), ((m, m), (m, m), (0, 0)), mode="edge")
        np.testing.assert_array_equal(cut.flows[5], padded[top:bottom, left:right])
        assert set(cut.flows) == {5}
        plane = MaskPlane(7, B, 30, 26).crop(top - m, bottom - m, left - m, right - m)
        full = np.pad(make_masks(7, B, 0, 0, 30, 26), ((0, 0), (m, m), (m, m)))
        np.testing.assert_array_equal(plane, full[:, top:bottom, left:right])


# ---------------------------------------------------------------- the decoder on a drifting movie


def _coded_parts(n_parts=5, n=20, size=48, speed=0.8, bend=3.0, seed=3):
    """Noise-free coded parts of a smooth scene that drifts and bends, with known
    displacements: the arguments of MovieDecoder.solve after the start, and the true image."""
    rng = np.random.default_rng(seed)
    truth = cv2.GaussianBlur(rng.uniform(5, 15, (size, size)).astype(np.float32), (0, 0), 2.0)
    base = motion.grid(size, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    field = np.dstack([np.sin(2 * np.pi * yy / size), np.cos(2 * np.pi * xx / size)])
    masks = rng.integers(0, 2, (n, size, size)).astype(np.float32)
    members, disp, eff, s2, weights = [], {}, {}, {}, {}
    for j in range(n_parts):
        t = j * n + np.arange(n) - (n - 1) / 2  # frame k of part j, t frames from part 0's centre
        disp[j] = np.stack([speed * tk / 8 + bend * tk / n * field for tk in t]).astype(np.float32)
        frames = np.stack([motion.warp(truth, disp[j][k], base) for k in range(n)])
        members.append(Unit(j, 0, j * n, n, (masks * frames).sum(0).astype(np.float64), frames.mean(0), {}))
        eff[j], s2[j], weights[j] = masks, np.maximum((masks ** 2).sum(0), 1e-6), np.ones((size, size), np.float32)
    return truth, (members, disp, eff, s2, weights, base)


def test_the_fit_converges_where_the_motion_bends():
    """The fit's step is the exact gradient of its misfit (grid_sample's backward): with
    restarts the misfit never rises and, noise-free, the image is found where the flow
    varies across the frame. The former back-projection along the negated flow is not the
    adjoint there: it stalled at a mean error of 0.054 on this case (0.002 now)."""
    truth, fit = _coded_parts()
    start = cv2.GaussianBlur(truth, (0, 0), 3.0)
    z, history = MovieDecoder.solve(start, *fit, steps=40)
    assert len(history) == 40
    assert all(b <= a * (1 + 1e-5) for a, b in zip(history, history[1:]))
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(z - truth)[inner].mean() < 0.01
    assert np.abs(start - truth)[inner].mean() > 0.2


def test_the_fit_is_the_same_with_its_sample_points_held_or_rebuilt(monkeypatch):
    """Large tiles rebuild the sample points at each step, into one reused buffer: the same
    image as holding them."""
    import emcodec.decoders.movie as movie

    truth, fit = _coded_parts(n=6)
    start = cv2.GaussianBlur(truth, (0, 0), 3.0)
    held, _ = MovieDecoder.solve(start, *fit, steps=5)
    monkeypatch.setattr(movie, "HELD_POINTS_BYTES", 0)
    rebuilt, _ = MovieDecoder.solve(start, *fit, steps=5)
    np.testing.assert_array_equal(held, rebuilt)


def test_the_fit_is_the_same_whatever_its_chunks(monkeypatch):
    """The fit samples a part's frames chunk by chunk (so no step maps a part-sized array):
    one frame at a time gives the image of the whole part at once, and its first step is the
    gradient torch's autograd finds for the misfit."""
    import torch
    import torch.nn.functional as F

    import emcodec.decoders.movie as movie

    truth, fit = _coded_parts(n=6, speed=0.0, bend=0.0)  # no motion: every point is inside
    members, disp, eff, s2, weights, base = fit
    start = cv2.GaussianBlur(truth, (0, 0), 3.0)
    whole, _ = MovieDecoder.solve(start, *fit, steps=5)
    monkeypatch.setattr(movie, "FIT_CHUNK_BYTES", 1)
    one_by_one, _ = MovieDecoder.solve(start, *fit, steps=5)
    np.testing.assert_allclose(one_by_one, whole, rtol=1e-5, atol=1e-5)

    first, _ = MovieDecoder.solve(start, *fit, steps=1)  # start + step
    x = torch.from_numpy(start.astype(np.float32))[None, None].requires_grad_(True)
    h, w = start.shape
    scale = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)])
    misfit = 0.0
    for j in members:
        grid = (torch.from_numpy(disp[j.index]) + torch.from_numpy(base)) * scale - 1
        frames = F.grid_sample(x, grid.reshape(1, -1, w, 2), align_corners=True, padding_mode="border")
        r = torch.from_numpy(j.y.astype(np.float32)) - (torch.from_numpy(eff[j.index]) * frames.reshape(j.n, h, w)).sum(0)
        misfit = misfit + 0.5 * (r * r / torch.from_numpy(s2[j.index])).sum()
    misfit.backward()
    den = sum(j.n for j in members)
    np.testing.assert_allclose(first - start, -x.grad[0, 0].numpy() / den, rtol=1e-4, atol=1e-5)


def _choose_tv_on(truth_blur, dose, seed=5):
    """The TV weight choose_tv picks for part 2 of noisy coded parts of a scene (the image
    and the displacements are part 0's: any reference grid serves the held-out check)."""
    rng = np.random.default_rng(seed)
    truth, (members, disp, eff, s2, weights, base) = _coded_parts(n=10, size=64, bend=0.0, seed=seed)
    if truth_blur:
        truth = np.full_like(truth, truth.mean())
    scale = dose / truth.mean()
    for j in members:  # rebuild each part's measurement of the (maybe flat) scene with shot noise
        frames = np.stack([motion.warp(truth * scale, disp[j.index][k], base) for k in range(j.n)])
        j.y = rng.poisson((eff[j.index] * frames).sum(0)).astype(np.float64)
    unit = members[2]
    z0 = cv2.GaussianBlur((truth * scale).astype(np.float32), (0, 0), 2.0)
    traj = list(disp[2])
    return MovieDecoder(first_pass=None).choose_tv(z0, unit, members, disp, eff, s2, weights, base, 10, traj,
                                                   (slice(None), slice(None)))


def test_the_tv_weight_is_chosen_from_the_parts_own_measurement():
    """Held out from the fit, the part's own measurement says how much of the fit's change is
    noise: on a flat scene all of it (the strongest TV), on a detailed one at a high dose
    little (a weak TV). One constant weight cannot be both."""
    import emcodec.decoders.movie as movie

    flat, detailed = _choose_tv_on(True, 10), _choose_tv_on(False, 200)
    assert flat == max(movie.TV_GRID)
    assert detailed < 1.0


def test_fit_steps_grow_with_the_group_and_the_window_up_to_a_cap():
    dec = MovieDecoder(first_pass=None)
    assert dec.steps(10) == 12 and dec.steps(20) == 24 and dec.steps(30) == 24
    assert dec.steps(20, members=2) == 12 and dec.steps(30, members=3) == 24 and dec.steps(10, members=1) == 12
    assert MovieDecoder(first_pass=None, iterations=5).steps(30) == 5


def test_frames_move_inside_a_group(drift, drift_decoded):
    _, clean, truth = drift
    vy, vx = truth.velocity
    true = np.array([vx, vy]) * (B - 1)
    assert np.hypot(*true) > 3  # the test means something: several px across the group
    for g in (1, 2):
        a, b = g * B, g * B + B - 1
        assert np.hypot(*(_shift(drift_decoded["movie"][a], drift_decoded["movie"][b]) - true)) < 1.0
        # a per-group decode returns (in effect) the group's average: it barely moves
        assert np.hypot(*_shift(drift_decoded["tcsdl"][a], drift_decoded["tcsdl"][b])) < 0.5 * np.hypot(*true)


def test_movie_beats_per_group_decoding_and_binning(drift, drift_decoded):
    d, clean, _ = drift
    noisy = tifffile.imread(d / "m.tif")
    p_movie = psnr(clean, drift_decoded["movie"])
    assert p_movie > psnr(clean, drift_decoded["tcsdl"]) + 2.0
    assert p_movie > psnr(clean, temporal.binning(noisy, B)) + 2.0
    m = temporal.motion_fidelity(clean, drift_decoded["movie"])
    assert m["slope"] > 0.6 and 0.7 < m["energy"] < 1.3
    # frames that move keep the group's ends closer to its middle than a per-group decode does
    assert temporal.sawtooth(clean, drift_decoded["movie"], B) < temporal.sawtooth(clean, drift_decoded["tcsdl"], B)


def test_fusion_across_groups_adds_over_one_group(drift, drift_decoded, tmp_path):
    d, clean, _ = drift
    alone = _decode(d / "m.tcs", tmp_path / "w0.tif", window=0)
    assert psnr(clean, drift_decoded["movie"]) > psnr(clean, alone) + 1.0


def test_decoded_frames_agree_with_the_measurement_within_the_noise(drift, drift_decoded):
    """The masked sum of each group's decoded frames against the stored (exact) measurement,
    in units of the Poisson noise of that measurement."""
    d, _, _ = drift
    reader = codec.open_tcs(d / "m.tcs")
    from emcodec.masks import make_masks

    masks = make_masks(reader.header.seed, B, 0, 0, 96, 96)
    x = drift_decoded["movie"]
    for g, unit in units_of(reader, range(len(reader.trailer.offsets))):
        eff = effective_masks(masks, unit.n)
        pred = (eff * x[unit.first:unit.first + unit.n]).sum(0)
        z = (unit.y - pred) / np.sqrt(np.maximum(unit.y, 1.0) + 1.0 / 12)
        assert np.sqrt(np.mean(z * z)) < 1.3, g
    reader._f.close()


def test_frames_option_gives_the_same_values_as_a_full_decode(drift, drift_decoded, tmp_path):
    d, _, _ = drift
    assert main(["decompress", str(d / "m.tcs"), "-o", str(tmp_path / "part.tif"), "--frames", "13:27",
                 "-q", "--threads", "1", "--device", "cpu"]) == 0
    part = tifffile.imread(tmp_path / "part.tif").astype(np.float32)
    np.testing.assert_array_equal(part, drift_decoded["movie"][13:27])
    report = json.loads((tmp_path / "part.tif.emcodec.json").read_text())
    assert report["method"] == "movie" and report["window"] == 2 and "DIS" in report["motion"]
    assert report["first_pass"] == "measurement"


def test_a_range_of_frames_fits_only_its_own_parts(drift, tmp_path, monkeypatch):
    """The groups around a range are read for their first pass and motion, not fitted (a
    one-group decode at K = 2 used to fit five)."""
    import emcodec.decoders.movie as movie

    fitted = []
    reconstruct = movie.MovieDecoder.reconstruct

    def spy(self, unit, *a, **kw):
        fitted.append(unit.first)
        return reconstruct(self, unit, *a, **kw)

    monkeypatch.setattr(movie.MovieDecoder, "reconstruct", spy)
    d, _, _ = drift
    _decode(d / "m.tcs", tmp_path / "p.tif", frames="13:17")
    assert fitted == [10]


def test_the_movie_decoder_holds_a_group_in_the_writers_dtype(drift, drift_decoded, tmp_path):
    """Frames are converted tile by tile as they are fitted (a 4096 x 4096 x 30 group is
    1 GB of uint16, 2 GB of float32), to the same values as converting afterwards; a
    non-finite value is refused, not rounded away."""
    from emcodec.decoders.movie import decode_movie

    d, _, _ = drift
    reader = codec.open_tcs(d / "m.tcs")
    t = reader.trailer
    output = codec.Output(np.dtype(np.uint16), t.value_min, t.value_max)
    dec = codec.choose_decoder("movie", B, print)
    held = [x for _, _, x in decode_movie(reader, dec, 0, 40, output=output)]
    reader._f.close()
    assert all(x.dtype == np.uint16 for x in held)
    np.testing.assert_array_equal(np.concatenate(held), drift_decoded["movie"])  # the file's own decode
    with pytest.raises(codec.ContainerError, match="non-finite"):
        output.convert(np.array([[[1.0, np.nan]]], np.float32))


def test_preview_moves_frames_without_a_first_pass(drift, tmp_path, monkeypatch):
    """The preview method: watchable (close to the clean movie), frames move inside a group,
    and it never runs a per-group decoder."""
    import emcodec.decoders.base as base

    monkeypatch.setattr(base, "decode_group", lambda *a, **k: pytest.fail("preview ran a first pass"))
    d, clean, truth = drift
    x = _decode(d / "m.tcs", tmp_path / "p.tif", method="preview")
    assert x.shape == clean.shape and psnr(clean, x) > 25
    vy, vx = truth.velocity
    true = np.array([vx, vy]) * (B - 1)
    shift = _shift(x[B], x[2 * B - 1])
    assert np.hypot(*(shift - true)) < 0.5 * np.hypot(*true)
    report = json.loads((tmp_path / "p.tif.emcodec.json").read_text())
    assert report["method"] == "preview" and report["window"] == 1 and report["first_pass"] is None


def test_preview_never_imports_torch(drift, tmp_path):
    """Scrolling through an acquisition must not wait for torch to load (seconds on a busy PC)."""
    import subprocess
    import sys

    d, _, _ = drift
    code = ("import sys, emcodec.codec as c; "
            f"c.decompress({str(d / 'm.tcs')!r}, {str(tmp_path / 'p.tif')!r}, method='preview', force=True); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]


# ---------------------------------------------------------------- events


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    d = tmp_path_factory.mktemp("events")
    clean, noisy, ev = simulate.simulate_events_movie(50, 96, 96, B=B, seed=3, dose=100)
    tifffile.imwrite(d / "m.tif", noisy)
    codec.compress(d / "m.tif", d / "m.tcs", B=B)
    scores = {}
    for m in ("movie", "tcsdl"):
        x = _decode(d / "m.tcs", d / f"{m}.tif", method=m)
        scores[m] = {(e["kind"], e["timing"]): temporal.event_fidelity(clean, x, e, window=B // 2) for e in ev}
    return scores


@pytest.mark.parametrize("event", [("appear", "mid_group"), ("disappear", "mid_group"), ("appear", "group_start")])
def test_events_keep_their_strength_and_do_not_leak(events, event):
    got = events["movie"][event]
    assert got["kept"] > 0.8 and got["leak"] < 0.2, got


def test_events_inside_a_group_are_not_averaged_over_it(events):
    for event in [("disappear", "mid_group"), ("jump", "mid_group")]:
        assert events["tcsdl"][event]["leak"] > 0.25, events  # the per-group decode smears them
        assert events["movie"][event]["leak"] < events["tcsdl"][event]["leak"] - 0.15


def test_a_jump_lands_at_its_new_place(events):
    got = events["movie"][("jump", "mid_group")]
    assert got["kept"] > 0.8 and got["leak"] < 0.2, got


def test_a_beam_blank_stays_dark(events):
    got = events["movie"][("blank", "mid_group")]
    assert got["kept"] > 0.9 and abs(got["leak"]) < 0.1, got


# ---------------------------------------------------------------- streaming and scene cuts


class Mean(Decoder):
    """A cheap first pass for the streaming tests: every frame is Y / S."""

    name = "mean"

    def decode_tile(self, y, masks):
        s = masks.sum(1).clamp(min=1.0)
        return (y / s).unsqueeze(1).expand_as(masks).clone()


class CountingReader:
    """A TcsReader that counts the groups read."""

    def __init__(self, reader):
        self._r, self.header, self.trailer, self.reads = reader, reader.header, reader.trailer, []

    def read_group(self, g, *a, **kw):
        self.reads.append(g)
        return self._r.read_group(g, *a, **kw)


@pytest.fixture(scope="module")
def long_movie(tmp_path_factory):
    d = tmp_path_factory.mktemp("long")
    clean, noisy, _ = simulate.simulate_motion_movie(120, 64, 64, seed=5, dose=30, motion="drift")
    tifffile.imwrite(d / "m.tif", noisy)
    codec.compress(d / "m.tif", d / "m.tcs", B=B)
    return d / "m.tcs"


@pytest.mark.parametrize("K", [1, 2, 3])
def test_at_most_2K_plus_1_groups_are_held(long_movie, K):
    from emcodec.decoders.movie import decode_movie

    reader = CountingReader(codec.open_tcs(long_movie))
    dec = MovieDecoder(Mean(), window=K, iterations=2)
    window = MovieWindow(dec, B, reader.header.seed, 64, 64)
    held = []
    window_frames = window.frames

    def watching(units, progress=None, **kw):
        for item in window_frames(units, progress, **kw):
            held.append(len(window.held))
            yield item

    window.frames = watching
    got = list(decode_movie(reader, dec, 0, 120, window=window))
    assert [u.first for _, u, _ in got] == list(range(0, 120, B))
    assert reader.reads == list(range(12))  # each group read once, in order
    assert window.peak_held == 2 * K + 1 and max(held) <= 2 * K + 1
    # and no part keeps a flow to a part that was let go: K(3K + 1) flows at most
    assert sum(len(u.flows) for u in window.held) <= K * (3 * K + 1)
    assert all(k in {v.index for v in window.held} for u in window.held for k in u.flows)
    reader._r._f.close()


def test_windows_do_not_cross_a_scene_cut(tmp_path):
    """A stage jump inside a group: the parts after it are decoded as their own scene."""
    a, _, _ = simulate.simulate_motion_movie(25, 64, 64, seed=1, dose=40, motion="drift")
    b, _, _ = simulate.simulate_motion_movie(25, 64, 64, seed=2, dose=40, motion="drift", kind="atomic")
    clean = np.concatenate([a, 0.3 * b])
    noisy = np.random.default_rng(0).poisson(clean).astype(np.uint16)
    tifffile.imwrite(tmp_path / "m.tif", noisy)
    codec.compress(tmp_path / "m.tif", tmp_path / "m.tcs", B=B)
    info = codec.info(tmp_path / "m.tcs")
    assert info["scene_cuts_at"] == [25]
    reader = codec.open_tcs(tmp_path / "m.tcs")
    dec = MovieDecoder(Mean(), window=2, iterations=2)
    units = {}
    for _, u, x in __import__("emcodec.decoders.movie", fromlist=["decode_movie"]).decode_movie(reader, dec, 0, 50):
        units[u.index] = (u, x)
    reader._f.close()
    for u, _ in units.values():  # no flow was ever estimated across the cut
        assert all(units[j][0].scene == u.scene for j in u.flows)
    x = np.concatenate([x for _, x in sorted(units.values(), key=lambda t: t[0].first)])
    after, before = x[25:30].mean(), x[20:25].mean()
    assert after == pytest.approx(clean[25:30].mean(), rel=0.15)
    assert before == pytest.approx(clean[20:25].mean(), rel=0.15)


def test_the_default_first_pass_is_the_normalised_measurement(drift, tmp_path, monkeypatch):
    """`movie` starts its fit from each part's blurred Y over blurred S, running no
    per-group network (it changed PSNR by -0.25..+0.08 dB and cost ~80 % of the time)."""
    from emcodec.decoders import base
    from emcodec.decoders.normalised import NormalisedMeasurement, blur

    d, clean, _ = drift
    y = np.random.default_rng(0).poisson(40, (24, 20)).astype(np.float64)
    total = effective_masks(__import__("emcodec").masks.make_masks(7, B, 0, 0, 24, 20), B).sum(0)
    np.testing.assert_allclose(NormalisedMeasurement().image(y, B, 7, B), blur(y) / blur(total), rtol=1e-5)
    monkeypatch.setattr(base, "decode_group", lambda *a, **k: pytest.fail("movie ran a per-group decode"))
    out = _decode(d / "m.tcs", tmp_path / "m.tif")
    assert psnr(clean, out) > 30


def test_first_pass_is_a_per_group_decode():
    """The per-group methods are first passes inside the movie decoder, not copies of it."""
    dec = MovieDecoder(Mean(), window=1)
    y = np.full((16, 16), 30.0)
    from emcodec.decoders.movie import Unit

    u = Unit(0, 0, 0, B, y)
    dec.prepare(u, B, 0)
    np.testing.assert_allclose(u.mean, decode_group(Mean(), y, B, 0)[:B].mean(0), rtol=1e-5)


def test_first_pass_average_is_built_tile_by_tile():
    """decode_group(mean_of=n) is the average of the first n decoded frames, without the
    (B, H, W) stack."""
    from emcodec.decoders.gaptv import GapTV

    y = np.random.default_rng(4).poisson(40.0, (80, 72)).astype(np.float64)
    full = decode_group(GapTV(iterations=5), y, B, 0, tile=32, overlap=8)
    mean = decode_group(GapTV(iterations=5), y, B, 0, tile=32, overlap=8, mean_of=7)
    assert mean.shape == (80, 72)
    np.testing.assert_allclose(mean, full[:7].mean(0), rtol=1e-5, atol=1e-4)


def test_large_frames_are_fitted_in_tiles_with_a_halo(drift, drift_decoded, tmp_path, monkeypatch):
    """Tiles smaller than the frame (with a halo for the motion) give the whole-frame result
    up to the tiles' own noise estimates, and the fit never sees the whole frame."""
    import emcodec.decoders.movie as movie

    sizes = []
    fit = movie.MovieDecoder.fit

    def spy(self, unit, neighbours, masks, B):
        sizes.append(unit.y.shape)
        return fit(self, unit, neighbours, masks, B)

    monkeypatch.setattr(movie, "TILE", 32)
    monkeypatch.setattr(movie, "HALO", 8)
    monkeypatch.setattr(movie.MovieDecoder, "fit", spy)
    d, clean, _ = drift
    tiled = _decode(d / "m.tcs", tmp_path / "t.tif")
    assert sizes and max(h * w for h, w in sizes) < 96 * 96
    assert psnr(clean, tiled) > psnr(clean, drift_decoded["movie"]) - 0.3


def test_same_threads_give_identical_frames_and_the_count_is_recorded(drift, drift_decoded, tmp_path):
    """Determinism: a second decode with the same thread count is bit-identical, and the
    output itself says which thread count made it."""
    d, _, _ = drift
    again = _decode(d / "m.tcs", tmp_path / "again.tif")
    np.testing.assert_array_equal(again, drift_decoded["movie"])
    with tifffile.TiffFile(tmp_path / "again.tif") as f:
        text = " ".join(str(t.value) for t in f.pages[0].tags.values() if isinstance(t.value, str))
        text += json.dumps(f.imagej_metadata or {}, default=str)
    assert "threads=1" in text


def test_content_that_drifts_into_the_frame_is_rebuilt_from_the_neighbours(tmp_path, monkeypatch):
    """The centre image lives on a canvas wider than the frame: the strips at the frame's
    sides, which a group's end frames show but its centre does not, come from the
    neighbouring groups' measurements instead of a repeated border."""
    import emcodec.decoders.movie as movie

    clean, noisy, truth = simulate.simulate_motion_movie(40, 96, 96, seed=4, dose=30, motion="drift")
    assert abs(truth.velocity[1]) > 0.9  # ~1 px/frame sideways: ~5 px of new content per group end
    tifffile.imwrite(tmp_path / "m.tif", noisy)
    codec.compress(tmp_path / "m.tif", tmp_path / "m.tcs", B=B, quantize="off")
    ends = [g * B + k for g in range(4) for k in (0, B - 1)]
    w = int(np.ceil(abs(truth.velocity[1]) * B / 2)) + 1

    def strips(a):
        return np.concatenate([a[ends][:, :, :w], a[ends][:, :, -w:]], 2)

    canvas = _decode(tmp_path / "m.tcs", tmp_path / "c.tif")
    monkeypatch.setattr(movie, "CANVAS", False)
    frame_only = _decode(tmp_path / "m.tcs", tmp_path / "f.tif")
    assert psnr(strips(clean), strips(canvas)) > psnr(strips(clean), strips(frame_only)) + 0.4
    assert psnr(clean, canvas) > psnr(clean, frame_only)


def test_no_changes_are_invented_at_the_edges_of_a_drifting_movie(tmp_path, monkeypatch):
    """A movie without events: placing changes must cost (almost) nothing. Beyond a frame's
    edge the neighbours' images are repeated borders; they differ there without a change."""
    import emcodec.decoders.movie as movie

    clean, noisy, _ = simulate.simulate_motion_movie(60, 192, 192, seed=101, dose=10, motion="drift")
    tifffile.imwrite(tmp_path / "m.tif", noisy)
    codec.compress(tmp_path / "m.tif", tmp_path / "m.tcs", B=20, quantize="off")
    placed = _decode(tmp_path / "m.tcs", tmp_path / "c.tif")
    monkeypatch.setattr(movie.MovieDecoder, "keep_changes", lambda *a, **k: None)
    fused = _decode(tmp_path / "m.tcs", tmp_path / "f.tif")
    assert psnr(clean, placed) > psnr(clean, fused) - 0.1
