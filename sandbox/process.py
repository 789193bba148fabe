"""Running one child process under a deadline, keeping only the tail of its merged output.

Shared by every backend that starts a local process (bwrap, local): the clean environment, the
resource limits applied between fork and exec, the wall-clock deadline that kills the whole process
group, and the bounded output buffer. Nothing here isolates anything; that is the backends' job.
"""

from __future__ import annotations

import os
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.ports import Limits, RunResult

DEFAULT_LIMITS = Limits()
TIMEOUT_EXIT_CODE = 124  # what coreutils `timeout` reports, so logs read the same
_CHUNK = 65536
# After the command exits, how long a descendant may keep the output pipe open before it is killed.
_DRAIN_GRACE_S = 1.0


def base_python() -> str:
    """The base interpreter of the running Python (not a venv's link to it), resolved.

    This is what `Sandbox.python` is for the backends that run host processes: it creates the
    virtualenvs of repos' environments, and its installation is visible inside the sandbox.
    """
    return os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)


def clean_env(home: str, extra: Mapping[str, str] | None = None, host_venv: bool = True) -> dict[str, str]:
    """A minimal environment built from scratch: nothing is inherited from the caller's.

    With `host_venv` (the processes run on this host's file system) the venv's bin folder leads PATH,
    so `python`, `pytest` and friends resolve to the caller's venv; a container has its own.
    """
    system_path = "/usr/local/bin:/usr/bin:/bin"
    env = {
        "PATH": f"{Path(sys.executable).parent}:{system_path}" if host_venv else system_path,
        "HOME": home,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class Rlimits:
    """Kernel resource limits set in the child just before it execs.

    `cgroup_procs_fd`, when given, is an open `cgroup.procs` file the child writes itself into, so
    the cgroup's limits cover it and every descendant from the first instruction on.
    """

    address_space_bytes: int | None = None
    processes: int | None = None
    cgroup_procs_fd: int | None = None

    def preexec(self) -> Callable[[], None]:
        limits: list[tuple[int, int]] = [(resource.RLIMIT_CORE, 0)]
        if self.address_space_bytes is not None:
            limits.append((resource.RLIMIT_AS, self.address_space_bytes))
        if self.processes is not None:
            limits.append((resource.RLIMIT_NPROC, self.processes))
        procs_fd = self.cgroup_procs_fd

        def apply() -> None:
            # Runs between fork and exec: no logging, no imports, nothing that takes a lock.
            if procs_fd is not None:
                os.write(procs_fd, b"0")
            for which, value in limits:
                resource.setrlimit(which, (value, value))

        return apply


@dataclass(frozen=True)
class Completed:
    """What `run_bounded` saw: the exit status, how long it took, and the tail of the output."""

    exit_code: int
    duration_s: float
    output: bytes
    timed_out: bool

    def to_result(self) -> RunResult:
        return RunResult(
            exit_code=self.exit_code,
            duration_s=self.duration_s,
            output=self.output.decode("utf-8", errors="replace"),
            timed_out=self.timed_out,
        )


class OutputTail:
    """A byte buffer that keeps only its last `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = max(limit, 0)
        self._buf = bytearray()

    def add(self, data: bytes) -> None:
        self._buf += data
        if len(self._buf) > self._limit:
            del self._buf[: len(self._buf) - self._limit]

    def value(self) -> bytes:
        return bytes(self._buf)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # already gone, which is what we wanted


def _exit_code(returncode: int) -> int:
    # A signal death reads as 128+N, as a shell would report it.
    return 128 - returncode if returncode < 0 else returncode


def run_bounded(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    limits: Limits,
    rlimits: Rlimits,
    pass_fds: Sequence[int] = (),
) -> Completed:
    """Run `argv` in its own process group; kill the group at the deadline or once output is done.

    stdout and stderr share one pipe so the kept tail interleaves them as they were written.
    """
    started = time.monotonic()
    deadline = started + limits.timeout_s
    tail = OutputTail(limits.output_bytes)
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so one killpg reaches every descendant
        # preexec_fn is unsafe only for code that takes locks between fork and exec; ours makes two
        # system calls (setrlimit, write), and rlimits must be in place before bwrap clones.
        preexec_fn=rlimits.preexec(),  # noqa: PLW1509
        pass_fds=tuple(pass_fds),
        close_fds=True,
    )
    assert proc.stdout is not None
    timed_out = _pump(proc, proc.stdout.fileno(), tail, deadline)
    proc.stdout.close()
    try:
        # The pipe can close before the command ends (it may redirect its own output).
        returncode = proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        timed_out = True
        returncode = proc.wait()
    duration = time.monotonic() - started
    exit_code = TIMEOUT_EXIT_CODE if timed_out else _exit_code(returncode)
    return Completed(exit_code, duration, tail.value(), timed_out)


def _pump(proc: subprocess.Popen[bytes], fd: int, tail: OutputTail, deadline: float) -> bool:
    """Copy output into `tail` until EOF; returns True when the deadline killed the command."""
    exited_at: float | None = None
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            now = time.monotonic()
            if now >= deadline:
                _kill_group(proc)
                _drain(fd, tail)
                return True
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > _DRAIN_GRACE_S:
                # The command is done but something it started still holds the pipe: end it.
                _kill_group(proc)
                _drain(fd, tail)
                return False
            wait = min(deadline - now, 0.2)
            if sel.select(timeout=wait):
                data = os.read(fd, _CHUNK)
                if not data:
                    return False
                tail.add(data)


def _drain(fd: int, tail: OutputTail) -> None:
    """Read what is left after a kill, without blocking on a pipe a stray process still holds."""
    os.set_blocking(fd, False)
    end = time.monotonic() + _DRAIN_GRACE_S
    while time.monotonic() < end:
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            time.sleep(0.02)
            continue
        if not data:
            return
        tail.add(data)
