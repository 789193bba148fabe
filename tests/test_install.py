"""A plain `pip install .` of autofix (no dev extras) verifies the demo's candidates: pytest, which runs
every reproduction, is a runtime dependency. Needs the package index, so it is marked `network`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sandbox.process import base_python

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.network
def test_pip_install_without_dev_extras_verifies_the_demo_candidates(tmp_path: Path) -> None:
    source = tmp_path / "autofix"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".venv", ".git", ".autofix", "bench", "build",
                                                                "*.egg-info", "__pycache__", ".mypy_cache",
                                                                ".pytest_cache", ".ruff_cache"))
    venv = tmp_path / "venv"
    subprocess.run([base_python(), "-m", "venv", str(venv)], check=True)
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(source)],
                               capture_output=True, text=True, timeout=1800)
    assert installed.returncode == 0, installed.stderr[-2000:]
    extras = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
                            capture_output=True, text=True, check=True)
    names = {p["name"].lower() for p in json.loads(extras.stdout)}
    assert {"pytest", "pyflakes"} <= names and not names & {"mypy", "ruff", "pytest-timeout"}

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOFIX_", "VIRTUAL_ENV", "PYTHON"))}
    env["AUTOFIX_HOME"] = str(tmp_path / "home")
    demo = subprocess.run([str(venv / "bin" / "autofix"), "demo", "--json", "--examples", str(ROOT / "examples")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert demo.returncode == 0, demo.stderr[-3000:]
    report = json.loads(demo.stdout)
    assert report["summary"]["verified"] == 4 and report["summary"]["awaiting_review"] == 4
