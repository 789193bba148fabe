"""Running the real `autofix` command line in a subprocess, with a clean AUTOFIX_* environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
AUTOFIX = [sys.executable, "-m", "pipeline"]


def autofix(*args: str, home: Path | None, cwd: Path | None = None,
            env: dict[str, str] | None = None, sandbox: str | None = "bwrap") -> subprocess.CompletedProcess[str]:
    """Run autofix with none of this process's AUTOFIX_* variables; AUTOFIX_HOME=home unless home is None.

    The sandbox is bwrap unless `env` says otherwise: these tests are about the command line, and on
    a host where a container engine answers `auto` would pick docker, whose per-run start-up makes
    them several times slower; tests/contract/ runs verification on every backend. `sandbox=None`
    leaves the choice to the configuration file.
    """
    environ = clean_env(sandbox)
    if home is not None:
        environ["AUTOFIX_HOME"] = str(home)
    environ.update(env or {})
    folder = cwd or home
    assert folder is not None
    return subprocess.run([*AUTOFIX, *args], cwd=folder, env=environ, capture_output=True, text=True,
                          timeout=300)


def clean_env(sandbox: str | None = "bwrap", **extra: str) -> dict[str, str]:
    """This process's environment without AUTOFIX_* variables, AUTOFIX_SANDBOX=sandbox, plus `extra`."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    if sandbox is not None:
        environ["AUTOFIX_SANDBOX"] = sandbox
    environ.update(extra)
    return environ


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}).stdout
