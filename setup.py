"""Packaging glue pyproject.toml cannot express: the wheel carries copies of examples/, bench/ and
deploy/sandbox/ (the sandbox image's recipe).

`autofix demo`, `autofix bench` and the docker sandbox need them after `pip install .` or
`pipx install .`, where no checkout is around; they are copied into the built package as
`pipeline/_bundled/{examples,bench,sandbox}` (pipeline/bundled.py finds them there). An editable
install reads them from the checkout instead.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
# Name in the package: folder in the checkout (pipeline/bundled.py CHECKOUT_PATHS).
BUNDLED = {"examples": "examples", "bench": "bench", "sandbox": "deploy/sandbox"}
# Caches, results and bytecode are the machine's, not the package's.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".cache", "results", ".pytest_cache", ".autofix")


class BuildPyWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "pipeline" / "_bundled"
        for name, source in BUNDLED.items():
            shutil.rmtree(target / name, ignore_errors=True)
            shutil.copytree(ROOT / source, target / name, ignore=IGNORED)


setup(cmdclass={"build_py": BuildPyWithData})
