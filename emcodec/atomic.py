"""Outputs that appear whole or not at all: write to a temporary file, then rename.

An interrupted or failed run leaves the target untouched and no half-written file
under its name; the temporary file sits in the target's directory so the rename is atomic.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable

from .errors import OutputError


def check_target(target, *, force: bool, inputs: Iterable = ()) -> Path:
    """Refuse to overwrite an input (even with force) or an existing file (without force)."""
    target = Path(target)
    for src in inputs:
        src = Path(src)
        if target.exists() and src.exists() and target.samefile(src):
            raise OutputError(f"{target}: refusing to overwrite the input file")
        if not target.exists() and target.resolve() == src.resolve():
            raise OutputError(f"{target}: refusing to overwrite the input file")
    if target.is_dir():
        raise OutputError(f"{target}: is a directory")
    if target.exists() and not force:
        raise OutputError(f"{target}: already exists (use --force to overwrite)")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"{target}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"{target}: directory {parent} is not writable")
    return target


def temporary_path(target) -> Path:
    """A fresh, hidden name beside `target` for the file being written."""
    target = Path(target)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent or ".")
    except OSError as exc:
        raise OutputError(f"{target}: cannot write in {target.parent} ({exc.strerror})") from None
    os.close(fd)
    return Path(name)


def commit(temp: Path, target, *, force: bool) -> None:
    """Move a finished temporary file onto its target."""
    target = Path(target)
    if target.exists() and not force:
        temp.unlink(missing_ok=True)
        raise OutputError(f"{target}: already exists (use --force to overwrite)")
    try:
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, target)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise OutputError(f"{target}: cannot be written ({exc.strerror})") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
