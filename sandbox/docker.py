"""The docker backend: each run in a throwaway container of the sandbox image, over the docker SDK.

Works against Docker Engine and Podman's Docker-compatible API, rootful (a uid inside is that uid on
the host). Each container has no network, a read-only root, a private tmpfs /tmp, memory (no swap),
CPU and pids limits, no capabilities, no-new-privileges and a non-root user; the workdir is mounted
read-write and the read-only paths read-only, each at its own host path, so a virtualenv made in one
run works in the next. Commands run with the image's interpreter (`python`), never a host path.

The deadline is kept from outside: at it the container is killed, and it is removed after every run.
stderr is merged into stdout inside the container (one pipe keeps their order), read from the
attached stream into a bounded tail; the engine's own log is capped too. A `timeout` inside the
container kills it a little after the deadline should this process die first.

Who owns the workdir: a workdir owned by a non-root user is used as that uid:gid. One owned by root
(a root worker) is lent to the sandbox user for the run, chowned to it and back afterwards, never
made world-writable. Symlinks are chowned themselves, never followed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from pipeline.errors import InvalidInput, SandboxRunFailed, SandboxUnavailable
from pipeline.ports import Limits, RunResult
from sandbox.config import DockerConfig
from sandbox.image import find_image, load_recipe
from sandbox.process import DEFAULT_LIMITS, TIMEOUT_EXIT_CODE, OutputTail, clean_env

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

log = structlog.get_logger(__name__)

RUN_LABEL = "org.autofix.sandbox.run"
_ENGINE_SOCKETS = ("unix:///var/run/docker.sock", "unix:///run/podman/podman.sock")
_SAFETY_MARGIN_S = 30  # the in-container `timeout` fires this long after the deadline
_DRAIN_GRACE_S = 2.0
_LOG_CAP_BYTES = 1024 * 1024
_SYSTEM_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


class DockerSandbox:
    """`pipeline.ports.Sandbox` as one container per run."""

    name = "docker"

    def __init__(self, config: DockerConfig | None = None) -> None:
        self.config = config or DockerConfig()
        self.client, self.engine = connect(self.config)
        self.image_id, self.image_name = _resolve_image(self.client, self.config, self.engine)
        self.python = self.config.python
        log.debug("sandbox.docker_connected", engine=self.engine, image=self.image_name)

    def run(
        self,
        workdir: Path,
        command: Sequence[str],
        limits: Limits = DEFAULT_LIMITS,
        env: Mapping[str, str] | None = None,
        ro_paths: Sequence[Path] = (),
    ) -> RunResult:
        if not command:
            raise InvalidInput("sandbox command", "the command is empty")
        workdir = _checked_workdir(workdir)
        with _lent_to_sandbox(workdir, self.config.uid, self.config.gid) as (uid, gid):
            mounts = _mounts(workdir, [*self.config.extra_ro_paths, *ro_paths], uid, gid)
            result = self._run_container(workdir, command, limits, env, mounts, f"{uid}:{gid}")
        log.debug("sandbox.ran", backend=self.name, exit_code=result.exit_code, timed_out=result.timed_out,
                  seconds=round(result.duration_s, 3))
        return result

    def _run_container(
        self, workdir: Path, command: Sequence[str], limits: Limits, env: Mapping[str, str] | None,
        mounts: list[Any], user: str,
    ) -> RunResult:
        from docker.errors import DockerException, ImageNotFound
        from requests import RequestException

        try:
            container = self._create(workdir, command, limits, env, mounts, user)
        except ImageNotFound as exc:
            raise SandboxUnavailable(f"the sandbox image {self.image_name} is gone from {self.engine}") from exc
        except (DockerException, RequestException) as exc:
            raise SandboxRunFailed(f"{self.engine} could not create a sandbox container: {exc}") from exc
        try:
            return _attach_start_wait(container, limits)
        except (DockerException, RequestException) as exc:
            raise SandboxRunFailed(f"{self.engine} failed a sandbox run: {exc}") from exc
        finally:
            _remove(container)

    def _create(
        self, workdir: Path, command: Sequence[str], limits: Limits, env: Mapping[str, str] | None,
        mounts: list[Any], user: str,
    ) -> Container:
        from docker.types import LogConfig

        safety = str(int(limits.timeout_s) + _SAFETY_MARGIN_S)
        argv = ["timeout", "-s", "KILL", safety, "/bin/sh", "-c", 'exec "$@" 2>&1', "sh", *command]
        memory = f"{limits.memory_mb}m"
        log_cap = str(max(_LOG_CAP_BYTES, 4 * limits.output_bytes))
        return self.client.containers.create(
            self.image_id,
            argv,
            user=user,
            working_dir=str(workdir),
            environment=clean_env("/tmp", env, host_venv=False),  # from scratch, as in every backend
            hostname="sandbox",
            network_mode="none",
            read_only=True,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={self.config.tmp_size_mb}m,mode=1777"},
            mem_limit=memory,
            memswap_limit=memory,  # the same figure: no swap on top
            nano_cpus=int(self.config.cpus * 1e9),
            pids_limit=limits.max_processes,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            mounts=mounts,
            ulimits=_ulimits(),
            log_config=LogConfig(type="json-file", config={"max-size": log_cap, "max-file": "1"}),
            labels={RUN_LABEL: "1"},
            stdin_open=False,
            tty=False,
            detach=True,
        )


def _ulimits() -> list[Any]:
    from docker.types import Ulimit

    # All three or none: Podman fills the ones not given from its own process's limits, which can
    # exceed the hard limits of the host ("error setting rlimit"). nproc counts every process of
    # the uid on the host (no user namespace), so it is generous; pids_limit is the per-run cap.
    return [Ulimit(name="core", soft=0, hard=0), Ulimit(name="nofile", soft=4096, hard=4096),
            Ulimit(name="nproc", soft=4096, hard=4096)]


# --- one run ---------------------------------------------------------------------------------------


def _attach_start_wait(container: Container, limits: Limits) -> RunResult:
    """Attach before starting (nothing written is missed), start, wait until exit or the deadline."""
    tail = OutputTail(limits.output_bytes)
    stream = container.attach(stdout=True, stderr=True, stream=True, logs=True)
    reader = threading.Thread(target=_read_into, args=(stream, tail), name="sandbox-output", daemon=True)
    reader.start()
    started = time.monotonic()
    container.start()
    timed_out, exit_code = _wait(container, started + limits.timeout_s)
    duration = time.monotonic() - started
    reader.join(_DRAIN_GRACE_S)
    if reader.is_alive():  # the container is gone; a stream that has not ended never will
        stream.close()
        reader.join(_DRAIN_GRACE_S)
    return RunResult(
        exit_code=TIMEOUT_EXIT_CODE if timed_out else exit_code,
        duration_s=duration,
        output=tail.value().decode("utf-8", errors="replace"),
        timed_out=timed_out,
    )


def _read_into(stream: Iterable[bytes], tail: OutputTail) -> None:
    from requests import RequestException
    from urllib3.exceptions import HTTPError

    try:
        for chunk in stream:
            tail.add(chunk)
    except (OSError, ValueError, RequestException, HTTPError) as exc:
        # Only after the stream was closed on purpose, once the container was gone.
        log.debug("sandbox.output_stream_closed", error=str(exc))


def _wait(container: Container, deadline: float) -> tuple[bool, int]:
    """(timed out, exit code). The SDK's wait timeout is the HTTP read timeout: it ends the wait."""
    from docker.errors import APIError
    from requests import RequestException

    remaining = deadline - time.monotonic()
    if remaining > 0:
        try:
            return False, int(container.wait(timeout=remaining)["StatusCode"])
        except RequestException:
            if time.monotonic() < deadline - 1.0:
                raise  # not the deadline: the engine stopped answering
    try:
        container.kill()
    except APIError as exc:
        if exc.status_code not in (404, 409):  # it exited on its own at the deadline
            raise
    container.wait(timeout=_SAFETY_MARGIN_S)
    return True, TIMEOUT_EXIT_CODE


