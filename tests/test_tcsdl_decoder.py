"""TCS-DL through the CLI with tiny weights: verification, fallback, labels, determinism."""

import json

import numpy as np
import pytest
import tifffile

from emcodec.cli import main
from emcodec.model import TCSDL
from emcodec.stacks import read_description
from emcodec.training.train import TrainConfig, export_weights


@pytest.fixture
def tiny_weights(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    folder = tmp_path / "weights"
    export_weights(TCSDL(4, 4), TrainConfig(B=4, width=4), str(folder), {"note": "test"})
    monkeypatch.setenv("EMCODEC_WEIGHTS", str(folder))
    return folder


@pytest.fixture
def movie(tmp_path):
    rng = np.random.default_rng(3)
    frames = rng.poisson(30, (9, 40, 48)).astype(np.uint16)
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, frames, photometric="minisblack")
    return path


def decode(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def test_tcsdl_decodes_with_verified_weights(tiny_weights, movie, tmp_path, capsys):
    assert main(["compress", str(movie), "-B", "4", "--seed", "12345", "-q"]) == 0
    out = tmp_path / "a.tif"
    code, err = decode(["decompress", movie.with_suffix(".tcs"), "-o", out, "-q", "--threads", "1", "--method", "tcsdl"], capsys)
    assert code == 0, err
    assert "warning" not in err
    sha = json.loads((tiny_weights / "manifest.json").read_text())["weights"]["4"]["sha256"]
    assert f"sha256={sha}" in read_description(out)
    report = json.loads((tmp_path / "a.tif.emcodec.json").read_text())
    assert report["method"] == "tcsdl" and report["weights"] == sha and report["seed"] == 12345
    assert report["device"] == "cpu" and report["cpu_threads"] == 1
    assert [g["frames"] for g in report["groups"]] == [[0, 4], [4, 8], [8, 9]]
    assert all(g["residual"] > 0 for g in report["groups"])
    # same input, same device and threads: the same output
    again = tmp_path / "b.tif"
    assert decode(["decompress", movie.with_suffix(".tcs"), "-o", again, "-q", "--threads", "1", "--method", "tcsdl"], capsys)[0] == 0
    np.testing.assert_array_equal(tifffile.imread(out), tifffile.imread(again))


def test_tampered_weights_are_refused(tiny_weights, movie, tmp_path, capsys):
    main(["compress", str(movie), "-B", "4", "-q"])
    path = tiny_weights / "tcsdl-b4.pt"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    code, err = decode(["decompress", movie.with_suffix(".tcs"), "-o", tmp_path / "x.tif", "--method", "tcsdl"], capsys)
    assert code == 1 and err.startswith("error:") and "sha256" in err
    assert not (tmp_path / "x.tif").exists()


def test_B_without_weights_falls_back_to_gap_tv(tiny_weights, movie, tmp_path, capsys):
    """The default movie decoder needs no weights (its first pass is the normalised
    measurement); tcsdl, and movie-learned's first pass, fall back to GAP-TV with a warning."""
    main(["compress", str(movie), "-B", "3", "-q"])
    out = tmp_path / "c.tif"
    code, err = decode(["decompress", movie.with_suffix(".tcs"), "-o", out, "-q", "--threads", "1"], capsys)
    assert code == 0 and err.strip() == ""
    report = json.loads((tmp_path / "c.tif.emcodec.json").read_text())
    assert report["method"] == "movie" and report["first_pass"] == "measurement"
    code, err = decode(["decompress", movie.with_suffix(".tcs"), "-o", tmp_path / "d.tif", "-q", "--threads", "1",
                        "--method", "tcsdl"], capsys)
    assert code == 0 and "decoding with gap-tv instead" in err
    assert json.loads((tmp_path / "d.tif.emcodec.json").read_text())["method"] == "gap-tv"


def test_flagging_picks_out_a_bad_group():
    from emcodec.codec import flag_residuals

    assert flag_residuals([0.05, 0.06, 0.05, 0.4]) == [False, False, False, True]
    assert flag_residuals([0.05, 0.05, 0.2, 0.05]) == [False, False, True, False]
    assert flag_residuals([0.05, 0.06, 0.07]) == [False, False, False]
