"""Batches (issue 18, item 3): many inputs, -o DIR mirroring the tree, --skip-existing,
--jobs, --scheduler on a Dask LocalCluster; a bad file fails alone; table, --json, exit code."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from emcodec.cli import main

distributed = pytest.importorskip("distributed")


def _movie(path, seed):
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, np.random.default_rng(seed).poisson(20, (12, 32, 32)).astype(np.uint16))


@pytest.fixture
def session(tmp_path):
    """session/a/m1.tif, session/a/b/m2.tif, session/m3.tif and session/bad.tif (not a TIFF)."""
    root = tmp_path / "session"
    for i, rel in enumerate(["a/m1.tif", "a/b/m2.tif", "m3.tif"]):
        _movie(root / rel, i)
    (root / "bad.tif").write_bytes(b"not a tiff at all")
    return root


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as c:
        yield c


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr().out
    return code, out


def test_a_folder_compresses_on_a_cluster_mirrored_and_a_bad_file_fails_alone(session, tmp_path, cluster, capsys):
    out = tmp_path / "archive"
    code, text = _run(["compress", str(session), "-B", "4", "-o", str(out), "--scheduler",
                       cluster.scheduler_address, "--json", "-q"], capsys)
    results = {r["input"].split("session/")[1]: r for r in json.loads(text)}
    assert code == 1  # some failed
    assert {k: r["status"] for k, r in results.items()} == {"a/m1.tif": "ok", "a/b/m2.tif": "ok", "m3.tif": "ok",
                                                             "bad.tif": "failed"}
    assert "not a readable TIFF" in results["bad.tif"]["error"]
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["a/b/m2.tcs", "a/m1.tcs", "m3.tcs"]  # mirrored; nothing for bad.tif, no part files
    assert results["a/m1.tif"]["frames"] == 12 and results["a/m1.tif"]["ratio"] > 1

    # a re-run skips what exists: only the bad file is tried again
    code, text = _run(["compress", str(session), "-B", "4", "-o", str(out), "--skip-existing"], capsys)
    assert code == 1
    assert "4 files: 0 ok, 3 skipped, 1 failed" in text
    (session / "bad.tif").unlink()
    _movie(session / "bad.tif", 9)
    code, text = _run(["compress", str(session), "-B", "4", "-o", str(out), "--skip-existing"], capsys)
    assert code == 0 and "4 files: 1 ok, 3 skipped, 0 failed" in text
    assert (out / "bad.tcs").exists()


def test_many_files_and_globs_without_force_keep_existing_outputs(session, tmp_path, capsys):
    code, _ = _run(["compress", str(session / "m3.tif"), str(session / "a" / "m1.tif"), "-B", "4", "-q"], capsys)
    assert code == 0 and (session / "m3.tcs").exists() and (session / "a" / "m1.tcs").exists()
    code, text = _run(["compress", str(session / "**" / "m*.tif"), "-B", "4", "-o", str(tmp_path / "g")], capsys)
    assert code == 0
    assert sorted(str(p.relative_to(tmp_path / "g")) for p in (tmp_path / "g").rglob("*.tcs")) == \
        ["a/b/m2.tcs", "a/m1.tcs", "m3.tcs"]
    before = (session / "m3.tcs").read_bytes()
    code, text = _run(["compress", str(session / "m3.tif"), str(session / "a" / "m1.tif"), "-B", "8"], capsys)
    assert code == 1 and "use --force" in text and (session / "m3.tcs").read_bytes() == before


pytest.importorskip("torch")


def test_decompress_batch_in_local_processes_with_a_damaged_file(session, tmp_path, cluster, capsys):
    archive = tmp_path / "archive"
    (session / "bad.tif").unlink()
    assert main(["compress", str(session), "-B", "4", "-o", str(archive), "--scheduler",
                 cluster.scheduler_address, "-q"]) == 0
    damaged = bytearray((archive / "m3.tcs").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    (archive / "m3.tcs").write_bytes(bytes(damaged))
    code, text = _run(["decompress", str(archive), "-o", str(tmp_path / "decoded"), "--to", ".h5", "--method",
                       "gap-tv", "--jobs", "2", "--json", "-q"], capsys)
    results = {r["input"].split("archive/")[1]: r for r in json.loads(text)}
    assert code == 1
    assert {k: r["status"] for k, r in results.items()} == {"a/m1.tcs": "ok", "a/b/m2.tcs": "ok", "m3.tcs": "failed"}
    assert "checksum" in results["m3.tcs"]["error"]
    assert (tmp_path / "decoded" / "a" / "b" / "m2.decoded.h5").exists()
    assert not (tmp_path / "decoded" / "m3.decoded.h5").exists()
