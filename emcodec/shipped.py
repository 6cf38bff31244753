"""Where the shipped TCS-DL weights are, for a git checkout and for an installed wheel.

The files live once, in the top-level weights/ folder; building a wheel copies them into
the package as emcodec/weights/ (setup.py). No torch here, so compress-only installs and the
packaging test can ask without loading it.
"""

from __future__ import annotations

import os
from pathlib import Path

# The B values emcodec ships weights for (weights/manifest.json in the source tree). For these
# a missing or unreadable file is an error, never a silent fall back to GAP-TV.
SHIPPED_B = (10, 20, 30)
PACKAGED = Path(__file__).resolve().parent / "weights"  # inside an installed wheel
CHECKOUT = Path(__file__).resolve().parents[1] / "weights"  # a checkout or an editable install


def weights_dir() -> Path:
    """$EMCODEC_WEIGHTS, else the weights an installed wheel carries, else the checkout's weights/."""
    env = os.environ.get("EMCODEC_WEIGHTS")
    if env:
        return Path(env)
    return PACKAGED if (PACKAGED / "manifest.json").exists() else CHECKOUT