def _remove(container: Container) -> None:
    from docker.errors import DockerException, NotFound
    from requests import RequestException

    try:
        container.remove(force=True)
    except NotFound:
        pass
    except (DockerException, RequestException) as exc:
        # The run's result stands; the container is labelled for whoever cleans up.
        log.warning("sandbox.container_left_behind", container=container.id, error=str(exc))


# --- workdir, mounts, ownership --------------------------------------------------------------------


def _checked_workdir(workdir: Path) -> Path:
    resolved = workdir.resolve()
    if not resolved.is_dir():
        raise InvalidInput(str(workdir), "the sandbox workdir is not a directory")
    if resolved == Path("/") or any(resolved == p or p in resolved.parents for p in _SYSTEM_FOLDERS):
        raise InvalidInput(str(workdir), "the sandbox workdir cannot be / or under /proc, /sys, /dev")
    return resolved


def _mounts(workdir: Path, ro_paths: Sequence[Path], uid: int, gid: int) -> list[Any]:
    from docker.types import Mount

    mounts = [Mount(target=str(workdir), source=str(workdir), type="bind", read_only=False)]
    seen = {workdir}
    for path in ro_paths:
        target = Path(os.path.abspath(path))
        if target in seen:
            continue
        seen.add(target)
        if not target.exists():
            raise InvalidInput(str(path), "a read-only sandbox path does not exist")
        if not _readable_by(target, uid, gid):
            raise InvalidInput(str(path), f"the sandbox user {uid}:{gid} cannot read this read-only path; "
                               "make it readable to others (not writable) or owned by that user")
        mounts.append(Mount(target=str(target), source=os.path.realpath(target), type="bind", read_only=True))
    return mounts


