"""The licence pyproject.toml declares is the one the LICENSE file holds (issue 18, item 7)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_license_file_is_the_mit_licence_pyproject_declares():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    text = (ROOT / "LICENSE").read_text()
    assert declared == "MIT"
    assert text.startswith("MIT License")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text


def test_gpl_code_is_only_in_an_extra_that_says_so():
    """RosettaSciIO (GPL) stays out of the core dependencies and [decode]; its extra says so."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    core = " ".join(project["dependencies"] + extras["decode"]).lower()
    assert "rosettasciio" not in core
    source = (ROOT / "pyproject.toml").read_text()
    line = next(i for i, ln in enumerate(source.splitlines()) if ln.startswith("formats ="))
    comment = "\n".join(source.splitlines()[max(0, line - 3):line])
    assert "GPL" in comment
