"""Options and states that used to end as internal errors, and warnings that leaked onto
stderr (issue 16, item 9)."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tifffile

from emcodec.cli import main


@pytest.fixture
def tif(tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, np.random.default_rng(0).poisson(30, (8, 16, 24)).astype(np.uint16),
                     photometric="minisblack")
    return path


@pytest.mark.parametrize("args, message", [
    (["--gain", "inf"], "--gain must be a finite number, got inf"),
    (["--gain", "-1"], "--gain must be positive"),
    (["--gain", "1", "--offset", "nan"], "--offset must be a finite number, got nan"),
    (["--gain", "1", "--read-noise", "nan"], "--read-noise must be a finite number, got nan"),
    (["--gain", "1", "--read-noise", "-2"], "--read-noise must be >= 0"),
])
def test_non_finite_detector_options_are_one_clear_line(tif, capsys, args, message):
    code = main(["compress", str(tif), "-B", "4", *args])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"error: {message}") and err.count("\n") == 1
    assert not tif.with_suffix(".tcs").exists()


def test_compress_to_a_closed_stdout_is_one_line(tif):
    proc = subprocess.run([sys.executable, "-m", "emcodec", "compress", str(tif), "-o", "-", "-q"],
                          capture_output=False, stderr=subprocess.PIPE, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 1 and proc.stderr.decode() == "error: standard output is closed; give -o FILE\n"


def test_an_all_zero_movie_prints_nothing_on_stderr(tmp_path):
    path = tmp_path / "zero.tif"
    tifffile.imwrite(path, np.zeros((20, 16, 24), np.uint16), photometric="minisblack")
    proc = subprocess.run([sys.executable, "-m", "emcodec", "compress", str(path), "-B", "10", "-q"],
                          capture_output=True, env={**os.environ, "PYTHONWARNINGS": "always"})
    assert proc.returncode == 0 and proc.stderr.decode() == ""
