"""`emcodec benchmark` (issue 4): structure of the outputs, matched bytes, the stated reference.

Tiny movies (6 frames of 48x48) keep the whole file well under a minute on two cores.
"""

import json

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("imagecodecs")
pytest.importorskip("torch")

from emcodec.bench import baselines as bl  # noqa: E402
from emcodec.bench.matching import Sizer, match_budget, scan_grid  # noqa: E402
from emcodec.bench.run import Config, Movie, load_movie, run_benchmark  # noqa: E402
from emcodec.metrics import psnr_frames  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def tiny_movie(n=6, size=48, seed=0):
    """Drifting blobs plus Poisson noise; the noise-free frames are the reference."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    clean = np.stack([20 + 15 * np.sin((xx + 0.7 * i) / 3.0) * np.cos((yy - 0.4 * i) / 4.0) for i in range(n)])
    clean = clean.astype(np.float32)
    noisy = rng.poisson(clean).astype(np.uint16)
    return Movie(noisy, clean, "clean", "noise-free test frames", "test movie")


@pytest.fixture(scope="module")
def report():
    """One small run shared by the structure tests: two B, JPEG 8-bit, every decoder."""
    movie = tiny_movie()
    rep = run_benchmark(movie, Config(Bs=[2, 3], baselines=["jpeg"], scan_points=4))
    return movie, rep


def test_json_structure(report, tmp_path):
    from emcodec.bench.report import to_json, write_json

    movie, rep = report
    path = tmp_path / "out.json"
    write_json(rep, path)
    data = json.loads(path.read_text())
    assert data == to_json(rep)
    for key in ("versions", "machine", "movie", "reference", "settings", "results", "encoder_cost", "notes"):
        assert key in data
    assert data["versions"]["imagecodecs"]
    assert data["reference"]["kind"] == "clean"
    assert [r["B"] for r in data["results"]] == [2, 3]
    from emcodec.codec import decoding_methods

    assert set(data["settings"]["decoders"]) == set(decoding_methods())
    for r in data["results"]:
        # every registered method is scored wherever it can decode this B (TCS-DL: where weights exist)
        expected = {m for m, d in data["settings"]["decoders"].items() if r["B"] in d["B"]}
        assert set(r["methods"]) == expected and "gap-tv" in expected
        for d in r["methods"].values():
            assert len(d["psnr_frames"]) == len(movie.frames) and 0 < d["ssim"] <= 1
        e = r["emcodec"]
        assert e["bytes"] > 0 and e["encode_cpu_s_per_frame"] > 0
        assert e["bpp"] == pytest.approx(8 * e["bytes"] / movie.frames.size)
        assert e["ratio"] == pytest.approx(movie.frames.nbytes / e["bytes"])
        assert "jpeg" in r["baselines"]
    assert not any(k.startswith("_") for r in data["results"] for d in r["methods"].values() for k in d)
    row = data["encoder_cost"]["per_B"][0]
    assert row["bars"]["jpeg"]["holds"] == (row["bars"]["jpeg"]["ratio"] >= 1)


def test_matched_bytes_within_budget(report):
    _, rep = report
    for r in rep["results"]:
        b = r["baselines"]["jpeg"]
        assert b["budget_bytes"] == r["emcodec"]["bytes"]
        if not b["fits"]:
            continue
        m = b["matched"]
        assert m["bytes"] <= r["emcodec"]["bytes"]
        assert b["within_tolerance"]
        assert m["fraction_of_budget"] >= 0.9 or "next_step" in b or b["knob_at_limit"]
        if "next_step" in b:  # the knob cannot give more bytes within the budget
            assert b["next_step"]["bytes"] > r["emcodec"]["bytes"]
        assert b["best_in_budget"]["bytes"] <= r["emcodec"]["bytes"]
        assert b["best_in_budget"]["psnr"] >= m["psnr"] - 1e-9


def test_tcs_size_is_the_file_size(tmp_path):
    """The budget counts every byte of the real .tcs file."""
    from emcodec.codec import compress
    from emcodec.stacks import create_stack

    movie = tiny_movie()
    src = tmp_path / "movie.tif"  # the name the benchmark gives its copy: it is stored in the header
    with create_stack(src, height=48, width=48, dtype=np.uint16, n_frames=6, pixel_size=None) as w:
        w.write(movie.frames)
    compress(src, tmp_path / "m.tcs", B=3)
    rep = run_benchmark(movie, Config(Bs=[3], baselines=[], methods=[]))
    assert rep["results"][0]["emcodec"]["bytes"] == (tmp_path / "m.tcs").stat().st_size


def test_metrics_against_stated_reference(report):
    """The emcodec and JPEG scores are metrics.psnr_frames against the clean frames, mean over frames."""
    movie, rep = report
    r = rep["results"][0]
    for d in list(r["methods"].values()) + [r["baselines"]["jpeg"]]:
        frames = d["_frames"]
        expected = psnr_frames(movie.reference, frames)
        got = d["psnr_frames"] if "psnr_frames" in d else d["matched"]["psnr_frames"]
        assert np.allclose(got, expected)
    assert rep["raw_frames"]["psnr"] == pytest.approx(float(np.mean(psnr_frames(movie.reference, movie.frames))))


def test_raw_reference_gives_infinite_psnr_for_an_identical_decode(tmp_path):
    """With reference = raw frames, a lossless baseline setting scores inf."""
    from emcodec.stacks import create_stack

    movie = tiny_movie()
    src = tmp_path / "m.tif"
    with create_stack(src, height=48, width=48, dtype=np.uint16, n_frames=6, pixel_size=None) as w:
        w.write(movie.frames)
    loaded = load_movie(src)
    assert loaded.reference_kind == "raw"
    assert np.array_equal(loaded.reference, movie.frames.astype(np.float32))
    b = bl.Jpeg2000()
    scale = b.scale_for(loaded.frames)
    codes = scale.encode(loaded.frames)
    back = np.rint(scale.decode(b.decode([bytes(__import__("imagecodecs").jpeg2k_encode(c, level=0)) for c in codes],
                                        codes.shape)))
    assert np.isinf(psnr_frames(loaded.reference, back)).all()


def test_reference_file_is_used(tmp_path):
    from emcodec.stacks import create_stack

    movie = tiny_movie()
    src, ref = tmp_path / "m.tif", tmp_path / "ref.tif"
    for path, data in ((src, movie.frames), (ref, np.rint(movie.reference).astype(np.uint16))):
        with create_stack(path, height=48, width=48, dtype=np.uint16, n_frames=6, pixel_size=None) as w:
            w.write(data)
    loaded = load_movie(src, reference=ref, n_frames=4, crop=32)
    assert loaded.reference_kind == "file" and loaded.frames.shape == (4, 32, 32)
    assert np.array_equal(loaded.reference, np.rint(movie.reference[:4, 8:40, 8:40]))


def test_missing_library_is_skipped_with_a_note(monkeypatch):
    monkeypatch.setattr(bl.AV1, "available", lambda self: False)
    rep = run_benchmark(tiny_movie(n=4, size=32), Config(Bs=[2], baselines=["jpeg", "av1"], methods=[]))
    assert "av1" not in rep["results"][0]["baselines"] and "jpeg" in rep["results"][0]["baselines"]
    assert any(n.startswith("av1: skipped") for n in rep["notes"])
    assert rep["settings"]["baselines"] == ["jpeg"]


def test_method_without_weights_for_B_is_skipped_with_a_note(monkeypatch):
    from emcodec.decoders.gaptv import GapTV

    monkeypatch.setattr(GapTV, "supports", classmethod(lambda cls, B, weights_dir=None: B != 3), raising=False)
    rep = run_benchmark(tiny_movie(n=4, size=32), Config(Bs=[2, 3], baselines=[], methods=["gap-tv"]))
    assert "gap-tv" in rep["results"][0]["methods"] and "gap-tv" not in rep["results"][1]["methods"]
    assert any(n.startswith("gap-tv: no weights for B=3") for n in rep["notes"])


def test_bisection_finds_largest_fitting_size():
    sizes = {q: 100 + 10 * q for q in range(1, 101)}  # monotone, integer knob
    sizer = Sizer(lambda q: [b"x" * sizes[int(q)]])
    m = match_budget(sizer, 655, (1, 100), step=1, more_bytes_when_larger=True)
    assert m.matched.knob == 55 and m.matched.nbytes == 650 and m.within_tolerance
    assert len(sizer.trials) < 12  # bisection, not a full scan
    grid = scan_grid(m, (1, 100), step=1, more_bytes_when_larger=True, points=5)
    assert grid[0] == 1 and max(grid) == 55
    # a knob where fewer bytes come with larger values (crf), and a budget nothing fits
    sizer = Sizer(lambda c: [b"x" * int(1000 - 10 * c)])
    assert match_budget(sizer, 400, (0, 51), step=1, more_bytes_when_larger=False).fits is False
    m = match_budget(Sizer(lambda c: [b"x" * int(1000 - 10 * c)]), 795, (0, 51), step=1,
                     more_bytes_when_larger=False)
    assert m.matched.knob == 21 and m.matched.nbytes == 790


def test_coarse_knob_is_reported_not_hidden():
    """A knob whose next step jumps over the budget: < 90% is allowed, and the step is named."""
    sizer = Sizer(lambda q: [b"x" * (100 if q < 50 else 1000)])
    m = match_budget(sizer, 500, (1, 100), step=1, more_bytes_when_larger=True)
    assert m.matched.nbytes == 100 and m.fraction < 0.9
    assert m.next_over is not None and m.next_over.knob == 50 and m.within_tolerance


@pytest.mark.parametrize("name", [b.name for b in bl.ALL])
def test_each_available_baseline_round_trips(name):
    b = bl.BY_NAME[name]
    if not b.available():
        pytest.skip(b.missing_note())
    frames = tiny_movie(n=3, size=32).frames
    scale = b.scale_for(frames)
    codes = scale.encode(frames)
    hi = b.knob_range[1] if b.more_bytes_when_larger else b.knob_range[0]
    payloads = b.encode(codes, hi)
    back = b.decode(payloads, codes.shape)
    assert back.shape == codes.shape
    assert np.abs(back.astype(float) - codes).mean() < 0.05 * (1 << b.bits)


def test_cli_json_and_plot(tmp_path, capsys):
    from emcodec.cli import cli

    src = tmp_path / "m.tif"
    from emcodec.stacks import create_stack

    movie = tiny_movie()
    with create_stack(src, height=48, width=48, dtype=np.uint16, n_frames=6, pixel_size=None) as w:
        w.write(movie.frames)
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    result = CliRunner().invoke(cli, ["benchmark", str(src), "-B", "3", "--vs", "jpeg", "--json", str(out),
                                      "--plot", str(png), "--quiet"])
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["reference"]["kind"] == "raw" and data["movie"]["frames"] == 6
    assert png.read_bytes()[:8] == PNG_MAGIC
    assert "jpeg" in result.output
    # existing outputs need --force; bad options are one-line errors, not tracebacks
    from emcodec.cli import main

    capsys.readouterr()
    assert main(["benchmark", str(src), "-B", "3", "--json", str(out), "--quiet"]) == 1
    assert "exists; use --force" in capsys.readouterr().err
    assert main(["benchmark", str(src), "--vs", "gif"]) == 1
    err = capsys.readouterr().err
    assert "unknown baseline" in err and "Traceback" not in err
    assert main(["benchmark", str(src), "-B", "1"]) == 1
    assert "B must be" in capsys.readouterr().err


def test_quantiser_settings_are_compared_point_by_point(tmp_path):
    from emcodec.bench.report import markdown_tables, write_plot

    movie = tiny_movie(n=6, size=48)
    rep = run_benchmark(movie, Config(Bs=[3], baselines=["jpeg"], methods=["gap-tv"], quantize=["off", "auto", 2.0],
                                      scan_points=3))
    points = {r["quantize"]: r for r in rep["results"]}
    assert list(points) == ["off", "auto", "2"] and rep["settings"]["quantize"] == ["off", "auto", "2"]
    sizes = [points[q]["emcodec"]["bytes"] for q in ("off", "auto", "2")]
    assert sizes[0] > sizes[1] > sizes[2]  # coarser steps, smaller files
    assert "quantizer" not in points["off"]["emcodec"] and points["2"]["emcodec"]["quantizer"]["step"] == 2.0
    for r in rep["results"]:  # each point's baseline is matched to that point's bytes
        jpeg = r["baselines"]["jpeg"]
        assert jpeg["budget_bytes"] == r["emcodec"]["bytes"]
        assert "matched" not in jpeg or jpeg["matched"]["bytes"] <= r["emcodec"]["bytes"]
    assert "B=3 q=auto" in markdown_tables(rep)
    write_plot(rep, movie, tmp_path / "q.png")
    assert (tmp_path / "q.png").read_bytes()[:8] == PNG_MAGIC
