"""Which sandbox backend to build, as a discriminated union of configs, and the one factory.

Each config builds its own backend and imports that backend's module (and its SDK) only then, so a
host without the docker SDK or without bubblewrap can still load the others. `make_sandbox("auto")`
picks docker when an engine answers and has the sandbox image, else bwrap, logs which and why, and
never falls back to `local`, which isolates nothing and must be asked for by name. A backend that is
chosen but cannot run here raises SandboxUnavailable, a permanent error: retrying does not install it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from pipeline.errors import ConfigError, SandboxUnavailable
from pipeline.ports import Sandbox

if TYPE_CHECKING:
    from sandbox.docker import DockerSandbox

log = structlog.get_logger(__name__)

DEFAULT_SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", "/opt")


class BwrapConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["bwrap"] = "bwrap"
    executable: Path | None = None  # None: `bwrap` on PATH
    # Mounted read-only; the caller's Python (venv and base install) is always added.
    system_paths: tuple[str, ...] = DEFAULT_SYSTEM_PATHS
    extra_ro_paths: tuple[Path, ...] = ()
    tmp_size_mb: int | None = None  # cap on the private /tmp (bwrap >= 0.8); None: kernel default

    def build(self) -> Sandbox:
        from sandbox.bwrap import BubblewrapSandbox

        return BubblewrapSandbox(self)


class LocalConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["local"] = "local"

    def build(self) -> Sandbox:
        from sandbox.local import LocalSandbox

        return LocalSandbox()


class DockerConfig(BaseModel):
    """A throwaway container per run, over the docker SDK (Docker Engine or Podman's compatible API)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["docker"] = "docker"
    # None: DOCKER_HOST (read by the SDK), else Docker's socket, else rootful Podman's.
    base_url: str | None = None
    # None: the image `autofix sandbox image` built from `recipe`, found by the recipe's hash.
    image: str | None = None
    recipe: Path | None = None  # None: deploy/sandbox/ of this checkout
    python: str = "/usr/bin/python3"  # the image's interpreter
    uid: int = 10001  # the image's unprivileged user (deploy/sandbox/recipe.toml)
    gid: int = 10001
    cpus: float = 1.0
    tmp_size_mb: int = 512
    extra_ro_paths: tuple[Path, ...] = ()
    api_timeout_s: float = 30.0

    def build(self) -> DockerSandbox:
        from sandbox.docker import DockerSandbox

        return DockerSandbox(self)


AnyConfig = DockerConfig | BwrapConfig | LocalConfig
SandboxConfig = Annotated[AnyConfig, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[AnyConfig] = TypeAdapter(SandboxConfig)


def parse_config(data: object) -> AnyConfig:
    """A backend config from plain data (a TOML table), chosen by its `kind`."""
    return _ADAPTER.validate_python(data)


def build_sandbox(config: AnyConfig) -> Sandbox:
    return config.build()


def make_sandbox(choice: str, ro_paths: Sequence[Path] = (), *, docker: DockerConfig | None = None) -> Sandbox:
    """The backend for `settings.sandbox`: "auto", "docker", "bwrap" or "local".

    `ro_paths` are mounted read-only in every run (a repo's virtualenv, say), for backends that
    mount anything; `docker` configures the docker backend. Raises SandboxUnavailable when the
    chosen (or, for "auto", every isolating) backend cannot run here, and ConfigError for a name
    that is not a backend.
    """
    extra = tuple(ro_paths)
    docker = (docker or DockerConfig()).model_copy(update={"extra_ro_paths": extra})
    if choice == "auto":
        return _auto(extra, docker)
    if choice == "docker":
        return docker.build()
    if choice == "bwrap":
        return BwrapConfig(extra_ro_paths=extra).build()
    if choice == "local":
        return LocalConfig().build()
    raise ConfigError(f"unknown sandbox {choice!r}; expected auto, docker, bwrap or local")


def _auto(ro_paths: tuple[Path, ...], docker: DockerConfig) -> Sandbox:
    try:
        chosen = docker.build()
    except SandboxUnavailable as exc:
        docker_problem = str(exc)
    else:
        log.info("sandbox.auto_selected", backend="docker", reason=f"{chosen.engine} answered",
                 image=chosen.image_name)
        return chosen
    try:
        fallback = BwrapConfig(extra_ro_paths=ro_paths).build()
    except SandboxUnavailable as exc:
        log.warning("sandbox.auto_found_none", docker=docker_problem, bwrap=str(exc))
        raise SandboxUnavailable(
            f"no isolating sandbox works here (docker: {docker_problem}; bubblewrap: {exc}); "
            "install one, or set AUTOFIX_SANDBOX=local to run without isolation"
        ) from exc
    log.info("sandbox.auto_selected", backend="bwrap", reason=f"docker is not usable: {docker_problem}")
    return fallback
