"""The shipped weights in one place for a checkout and a wheel; missing or malformed weights
are clear errors (issue 16, item 5)."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile

from emcodec.cli import main

ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("torch")


def test_a_built_wheel_carries_the_weights_and_finds_them(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("emcodec", "weights"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-q", "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("emcodec-*.whl")
    manifest = json.loads((ROOT / "weights" / "manifest.json").read_text())["weights"]
    prior = json.loads((ROOT / "weights" / "prior.json").read_text())  # the movie decoder's learned prior
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert "emcodec/weights/manifest.json" in names and "emcodec/weights/prior.json" in names
        for entry in [*manifest.values(), prior]:
            data = z.read(f"emcodec/weights/{entry['file']}")
            assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        z.extractall(tmp_path / "site")
    env = {k: v for k, v in os.environ.items() if k != "EMCODEC_WEIGHTS"}
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import emcodec; "
             "from emcodec.shipped import weights_dir; print(emcodec.__file__); print(weights_dir()); "
             "print(sorted(p.name for p in weights_dir().glob('*.pt')))")
    out = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "site")], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    package, folder, found = out.stdout.splitlines()
    assert package.startswith(str(tmp_path / "site")) and folder == str(tmp_path / "site" / "emcodec" / "weights")
    assert found == str(sorted([*(e["file"] for e in manifest.values()), prior["file"]]))


def small_tcs(tmp_path, B, capsys):
    frames = np.random.default_rng(0).poisson(40, (B, 16, 24)).astype(np.uint16)
    tifffile.imwrite(tmp_path / f"b{B}.tif", frames, photometric="minisblack")
    assert main(["compress", str(tmp_path / f"b{B}.tif"), "-B", str(B), "-q"]) == 0
    capsys.readouterr()
    return tmp_path / f"b{B}.tcs"


def decode(tcs, capsys):
    code = main(["decompress", str(tcs), "--method", "tcsdl", "--device", "cpu", "-q", "--force"])
    return code, capsys.readouterr().err


def test_missing_weights_for_a_shipped_B_are_an_error_not_gap_tv(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "no-weights"
    empty.mkdir()
    monkeypatch.setenv("EMCODEC_WEIGHTS", str(empty))
    code, err = decode(small_tcs(tmp_path, 10, capsys), capsys)
    assert code == 1 and err.startswith("error: no TCS-DL weights for B=10") and "ships weights" in err
    assert err.count("\n") == 1
    code, err = decode(small_tcs(tmp_path, 4, capsys), capsys)  # never shipped: GAP-TV, with a warning
    assert code == 0 and "decoding with gap-tv instead" in err


def test_an_unreadable_weights_file_for_a_shipped_B_is_an_error_not_gap_tv(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "w"
    folder.mkdir()
    shutil.copy(ROOT / "weights" / "manifest.json", folder / "manifest.json")
    (folder / "tcsdl-b10.pt").write_bytes(b"not a torch file")  # a damaged copy
    monkeypatch.setenv("EMCODEC_WEIGHTS", str(folder))
    code, err = decode(small_tcs(tmp_path, 10, capsys), capsys)
    assert code == 1 and err.startswith("error: ") and "does not match the manifest" in err and err.count("\n") == 1


@pytest.mark.parametrize("entry, message", [
    ({"sha256": "0" * 64, "architecture": {"name": "tcsdl-v1", "B": 10, "width": 32}}, '"file"'),
    ("tcsdl-b10.pt", "an object is needed, not str"),
    ({"file": "tcsdl-b10.pt", "B": 20, "sha256": "0" * 64,
      "architecture": {"name": "tcsdl-v1", "B": 20, "width": 32}}, "says B=20 but is listed under B=10"),
    ({"file": "../elsewhere.pt", "sha256": "0" * 64, "architecture": {"name": "tcsdl-v1", "width": 32}}, '"file"'),
    ({"file": "tcsdl-b10.pt", "sha256": "0" * 64}, '"architecture"'),
])
def test_a_malformed_manifest_entry_is_a_clear_error(tmp_path, capsys, monkeypatch, entry, message):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({"weights": {"10": entry}}))
    monkeypatch.setenv("EMCODEC_WEIGHTS", str(folder))
    code, err = decode(small_tcs(tmp_path, 10, capsys), capsys)
    assert code == 1 and "malformed weights manifest entry '10'" in err and message in err, err


def test_a_manifest_that_is_not_an_object_is_a_clear_error(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / "manifest.json").write_text("[1, 2]")
    monkeypatch.setenv("EMCODEC_WEIGHTS", str(folder))
    code, err = decode(small_tcs(tmp_path, 10, capsys), capsys)
    assert code == 1 and "malformed weights manifest" in err


def test_the_shipped_list_matches_the_checkout_manifest():
    from emcodec.model import available_B
    from emcodec.shipped import CHECKOUT, SHIPPED_B

    assert sorted(SHIPPED_B) == available_B(CHECKOUT)
