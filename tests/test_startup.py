"""Ctrl-C while emcodec is still starting up is one line, not a traceback (issue 16, item 8)."""

import subprocess
import sys

# Ctrl-C arrives while the command line is being imported: the import itself raises, as
# Python does when SIGINT lands mid-import (a hook in the import, not a timed signal).
PROBE = """
import builtins, sys
real = builtins.__import__
def interrupted(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "cli" and level == 1 or name == "emcodec.cli":
        raise KeyboardInterrupt
    return real(name, globals, locals, fromlist, level)
builtins.__import__ = interrupted
from emcodec.entry import main
sys.exit(main())
"""


def test_ctrl_c_during_start_up_prints_one_line():
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True)
    assert proc.returncode == 130 and proc.stderr == "error: interrupted\n"


def test_python_m_emcodec_still_runs_the_command_line():
    proc = subprocess.run([sys.executable, "-m", "emcodec", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and "emcodec" in proc.stdout
