"""The benchmark's verdict, its noise seeds, and the science columns in its outputs (issue 19).

Tiny movies (7 frames of 48x48), GAP-TV and JPEG only: the file runs in well under a minute.
"""

import io
import sys

import numpy as np
import pytest

from emcodec.bench.verdict import fit_noise, redraw_noise, verdict, verdict_lines

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def seeds(em_psnr, other_psnr, em_ssim=0.5, other_ssim=0.5):
    """Per-seed contestant measures at B=10 for an emcodec decoder and one baseline."""
    return [{10: {"emcodec movie": {"psnr": e, "ssim": em_ssim}, "av1 (crf=50)": {"psnr": o, "ssim": other_ssim}}}
            for e, o in zip(em_psnr, other_psnr)]


def by_measure(entries):
    return {e["measure"]: e for e in entries}


def test_a_loss_is_said_as_a_loss():
    v = by_measure(verdict(seeds([25.0, 25.1, 24.9], [26.0, 26.1, 25.9])))
    p = v["psnr"]
    assert p["winner"] == "av1 (crf=50)" and p["outcome"] == "loses" and p["seeds_agree"]
    assert p["margin"] == pytest.approx(-1.0)
    line = [x for x in verdict_lines(list(v.values())) if "PSNR" in x][0]
    assert "emcodec LOSES by 1.00 dB" in line and "every seed agrees" in line


def test_ties_under_the_margin_and_wins_over_it():
    v = by_measure(verdict(seeds([25.0, 25.0, 25.0], [25.15, 24.9, 25.1], em_ssim=0.600, other_ssim=0.590)))
    assert v["psnr"]["outcome"] == "tie" and v["psnr"]["tie"]  # 0.05 dB apart on average
    assert v["ssim"]["outcome"] == "tie"  # 1.7 % apart
    v = by_measure(verdict(seeds([25.5, 25.4, 25.6], [25.0, 25.0, 25.0], em_ssim=0.62, other_ssim=0.59)))
    assert v["psnr"]["outcome"] == "wins" and v["psnr"]["margin"] == pytest.approx(0.5)
    assert v["ssim"]["outcome"] == "wins"


def test_seeds_that_disagree_are_said():
    v = by_measure(verdict(seeds([25.0, 27.0, 25.0], [26.0, 26.0, 26.0])))
    p = v["psnr"]  # the means decide (25.67 against 26.0), and one seed went the other way
    assert p["outcome"] == "loses" and not p["seeds_agree"]
    assert p["emcodec_value"] == pytest.approx(25.6667, abs=1e-3)
    assert "seeds disagree" in [x for x in verdict_lines([p])][0]


def test_lower_and_near_one_measures_rank_the_right_way():
    per = [{20: {"emcodec tcsdl": {"column_rms": 0.5, "boundary_flicker": 1.05, "spacing_error": -0.001},
                 "binning": {"column_rms": 0.8, "boundary_flicker": 3.0, "spacing_error": 0.01}}}]
    v = by_measure(verdict(per))
    assert v["column_rms"]["outcome"] == "wins" and v["boundary_flicker"]["outcome"] == "wins"
    assert v["spacing_error"]["outcome"] == "wins"


def test_noise_fit_and_redraw_recover_the_detector():
    rng = np.random.default_rng(0)
    clean = rng.uniform(5, 200, (4, 64, 64))
    gain, read = 2.0, 4.0
    noisy = np.clip(np.rint(gain * rng.poisson(clean / gain) + rng.normal(0, 2.0, clean.shape)), 0, None).astype(np.uint16)
    g, r = fit_noise(clean, noisy)
    assert g == pytest.approx(gain, rel=0.05) and r == pytest.approx(read, abs=1.5)
    again = redraw_noise(clean, noisy, seed=5)
    assert again.dtype == np.uint16 and not np.array_equal(again, noisy)
    assert np.var(again - clean) == pytest.approx(np.var(noisy.astype(float) - clean), rel=0.05)


def test_demo_picture_and_its_note_without_matplotlib(tmp_path, monkeypatch):
    from emcodec.demo import _picture

    rng = np.random.default_rng(1)
    clean = rng.uniform(10, 50, (6, 32, 32)).astype(np.float32)
    noisy = rng.poisson(clean).astype(np.uint16)
    line = _picture(tmp_path / "d.png", clean, noisy, {"gap-tv": clean + 1}, 3, False)
    assert str(tmp_path / "d.png") in line and (tmp_path / "d.png").read_bytes()[:8] == PNG_MAGIC
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    line = _picture(tmp_path / "e.png", clean, noisy, {"gap-tv": clean}, 3, False)
    assert "matplotlib" in line and "\n" not in line and not (tmp_path / "e.png").exists()


@pytest.fixture(scope="module")
def seeded_report():
    pytest.importorskip("imagecodecs")
    pytest.importorskip("torch")
    from emcodec.bench.run import Config, Movie
    from emcodec.bench.verdict import run_with_seeds

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48].astype(np.float32)
    clean = np.stack([30 + 20 * np.exp(2 * (np.cos(2 * np.pi * (xx - 0.3 * i) / 6) + np.cos(2 * np.pi * yy / 6) - 2))
                      for i in range(7)]).astype(np.float32)
    movie = Movie(rng.poisson(clean).astype(np.uint16), clean, "clean", "noise-free lattice", "test lattice")
    config = Config(Bs=[3], baselines=["jpeg"], methods=["gap-tv"], scan_points=3)
    return movie, run_with_seeds(movie, config, 2)


def test_report_has_science_verdict_and_reading_aids(seeded_report, tmp_path):
    from rich.console import Console

    from emcodec.bench.report import print_report, science_markdown, to_json, write_plot

    movie, rep = seeded_report
    r = rep["results"][0]
    assert rep["verdict"]["seeds"] == 2 and rep["verdict"]["entries"]
    for entry in (r["methods"]["gap-tv"], r["binning"], r["baselines"]["jpeg"]["best_in_budget"]):
        sci = entry["science"]
        assert sci["lattice"]["peaks"] >= 2 and 0 < sci["frc"]["freq"] <= 0.5
        assert "temporal" in entry
    assert any("B=3 does not divide the 7 frames" in n for n in rep["notes"])  # the padded last group
    out = io.StringIO()
    print_report(rep, Console(file=out, width=200))
    text = out.getvalue()
    assert text.index("verdict") < text.index("bits/px")  # the verdict comes first
    assert "what a microscopist measures" in text and "reward denoising" in text
    assert "setting quality: JPEG quality" in text
    assert "baselines cost" not in text and "takes" in text  # the encoder-cost sentence reads plainly
    assert "lattice kept" in science_markdown(rep) and "Verdict (2 noise seeds)" in science_markdown(rep)
    data = to_json(rep)
    assert not any(k.startswith("_") for k in data["results"][0]["methods"]["gap-tv"])
    write_plot(rep, movie, tmp_path / "p.png")
    assert (tmp_path / "p.png").read_bytes()[:8] == PNG_MAGIC


def test_bad_still_inputs_are_one_line_errors(tmp_path, capsys):
    imagecodecs = pytest.importorskip("imagecodecs")
    from emcodec.cli import main

    small, junk = tmp_path / "small.png", tmp_path / "junk.png"
    small.write_bytes(imagecodecs.png_encode(np.zeros((40, 40), np.uint8)))
    junk.write_bytes(b"not a png")
    for args, says in (([str(tmp_path / "nope.png")], "no such file"), ([str(small)], "too small"),
                       ([str(junk)], "not a readable PNG")):
        assert main(["benchmark", *args, "-q"]) == 1
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and err.count("\n") == 1
