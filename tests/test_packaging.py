"""The built wheel, installed into a fresh virtualenv without the dev extras, runs the demo from anywhere.

The wheel is built from a copy of the source (so nothing left over in the checkout's build/ can
sneak in) and installed with the package index switched off, from the wheelhouse `make test` builds
beforehand (`make wheelhouse`: the runtime dependencies' wheels, and setuptools for the build). Run
outside make, the test builds that wheelhouse itself the first time, through pip's configured index.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sandbox.image import load_recipe

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "pipeline", "sandbox", "workers", "examples",
           "bench", "deploy")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".cache", "results", ".pytest_cache", ".autofix",
                                 "*.egg-info")


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def wheelhouse(scratch: Path) -> Path:
    folder = Path(os.environ.get("AUTOFIX_TEST_WHEELHOUSE", Path(sys.prefix) / "wheelhouse"))
    if not (folder / ".stamp").is_file():
        requirements = scratch / "runtime-requirements.txt"
        deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
        requirements.write_text("\n".join(deps) + "\n")
        run(sys.executable, "-m", "pip", "wheel", "-q", "-w", folder, "-r", requirements, "setuptools>=69", "wheel",
            cwd=scratch, timeout=1200)
        (folder / ".stamp").touch()
    return folder


def clean_env(**extra: str) -> dict[str, str]:
    drop = ("AUTOFIX_", "PYTHON", "VIRTUAL_ENV", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(drop)}, **extra}


@pytest.mark.slow
def test_the_wheel_installs_without_dev_extras_and_runs_the_demo_outside_the_checkout(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=IGNORED)
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = wheelhouse(tmp_path)
    offline = ["--no-index", "--find-links", str(wheels)]
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *offline, "-w", tmp_path / "dist", source,
        cwd=tmp_path, env=clean_env())
    (wheel,) = (tmp_path / "dist").glob("autofix_pipeline-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", *offline, wheel, cwd=tmp_path,
        env=clean_env())

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env(PATH=f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert run("autofix", "--version", cwd=elsewhere, env=env).startswith("autofix ")
    where = run(venv / "bin" / "python", "-c", "import pipeline, pytest; print(pipeline.__file__)", cwd=elsewhere,
                env=env)
    assert where.startswith(str(venv))  # the installed copy, not the checkout
    no_dev = subprocess.run([venv / "bin" / "python", "-c", "import mypy"], capture_output=True, check=False)
    assert no_dev.returncode != 0  # the dev extras are not there

    # The sandbox image's recipe comes from the package too, hashed as the checkout's: the docker
    # backend of an installed autofix (the deployment's image is one) finds the same image.
    folder, digest = run(venv / "bin" / "python", "-c",
                         "from sandbox.image import load_recipe; r = load_recipe(); print(r.folder, r.digest)",
                         cwd=elsewhere, env=env).split()
    assert folder.startswith(str(venv)) and digest == load_recipe().digest

    # The examples, migrations and templates come from the package: approving renders the PR body.
    report = json.loads(run("autofix", "demo", "--json", "--approve-all", cwd=elsewhere, env=env))
    verified = [row for row in report["issues"] if row["verification"] == "verified"]
    assert len(verified) >= 4
    assert report["summary"]["published"] == len(verified)
    assert not Path(report["workdir"]).exists()  # cleaned up
