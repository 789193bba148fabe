"""The local backend: a plain subprocess in the workdir. It isolates nothing.

For trusted demos and hosts with no other choice, and only when asked for by name
(AUTOFIX_SANDBOX=local). It keeps the parts that need no isolation: a clean environment, a
wall-clock deadline that kills the process group, a memory rlimit, and the bounded output tail. The
command can still read and write anything the caller can, and reach the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

from pipeline.errors import InvalidInput
from pipeline.ports import Limits, RunResult
from sandbox.process import DEFAULT_LIMITS, Rlimits, base_python, clean_env, run_bounded

log = structlog.get_logger(__name__)


class LocalSandbox:
    """`pipeline.ports.Sandbox` as a bare subprocess: no network, filesystem or process isolation."""

    name = "local"

    def __init__(self) -> None:
        self.python = base_python()
        log.warning(
            "sandbox.local_selected",
            isolation="none",
            reason="commands run as this user, with its files and network",
        )

    def run(
        self,
        workdir: Path,
        command: Sequence[str],
        limits: Limits = DEFAULT_LIMITS,
        env: Mapping[str, str] | None = None,
        ro_paths: Sequence[Path] = (),  # nothing to mount: the whole host is visible
    ) -> RunResult:
        if not command:
            raise InvalidInput("sandbox command", "the command is empty")
        workdir = workdir.resolve()
        if not workdir.is_dir():
            raise InvalidInput(str(workdir), "the sandbox workdir is not a directory")
        home = workdir / ".home"  # keeps tools from writing into the caller's real home
        home.mkdir(exist_ok=True)
        done = run_bounded(
            command,
            cwd=workdir,
            env=clean_env(str(home), env),
            limits=limits,
            # No RLIMIT_NPROC: without a user namespace it would count all of this user's processes.
            rlimits=Rlimits(address_space_bytes=limits.memory_mb * 1024 * 1024),
        )
        log.debug("sandbox.ran", backend=self.name, exit_code=done.exit_code, timed_out=done.timed_out)
        return done.to_result()
