"""One suite, every isolating backend: the `sandbox` fixture is bwrap, then docker (Podman here).

`repo_env` builds a repo environment the way verification does (agreed with the environment work):
wheels downloaded on the host into a folder, then inside the sandbox, with no network and that
folder as the workdir, `<sandbox.python> -m venv venv` and an offline `pip install`. Later runs
mount the folder read-only and use `venv/bin/python`, so the venv must work at the same path in a
fresh sandbox. Each backend gets its own: a venv points at the interpreter that made it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.ports import Limits, Sandbox
from sandbox.config import DockerConfig

BACKENDS = ("bwrap", "docker")


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build_sandbox(backend: str, request: pytest.FixtureRequest, ro_paths: tuple[Path, ...] = ()) -> Sandbox:
    """A sandbox of `backend` that mounts `ro_paths` in every run."""
    if backend == "docker":
        config: DockerConfig = request.getfixturevalue("docker_config")
        return config.model_copy(update={"extra_ro_paths": ro_paths}).build()
    from sandbox.config import BwrapConfig

    return BwrapConfig(extra_ro_paths=ro_paths).build()


@pytest.fixture(scope="session")
def sandbox(backend: str, request: pytest.FixtureRequest) -> Sandbox:
    return build_sandbox(backend, request)


@pytest.fixture
def sandbox_mounting(backend: str, request: pytest.FixtureRequest) -> Callable[..., Sandbox]:
    """Builds a sandbox of this backend that mounts the given paths read-only in every run."""

    def make(*ro_paths: Path) -> Sandbox:
        return build_sandbox(backend, request, ro_paths)

    return make


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest and its dependencies as wheels, downloaded once from the configured index."""
    folder = tmp_path_factory.mktemp("wheels")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--only-binary=:all:", "--dest", str(folder),
         f"pytest=={pytest.__version__}"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.fixture(scope="session")
def repo_env(sandbox: Sandbox, wheelhouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An environment folder (venv/ made inside the sandbox, wheels/ beside it) for this backend."""
    env = tmp_path_factory.mktemp(f"env-{sandbox.name}")
    env.chmod(0o755)  # read by the sandbox user in later runs
    (env / "wheels").mkdir()
    for wheel in wheelhouse.iterdir():
        (env / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    limits = Limits(timeout_s=300)
    made = sandbox.run(env, [sandbox.python, "-m", "venv", "venv"], limits)
    assert made.exit_code == 0, made.output
    python = str(env / "venv" / "bin" / "python")
    installed = sandbox.run(env, [python, "-m", "pip", "install", "--no-index", "--find-links", "wheels",
                                  "--disable-pip-version-check", "pytest"], limits)
    assert installed.exit_code == 0, installed.output
    return env
