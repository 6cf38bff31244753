"""The `emcodec` command's entry point: Ctrl-C or SIGTERM while the program is still starting
up (importing click, numpy, the command line) is one line too, never a traceback."""

from __future__ import annotations

import signal
import sys


def _terminated(signum, frame):
    raise SystemExit(128 + signal.SIGTERM)


def main() -> int:
    previous = signal.signal(signal.SIGTERM, _terminated)  # cli.main installs its own once loaded
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        return 130
    except SystemExit as exc:
        sys.stderr.write("error: terminated (SIGTERM)\n")
        return int(exc.code) if isinstance(exc.code, int) else 143
    finally:
        signal.signal(signal.SIGTERM, previous)
    return run()


if __name__ == "__main__":
    sys.exit(main())
