"""Outputs that appear whole or not at all: write to a temporary file, then rename.

An interrupted or failed run leaves the target untouched and no half-written file
under its name; the temporary file sits in the target's directory so the rename is atomic.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
from pathlib import Path
from typing import Iterable

from .errors import OutputError


DIRECTORY_OUTPUTS = (".zarr",)  # outputs that are folders (a zarr store): replaced whole, like a file


def check_target(target, *, force: bool, inputs: Iterable = ()) -> Path:
    """Refuse to overwrite an input (even with force) or an existing file (without force)."""
    target = Path(target)
    for src in inputs:
        src = Path(src)
        if target.exists() and src.exists() and target.samefile(src):
            raise OutputError(f"{target}: refusing to overwrite the input file")
        if not target.exists() and target.resolve() == src.resolve():
            raise OutputError(f"{target}: refusing to overwrite the input file")
    if target.is_dir() and target.suffix.lower() not in DIRECTORY_OUTPUTS:
        raise OutputError(f"'{target}' is a directory")
    if os.path.lexists(target) and not force:
        raise OutputError(f"'{target}' exists; use --force to overwrite")
    parent = target.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"cannot write '{target}': directory '{parent}' does not exist")
    return target


def _host() -> str:
    """This machine's name as one file-name field (no dots)."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname() or "host")


def _alive(pid: int) -> bool:
    """Whether a process with this id exists here (one we may not signal still exists)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


def remove_stale(target) -> list[Path]:
    """Remove part files of `target` left by killed runs: only those written on this host by
    a process that no longer exists (a re-queued cluster job's live part file is kept)."""
    target = Path(target)
    parent = target.resolve().parent
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?P<host>[A-Za-z0-9_-]+)\.(?P<pid>\d+)\.[0-9a-f]{{8}}\.part$")
    removed = []
    try:
        candidates = list(parent.glob(f".{glob_escape(target.name)}.*.part"))
    except OSError:
        return removed
    for path in candidates:
        m = pattern.match(path.name)
        if m and m["host"] == _host() and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass
    return removed


def glob_escape(name: str) -> str:
    return re.sub(r"([*?[])", r"[\1]", name)


def temporary_path(target) -> Path:
    """A fresh, hidden `.name.<host>.<pid>.<hex>.part` beside `target`, created exclusively.

    Host and process id let a later run tell a killed run's leftover (removed) from another
    live run's file (kept)."""
    target = Path(target)
    parent = target.resolve().parent
    remove_stale(target)
    temp = parent / f".{target.name}.{_host()}.{os.getpid()}.{secrets.token_hex(4)}.part"
    try:
        # O_EXCL: never clobber someone else's file; 0o666 lets the umask decide permissions
        os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as exc:
        raise OutputError(f"cannot write to directory '{parent}': {exc.strerror}") from None
    return temp


def commit(temp, target, *, force: bool) -> None:
    """Move a finished temporary file onto its target (the temporary is removed on failure)."""
    temp, target = Path(temp), Path(target)
    try:
        fd = os.open(temp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the rename is only atomic across a crash if the data are on disk
        finally:
            os.close(fd)
        if not force and os.path.lexists(target):
            raise OutputError(f"'{target}' exists; use --force to overwrite")
        os.replace(temp, target)
    except OutputError:
        temp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"cannot write '{target}': {exc.strerror}") from None


class AtomicFile:
    """A binary file opened for writing that replaces `target` only when the block succeeds."""

    def __init__(self, target, *, force: bool = False):
        self.target = Path(target)
        self.force = force
        self.temp = temporary_path(self.target)
        self._f = None

    def __enter__(self):
        try:
            self._f = open(self.temp, "wb")
        except OSError as exc:
            self.temp.unlink(missing_ok=True)
            raise OutputError(f"{self.target}: cannot be written ({exc.strerror})") from None
        return self._f

    def __exit__(self, exc_type, exc, tb):
        try:
            self._f.close()
        except OSError:
            if exc_type is None:
                self.temp.unlink(missing_ok=True)
                raise
        if exc_type is not None:
            self.temp.unlink(missing_ok=True)
            return False
        commit(self.temp, self.target, force=self.force)
        return False
