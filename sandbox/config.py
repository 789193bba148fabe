"""Which sandbox backend to build, as a discriminated union of configs, and the one factory.

Each config builds its own backend and imports that backend's module only then, so a host without
the docker SDK or without bubblewrap can still load the others. `make_sandbox("auto")` picks the
strongest isolation that works here and never falls back to `local`, which isolates nothing and must
be asked for by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal

import structlog
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from pipeline.errors import ConfigError, SandboxUnavailable
from pipeline.ports import Sandbox

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


# TODO(docker): add DockerConfig(kind="docker", image=..., socket=...) whose build() imports
# sandbox.docker lazily, and list it here; make_sandbox and auto-detection already route to it.
SandboxConfig = Annotated[BwrapConfig | LocalConfig, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[BwrapConfig | LocalConfig] = TypeAdapter(SandboxConfig)


def parse_config(data: object) -> BwrapConfig | LocalConfig:
    """A backend config from plain data (a TOML table), chosen by its `kind`."""
    return _ADAPTER.validate_python(data)


def build_sandbox(config: BwrapConfig | LocalConfig) -> Sandbox:
    return config.build()


def _docker_config() -> BwrapConfig | LocalConfig | None:
    """The docker config when a Docker or Podman socket answers; None until the backend exists."""
    return None  # TODO(docker): ping the engine (docker.from_env().ping()) and return its config


def make_sandbox(choice: str, ro_paths: Sequence[Path] = ()) -> Sandbox:
    """The backend for `settings.sandbox`: "auto", "docker", "bwrap" or "local".

    `ro_paths` are mounted read-only beside the system (a repo's virtualenv, say), for backends that
    mount anything. Raises SandboxUnavailable when the chosen (or, for "auto", every isolating)
    backend cannot run here, and ConfigError for a name that is not a backend.
    """
    if choice == "auto":
        return _auto(ro_paths)
    if choice == "docker":
        docker = _docker_config()
        if docker is None:
            raise SandboxUnavailable("the docker sandbox backend is not available here")
        return docker.build()
    if choice == "bwrap":
        return BwrapConfig(extra_ro_paths=tuple(ro_paths)).build()
    if choice == "local":
        return LocalConfig().build()
    raise ConfigError(f"unknown sandbox {choice!r}; expected auto, docker, bwrap or local")


def _auto(ro_paths: Sequence[Path]) -> Sandbox:
    docker = _docker_config()
    if docker is not None:
        return docker.build()
    try:
        return BwrapConfig(extra_ro_paths=tuple(ro_paths)).build()
    except SandboxUnavailable as exc:
        log.warning("sandbox.auto_found_none", bwrap=str(exc))
        raise SandboxUnavailable(
            "no isolating sandbox works here (no docker, bubblewrap failed: "
            f"{exc}); install one, or set AUTOFIX_SANDBOX=local to run without isolation"
        ) from exc
