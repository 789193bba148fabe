"""The bubblewrap backend: each run in fresh namespaces, the workdir its only writable place.

The sandbox sees a read-only root holding the system folders (/usr, /etc, ...) and the caller's
Python (venv and base install), fresh /dev and /proc, a private /tmp, no network at all (an empty
network namespace, so not even the host's loopback), no capabilities, and an environment built from
scratch. Resource limits are kernel rlimits set on bwrap itself and inherited by everything under it.

Files in /etc that a stranger could not read (shadow, gshadow, ssl/private, a server's config with
its password) are covered by unreadable mounts: bwrap maps its caller to the sandbox's uid, so when
the caller is root the sandbox owns every root-owned file and dropped capabilities do not stop it.

bubblewrap reports setup failures with exit status 1, like any failing command; `--json-status-fd`
tells them apart: it names the child's pid only once the sandbox was set up.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import structlog

from pipeline.errors import InvalidInput, SandboxUnavailable
from pipeline.ports import Limits, RunResult
from sandbox import pids
from sandbox.config import BwrapConfig
from sandbox.process import DEFAULT_LIMITS, Rlimits, base_python, clean_env, run_bounded

log = structlog.get_logger(__name__)

SANDBOX_HOME = "/tmp/home"  # on the private /tmp: writable, and gone when the run ends
# Scanned for owner-only files to hide; small enough to walk in milliseconds (/usr is not).
_SECRET_ROOTS = ("/etc",)


class BubblewrapSandbox:
    """`pipeline.ports.Sandbox` over /usr/bin/bwrap."""

    name = "bwrap"

    def __init__(self, config: BwrapConfig | None = None) -> None:
        self.config = config or BwrapConfig()
        # Its installation is mounted read-only (see _readonly_paths), so it runs inside as well.
        self.python = base_python()
        self.executable = _find_executable(self.config.executable)
        self.ro_paths = _readonly_paths(self.config)

        # Forbidding nested user namespaces needs a user namespace of our own, which a setuid
        # bwrap cannot make; there we go on without it (the sandbox holds no capabilities anyway).
        self.disable_userns = True
        problem = _probe(self.executable, tuple(self.ro_paths), self.config, True)
        if problem is not None:
            self.disable_userns = False
            fallback = _probe(self.executable, tuple(self.ro_paths), self.config, False)
            if fallback is not None:
                raise SandboxUnavailable(f"bubblewrap cannot create a sandbox here: {fallback}")
            log.warning("sandbox.nested_userns_allowed", reason=problem)
        # The kernel exempts real uid 0 from RLIMIT_NPROC; root caps processes with a pids cgroup.
        self.use_pids_cgroup = os.geteuid() == 0 and pids.available()
        if os.geteuid() == 0 and not self.use_pids_cgroup:
            log.warning("sandbox.process_limit_unenforced", reason="root, and no pids cgroup can be made")

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
        extra = _checked_ro_paths(ro_paths)
        group = pids.PidsCgroup.create(limits.max_processes) if self.use_pids_cgroup else None
        status_r, status_w = os.pipe()
        try:
            done = run_bounded(
                [*self.argv(workdir, status_fd=status_w, ro_paths=extra), "--", *command],
                cwd=workdir,
                env=clean_env(SANDBOX_HOME, env),
                limits=limits,
                rlimits=Rlimits(
                    address_space_bytes=limits.memory_mb * 1024 * 1024,
                    processes=limits.max_processes,
                    cgroup_procs_fd=group.procs_fd if group is not None else None,
                ),
                pass_fds=(status_w,),
            )
            os.close(status_w)
            status_w = -1
            status = _read_status(status_r)
        finally:
            os.close(status_r)
            if status_w != -1:
                os.close(status_w)
            if group is not None:
                group.remove()
        if "child-pid" not in status and not done.timed_out:
            raise SandboxUnavailable(
                "bubblewrap could not set up the sandbox: "
                + done.output.decode("utf-8", errors="replace").strip()
            )
        log.debug("sandbox.ran", backend=self.name, exit_code=done.exit_code, timed_out=done.timed_out)
        return done.to_result()

    def argv(self, workdir: Path, status_fd: int | None = None, ro_paths: Sequence[Path] = ()) -> list[str]:
        """The bwrap command line up to (not including) the `--` that precedes the command."""
        mounts = [*self.ro_paths, *(p for p in ro_paths if p not in self.ro_paths)]
        return _bwrap_argv(self.executable, mounts, workdir, self.config, self.disable_userns, status_fd)


def _find_executable(configured: Path | None) -> str:
    found = str(configured) if configured is not None else shutil.which("bwrap")
    if found is None or not os.access(found, os.X_OK):
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed; apt-get install bubblewrap")
    return found


def _checked_workdir(workdir: Path) -> Path:
    resolved = workdir.resolve()
    if not resolved.is_dir():
        raise InvalidInput(str(workdir), "the sandbox workdir is not a directory")
    if resolved == Path("/"):
        raise InvalidInput(str(workdir), "the sandbox workdir cannot be the root folder")
    return resolved


def _checked_ro_paths(paths: Sequence[Path]) -> list[Path]:
    resolved = [Path(os.path.abspath(p)) for p in paths]
    missing = [str(p) for p in resolved if not p.exists()]
    if missing:
        raise InvalidInput(", ".join(missing), "a read-only sandbox path does not exist")
    return resolved


def _readonly_paths(config: BwrapConfig) -> list[Path]:
    """System folders, the caller's Python installations, and whatever the config adds.

    Symlinks are kept (merged-/usr systems link /bin to usr/bin) and their targets added, so a
    symlinked prefix resolves inside the sandbox; a folder already inside another is dropped.
    """
    python = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)]
    python.append(Path(os.path.realpath(sys.executable)).parent)
    candidates = [Path(p) for p in config.system_paths] + python + list(config.extra_ro_paths)
    found: list[Path] = []
    for path in candidates:
        for each in (path, Path(os.path.realpath(path))):
            if (each.exists() or each.is_symlink()) and each not in found:
                found.append(each)
    folders = [p for p in found if not p.is_symlink()]
    return [p for p in found if p.is_symlink() or not any(o != p and _contains(o, p) for o in folders)]


def _contains(outer: Path, inner: Path) -> bool:
    return inner == outer or outer in inner.parents


def _bwrap_argv(
    executable: str,
    ro_paths: Sequence[Path],
    workdir: Path,
    config: BwrapConfig,
    disable_userns: bool,
    status_fd: int | None,
) -> list[str]:
    args = [executable, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    if disable_userns:
        args += ["--unshare-user", "--disable-userns"]
    args += ["--hostname", "sandbox"]
    # Mount order matters: a later mount covers an earlier one. Read-only folders that hold the
    # workdir go first so the workdir's writable bind lands on top of them; all others go after it,
    # so a venv that lives inside the workdir stays read-only.
    outer = [p for p in ro_paths if _contains(p, workdir)]
    inner = [p for p in ro_paths if not _contains(p, workdir)]
    args += _ro_args(outer)
    args += ["--dev", "/dev", "--proc", "/proc"]
    if config.tmp_size_mb is not None:
        args += ["--size", str(config.tmp_size_mb * 1024 * 1024)]
    args += ["--tmpfs", "/tmp", "--dir", SANDBOX_HOME]
    args += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    args += _ro_args(inner)
    args += _mask_args(_owner_only_entries(tuple(str(p) for p in ro_paths)))
    # bwrap's own root is a writable tmpfs; make it read-only once everything is mounted on it.
    args += ["--remount-ro", "/"]
    if status_fd is not None:
        args += ["--json-status-fd", str(status_fd)]
    return args


def _ro_args(paths: Sequence[Path]) -> list[str]:
    args: list[str] = []
    for path in paths:
        if path.is_symlink() and path.parent == Path("/"):
            # Merged-/usr systems: /bin -> usr/bin. Recreate the link rather than binding twice.
            args += ["--symlink", os.readlink(path), str(path)]
        else:
            args += ["--ro-bind", str(Path(os.path.realpath(path))), str(path)]
    return args


@lru_cache(maxsize=8)
def _owner_only_entries(mounted: tuple[str, ...]) -> tuple[tuple[str, bool], ...]:
    """(path, is_folder) of what others may not read under the scanned roots that are mounted."""
    found: list[tuple[str, bool]] = []
    for root in _SECRET_ROOTS:
        if root not in mounted:
            continue
        for folder, dirs, files in os.walk(root):
            for name in list(dirs):
                path = os.path.join(folder, name)
                mode = os.lstat(path).st_mode
                if not stat.S_ISLNK(mode) and (mode & 0o005) != 0o005:
                    found.append((path, True))
                    dirs.remove(name)  # hidden whole; nothing inside needs its own cover
            for name in files:
                path = os.path.join(folder, name)
                mode = os.lstat(path).st_mode
                if stat.S_ISREG(mode) and not mode & stat.S_IROTH:
                    found.append((path, False))
    return tuple(found)


def _mask_args(entries: Sequence[tuple[str, bool]]) -> list[str]:
    args: list[str] = []
    for path, is_folder in entries:
        if is_folder:
            args += ["--tmpfs", path, "--remount-ro", path]
        else:
            args += ["--ro-bind", "/dev/null", path]
    return args


def _read_status(fd: int) -> dict[str, object]:
    """Merge the JSON documents bwrap wrote to its status fd (child-pid, exit-code)."""
    os.set_blocking(fd, False)
    raw = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not chunk:
            break
        raw += chunk
    merged: dict[str, object] = {}
    decoder = json.JSONDecoder()
    text = raw.decode("utf-8", errors="replace").strip()
    while text:
        try:
            doc, end = decoder.raw_decode(text)
        except json.JSONDecodeError:
            break
        if isinstance(doc, dict):
            merged.update(doc)
        text = text[end:].strip()
    return merged


@lru_cache(maxsize=8)
def _probe(
    executable: str, ro_paths: tuple[Path, ...], config: BwrapConfig, disable_userns: bool
) -> str | None:
    """None when a trivial command runs in a full sandbox here; else what went wrong."""
    with tempfile.TemporaryDirectory(prefix="autofix-bwrap-probe-") as tmp:
        argv = [*_bwrap_argv(executable, ro_paths, Path(tmp).resolve(), config, disable_userns, None)]
        argv += ["--", "true"]
        try:
            proc = subprocess.run(
                argv, capture_output=True, text=True, timeout=30, env=clean_env(SANDBOX_HOME), check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return str(exc)
    if proc.returncode != 0:
        return proc.stderr.strip() or f"exit status {proc.returncode}"
    return None
