"""A pids cgroup per run: the process cap that still holds when the caller is root.

The kernel exempts real uid 0 from RLIMIT_NPROC, and a fix worker in a container often is root. Root
can, on cgroup-v1 hosts, make a child of its own `pids` cgroup with `pids.max` set and have the
sandbox join it before exec. Where that is impossible (cgroup v2 without delegation, no permission)
`create` returns None and the caller relies on RLIMIT_NPROC alone.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

_V1_ROOT = Path("/sys/fs/cgroup/pids")


def _own_v1_pids_cgroup() -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if "pids" in controllers.split(","):
            folder = _V1_ROOT / rel.lstrip("/")
            return folder if (folder / "cgroup.procs").is_file() else None
    return None


class PidsCgroup:
    """One short-lived cgroup; `procs_fd` is written "0" by the child to move itself in."""

    def __init__(self, path: Path, procs_fd: int) -> None:
        self.path = path
        self.procs_fd = procs_fd

    @classmethod
    def create(cls, max_pids: int) -> PidsCgroup | None:
        parent = _own_v1_pids_cgroup()
        if parent is None:
            return None
        path = parent / f"autofix-sandbox-{uuid.uuid4().hex[:12]}"
        try:
            path.mkdir()
        except OSError:
            return None
        try:
            (path / "pids.max").write_text(str(max_pids))
            fd = os.open(path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
        except OSError:
            path.rmdir()
            return None
        return cls(path, fd)

    def remove(self) -> None:
        """Close and delete the cgroup, waiting briefly for its last processes to be reaped."""
        os.close(self.procs_fd)
        deadline = time.monotonic() + 5.0
        while True:
            try:
                self.path.rmdir()
                return
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                    log.warning("sandbox.cgroup_left_behind", path=str(self.path), error=str(exc))
                    return
                time.sleep(0.05)


def available() -> bool:
    """Whether `PidsCgroup.create` can work here (tries it once)."""
    group = PidsCgroup.create(1)
    if group is None:
        return False
    group.remove()
    return True
