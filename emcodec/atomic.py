"""Outputs that appear whole or not at all: write to a temporary file, then rename.

An interrupted or failed run leaves the target untouched and no half-written file
under its name; the temporary file sits in the target's directory so the rename is atomic.
"""

from __future__ import annotations

import os
import secrets
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
        raise OutputError(f"'{target}' is a directory")
    if os.path.lexists(target) and not force:
        raise OutputError(f"'{target}' exists; use --force to overwrite")
    parent = target.resolve().parent
    if not parent.is_dir():
        raise OutputError(f"cannot write '{target}': directory '{parent}' does not exist")
    return target


def temporary_path(target) -> Path:
    """A fresh, hidden `.name.<hex>.part` beside `target`, created exclusively."""
    target = Path(target)
    parent = target.resolve().parent
    temp = parent / f".{target.name}.{secrets.token_hex(4)}.part"
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