def _readable_by(path: Path, uid: int, gid: int) -> bool:
    st = path.stat()
    need = 0o5 if path.is_dir() else 0o4
    if st.st_uid == uid:
        return (st.st_mode >> 6) & need == need
    if st.st_gid == gid:
        return (st.st_mode >> 3) & need == need
    return st.st_mode & need == need


@contextmanager
def _lent_to_sandbox(workdir: Path, uid: int, gid: int) -> Iterator[tuple[int, int]]:
    """The uid:gid to run as; a root-owned workdir belongs to the sandbox user for the run only."""
    owner = workdir.stat()
    if owner.st_uid != 0:
        yield owner.st_uid, owner.st_gid
        return
    if os.geteuid() != 0:
        raise InvalidInput(str(workdir), "the workdir is owned by root; only root can lend it to the sandbox user")
    _chown_tree(workdir, uid, gid)
    try:
        yield uid, gid
    finally:
        # The container is gone by now, so nothing can swap a path for a symlink under us; and chown
        # clears the setuid and setgid bits of files, so nothing made inside becomes root's setuid file.
        _chown_tree(workdir, owner.st_uid, owner.st_gid)


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    os.chown(top, uid, gid, follow_symlinks=False)
    for folder, dirs, files in os.walk(top):
        for name in (*dirs, *files):
            os.chown(os.path.join(folder, name), uid, gid, follow_symlinks=False)


# --- engine ----------------------------------------------------------------------------------------


def connect(config: DockerConfig) -> tuple[DockerClient, str]:
    """A client of the first engine that answers, and a description of it (SandboxUnavailable if none)."""
    try:
        import docker
        from docker.errors import DockerException
        from docker.utils import kwargs_from_env
        from requests import RequestException
    except ImportError as exc:
        raise SandboxUnavailable("the docker SDK is not installed: pip install docker") from exc

    tried: list[str] = []
    for url in _engine_urls(config):
        try:
            client = (docker.DockerClient(base_url=url, timeout=int(config.api_timeout_s)) if url
                      else docker.from_env(timeout=int(config.api_timeout_s)))
            client.ping()
            version = client.version()
        except (DockerException, RequestException, OSError) as exc:
            tried.append(f"{url or 'DOCKER_HOST'}: {_first_line(exc)}")
            continue
        return client, f"{_engine_name(version)} at {url or kwargs_from_env()['base_url']}"
    raise SandboxUnavailable(
        "no container engine answers (" + "; ".join(tried) + "); start Docker, or rootful Podman's "
        "service (podman system service --time=0 unix:///run/podman/podman.sock), or set DOCKER_HOST"
    )


def _engine_urls(config: DockerConfig) -> list[str | None]:
    if config.base_url:
        return [config.base_url]
    from docker.utils import kwargs_from_env

    if kwargs_from_env().get("base_url"):
        return [None]  # DOCKER_HOST is set: the SDK reads it, with its TLS settings
    return list(_ENGINE_SOCKETS)


def _engine_name(version: Mapping[str, Any]) -> str:
    components = version.get("Components") or [{}]
    name = components[0].get("Name") or "Docker Engine"
    return f"{name} {version.get('Version', '?')}"


def _resolve_image(client: DockerClient, config: DockerConfig, engine: str) -> tuple[str, str]:
    """(id, name) of the configured image, or of the one built from the recipe."""
    from docker.errors import ImageNotFound

    if config.image:
        try:
            return str(client.images.get(config.image).id), config.image
        except ImageNotFound as exc:
            raise SandboxUnavailable(
                f"the sandbox image {config.image!r} is not on {engine} (images are never pulled)"
            ) from exc
    recipe = load_recipe(config.recipe)
    found = find_image(client, recipe)
    if found is None:
        raise SandboxUnavailable(
            f"{engine} has no sandbox image for the recipe in {recipe.folder} ({recipe.tag}); "
            "build it with `autofix sandbox image`"
        )
    return found.id, found.tag


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
