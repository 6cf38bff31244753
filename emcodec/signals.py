"""SIGTERM handled like Ctrl-C: cluster schedulers stop jobs with it.

The handler raises `Terminated` in the main thread, so every `with` block unwinds as for
KeyboardInterrupt: the part file is removed and nothing is left under the output's name.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

EXIT_TERMINATED = 128 + signal.SIGTERM  # 143, what a shell reports for a SIGTERM'd process


class Terminated(BaseException):
    """SIGTERM arrived (a BaseException: no `except Exception` may swallow it)."""


def _raise(signum, frame):
    raise Terminated()


@contextmanager
def sigterm_unwinds():
    """Within the block, SIGTERM raises Terminated (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
