"""SIGTERM, part-file names, stale part files and a full disk (issue 16, item 8).

Signals are sent from inside the pipeline (a patched step kills its own process), never by
timing.
"""

import errno
import os
import signal

import numpy as np
import pytest
import tifffile

from emcodec import atomic, codec, container
from emcodec.cli import main


@pytest.fixture
def tif(tmp_path):
    path = tmp_path / "m.tif"
    tifffile.imwrite(path, np.random.default_rng(0).poisson(30, (12, 16, 24)).astype(np.uint16))
    return path


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def run(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def kill_self_on_call(monkeypatch, owner, name, call=2):
    real, calls = getattr(owner, name), []

    def patched(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, patched)


def test_sigterm_during_compress_removes_the_part_file(tif, capsys, monkeypatch):
    kill_self_on_call(monkeypatch, container.TcsWriter, "write_parts")
    code, err = run(["compress", tif, "-B", 4, "-q"], capsys)
    assert code == 143 and err == "error: terminated (SIGTERM); unfinished output removed\n"
    assert not tif.with_suffix(".tcs").exists() and leftovers(tif.parent) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is only ours while running


def test_sigterm_during_decompress_removes_the_part_files(tif, capsys, monkeypatch):
    assert run(["compress", tif, "-B", 4, "-q"], capsys)[0] == 0
    kill_self_on_call(monkeypatch, codec, "to_dtype")
    code, err = run(["decompress", tif.with_suffix(".tcs"), "-o", tif.parent / "d.tif", "--method", "gap-tv",
                     "-q"], capsys)
    assert code == 143 and err.count("\n") == 1
    assert not (tif.parent / "d.tif").exists() and leftovers(tif.parent) == []


def test_part_files_name_host_and_pid_and_only_dead_ones_are_removed(tmp_path):
    target = tmp_path / "out.tcs"
    mine = atomic.temporary_path(target)
    assert mine.name.startswith(f".out.tcs.{atomic._host()}.{os.getpid()}.") and mine.exists()
    dead_pid = 2**22 + 12345  # above Linux's pid_max: no such process
    dead = tmp_path / f".out.tcs.{atomic._host()}.{dead_pid}.0123abcd.part"
    live = tmp_path / f".out.tcs.{atomic._host()}.1.0123abcd.part"  # pid 1 always exists
    other_host = tmp_path / f".out.tcs.elsewhere-node7.{dead_pid}.0123abcd.part"
    other_target = tmp_path / f".other.tcs.{atomic._host()}.{dead_pid}.0123abcd.part"
    for p in (dead, live, other_host, other_target):
        p.write_bytes(b"x")
    second = atomic.temporary_path(target)
    assert not dead.exists()
    assert live.exists() and other_host.exists() and other_target.exists() and mine.exists() and second.exists()


def test_a_full_disk_is_one_line_and_leaves_nothing(tif, capsys, monkeypatch):
    real, calls = container.TcsWriter._write, []

    def full(self, data):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, data)

    monkeypatch.setattr(container.TcsWriter, "_write", full)
    code, err = run(["compress", tif, "-B", 4, "-q"], capsys)
    assert code == 1 and err == "error: No space left on device\n"
    assert not tif.with_suffix(".tcs").exists() and leftovers(tif.parent) == []
