"""Build hook: a wheel carries the shipped weights inside the package.

The weights live once, in the top-level weights/ folder (the design card's place); a
non-editable build copies them to emcodec/weights/ in the wheel, where
emcodec.model.weights.weights_dir() finds them. Editable installs read weights/ directly.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

WEIGHTS = Path(__file__).resolve().parent / "weights"
PATTERNS = ("manifest.json", "prior.json", "evaluation.json", "README.md", "*.pt")


class BuildWithWeights(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "emcodec" / "weights"
        for pattern in PATTERNS:
            for src in sorted(WEIGHTS.glob(pattern)):
                self.mkpath(str(target))
                self.copy_file(str(src), str(target / src.name))


setup(cmdclass={"build_py": BuildWithWeights})
