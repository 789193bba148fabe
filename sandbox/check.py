"""The escape suite behind `autofix sandbox check`: run attacks in a sandbox, judge from outside.

Each check runs a small Python probe inside the sandbox, with the sandbox's own interpreter, and
decides from the parent's side: a file is judged written only if the parent can see it, the network
is judged reachable against a listener the parent itself runs, a secret is judged read only if its
content came back out. Every result says how the attack ended (`how`): blocked (it failed inside),
killed (the sandbox ended it), absent (there was nothing to take), works (a control that must
succeed), and on failure escaped or untested (a probe that did not run, or a control that failed,
is never counted as a pass).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.ports import Limits, RunResult, Sandbox

How = Literal["blocked", "killed", "absent", "works", "escaped", "untested"]
CANARY_VAR = "AUTOFIX_SELF_CHECK_SECRET"
CANARY_TOKEN_VAR = "SELF_CHECK_TOKEN"
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
_PROBE_LIMITS = Limits(timeout_s=30.0, memory_mb=1024, max_processes=64, output_bytes=20_000)
_MEMORY_KILLED = 137  # SIGKILL, as the OOM killer sends it


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str
    how: How = "untested"


def _ok(name: str, how: How, detail: str) -> CheckResult:
    return CheckResult(name, True, detail, how)


def _escaped(name: str, detail: str) -> CheckResult:
    return CheckResult(name, False, detail, "escaped")


def _untested(name: str, result: RunResult | str) -> CheckResult:
    text = result if isinstance(result, str) else f"probe did not run: {result.output.strip()[-300:]}"
    return CheckResult(name, False, text, "untested")


@dataclass(frozen=True)
class Probe:
    """What every check gets: the sandbox, a scratch workdir, and the state folder to hide."""

    sandbox: Sandbox
    workdir: Path
    state_dir: Path | None

    def python(self, code: str, *args: str, limits: Limits = _PROBE_LIMITS) -> RunResult:
        return self.sandbox.run(self.workdir, [self.sandbox.python, "-c", code, *args], limits)


Check = Callable[[Probe], CheckResult]


def self_check(sandbox: Sandbox, state_dir: Path | None = None, only: Sequence[str] = ()) -> list[CheckResult]:
    """Run every check (or those whose function names are in `only`), each in a scratch workdir."""
    results = []
    for check in CHECKS:
        if only and check.__name__ not in only:
            continue
        with tempfile.TemporaryDirectory(prefix="autofix-check-") as tmp:
            results.append(check(Probe(sandbox, Path(tmp), state_dir)))
    return results


def _line(result: RunResult, prefix: str) -> str | None:
    return next((ln[len(prefix):].strip() for ln in result.output.splitlines() if ln.startswith(prefix)), None)


# --- network ---------------------------------------------------------------------------------------

_CONNECT = """
import json, socket, sys
for host, port in json.loads(sys.argv[1]):
    try:
        socket.create_connection((host, port), timeout=3).close()
        print("CONNECTED", host, port)
    except OSError as exc:
        print("REFUSED", host, port, exc)
print("DONE")
"""


def check_loopback_blocked(probe: Probe) -> CheckResult:
    name = "network: TCP to a listener on the host's 127.0.0.1"
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
        except OSError as exc:
            return _untested(name, f"control failed: the parent cannot reach its own listener: {exc}")
        result = probe.python(_CONNECT, json.dumps([["127.0.0.1", port]]))
    if "CONNECTED" in result.output:
        return _escaped(name, f"connected to 127.0.0.1:{port} from inside")
    refused = _line(result, "REFUSED")
    if refused is None:
        return _untested(name, result)
    return _ok(name, "blocked", refused.split(" ", 2)[-1])


def check_outside_blocked(probe: Probe) -> CheckResult:
    name = "network: TCP to addresses outside"
    targets = [["1.1.1.1", 443], ["8.8.8.8", 53], ["2606:4700:4700::1111", 443]]
    result = probe.python(_CONNECT, json.dumps(targets))
    if "DONE" not in result.output:
        return _untested(name, result)
    reached = [ln for ln in result.output.splitlines() if ln.startswith("CONNECTED")]
    if reached:
        return _escaped(name, "; ".join(reached))
    errors = {ln.split(" ", 3)[-1] for ln in result.output.splitlines() if ln.startswith("REFUSED")}
    return _ok(name, "blocked", f"{len(targets)} addresses: " + "; ".join(sorted(errors)))


_DNS = """
import socket
try:
    print("RESOLVED", socket.getaddrinfo("example.com", 443)[0][4][0])
except OSError as exc:
    print("NO_DNS", exc)
"""


def check_dns_blocked(probe: Probe) -> CheckResult:
    name = "network: DNS resolution"
    result = probe.python(_DNS)
    resolved = _line(result, "RESOLVED")
    if resolved is not None:
        return _escaped(name, f"example.com resolved to {resolved}")
    failed = _line(result, "NO_DNS")
    return _untested(name, result) if failed is None else _ok(name, "blocked", failed)


# --- filesystem ------------------------------------------------------------------------------------

_WRITE = """
import json, sys
wrote = []
for path in json.loads(sys.argv[1]):
    try:
        with open(path, "w") as fh:
            fh.write("escaped")
        wrote.append(path)
    except OSError:
        pass
print("WROTE", json.dumps(wrote))
"""


def check_writes_outside_fail(probe: Probe) -> CheckResult:
    name = "filesystem: writes outside the workdir"
    token = f"autofix-escape-{secrets.token_hex(6)}"
    places = [Path.home(), Path("/etc"), Path(sys.prefix), probe.workdir.parent, Path(tempfile.gettempdir())]
    if probe.state_dir is not None:
        places.append(probe.state_dir)
    targets = [p / token for p in dict.fromkeys(places)]
    result = probe.python(_WRITE, json.dumps([str(t) for t in targets]))
    escaped = [t for t in targets if t.exists()]
    for path in escaped:
        path.unlink()  # the check found a hole; do not leave its evidence lying around
    if _line(result, "WROTE") is None:
        return _untested(name, result)
    if escaped:
        return _escaped(name, "wrote " + ", ".join(map(str, escaped)))
    return _ok(name, "blocked", f"{len(targets)} places tried, none reached the host")


def check_tmp_private(probe: Probe) -> CheckResult:
    name = "filesystem: the host's /tmp is not visible"
    with tempfile.NamedTemporaryFile(prefix="autofix-marker-", dir="/tmp") as marker:
        result = probe.python(f"import os; print('SEEN' if os.path.exists({marker.name!r}) else 'UNSEEN')")
    if "UNSEEN" in result.output:
        return _ok(name, "absent", "a file in the host's /tmp was not there inside")
    if "SEEN" in result.output:
        return _escaped(name, "a file in the host's /tmp was visible inside")
    return _untested(name, result)


_READ = """
import hashlib, json, sys
for path in json.loads(sys.argv[1]):
    try:
        with open(path, "rb") as fh:
            print("READ", path, hashlib.sha256(fh.read()).hexdigest())
    except OSError as exc:
        print("DENIED", path, exc.strerror)
print("DONE")
"""


@contextmanager
def _canary_files(folders: Sequence[Path]) -> Iterator[dict[Path, str]]:
    """A secret file (mode 0600) in each folder, removed afterwards; maps path to its sha256."""
    made: dict[Path, str] = {}
    try:
        for folder in folders:
            path = folder / f".autofix-canary-{secrets.token_hex(6)}"
            content = secrets.token_bytes(32)
            path.touch(mode=0o600)
            path.write_bytes(content)
            made[path] = hashlib.sha256(content).hexdigest()
        yield made
    finally:
        for path in made:
            path.unlink(missing_ok=True)


def _host_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def check_secret_files_unreadable(probe: Probe) -> CheckResult:
    name = "filesystem: host secrets (canaries in home and the state folder, /etc/shadow)"
    folders = [Path.home()] + ([probe.state_dir] if probe.state_dir is not None and probe.state_dir.is_dir() else [])
    system = [Path("/etc/shadow"), Path("/etc/gshadow")]
    with _canary_files(folders) as canaries:
        targets = [*canaries, *system]
        result = probe.python(_READ, json.dumps([str(t) for t in targets]))
    if "DONE" not in result.output:
        return _untested(name, result)
    leaked: list[str] = []
    blocked: list[str] = []
    own: list[str] = []
    for line in result.output.splitlines():
        kind, _, rest = line.partition(" ")
        if kind == "READ":
            path_text, digest = rest.rsplit(" ", 1)
            path = Path(path_text)
            host = canaries.get(path) or _host_digest(path)
            # A file the host cannot read itself cannot be compared: count the read against us.
            (leaked if host is None or host == digest else own).append(path_text)
        elif kind == "DENIED":
            blocked.append(rest)
    if leaked:
        return _escaped(name, "read the host's " + ", ".join(leaked))
    detail = "; ".join(blocked) + (f"; only the image's own {', '.join(own)}" if own else "")
    return _ok(name, "blocked", detail)


def check_writes_inside_work(probe: Probe) -> CheckResult:
    name = "control: writes inside the workdir reach the host"
    token = secrets.token_hex(6)
    result = probe.python(f"open('inside.txt', 'w').write({token!r})")
    target = probe.workdir / "inside.txt"
    if target.is_file() and target.read_text() == token:
        return _ok(name, "works", "the host read back what the sandbox wrote")
    return _untested(name, f"the file written inside is missing on the host: {result.output.strip()[-300:]}")


# --- processes and limits --------------------------------------------------------------------------

_FORK_BOMB = """
import os
print("STARTED", flush=True)
log = os.open("forks", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
while True:
    try:
        if os.fork() == 0:
            os.write(log, b".")
    except OSError:
        pass
"""


def check_fork_bomb_contained(probe: Probe) -> CheckResult:
    name = "limits: a fork bomb"
    cap = 32
    result = probe.python(_FORK_BOMB, limits=Limits(timeout_s=3.0, max_processes=cap, memory_mb=512))
    forks = probe.workdir / "forks"
    started = forks.stat().st_size if forks.exists() else 0
    if "STARTED" not in result.output:
        return _untested(name, result)
    if started >= cap:
        return _escaped(name, f"{started} processes forked under a limit of {cap}")
    if not result.timed_out or result.duration_s > 15:
        return _escaped(name, f"not stopped at the deadline (exit {result.exit_code}, {result.duration_s:.1f}s)")
    return _ok(name, "blocked", f"fork refused after {started} processes (limit {cap}), then killed at the deadline")


_ALLOCATE = """
small = bytearray(32 * 1024 * 1024)
print("SMALL_OK", flush=True)
big = bytearray(1024 * 1024 * 1024)
print("BIG_OK")
"""


def check_memory_limited(probe: Probe) -> CheckResult:
    name = "limits: a memory hog (1 GiB under 256 MiB)"
    result = probe.python(_ALLOCATE, limits=Limits(timeout_s=30, memory_mb=256))
    if "SMALL_OK" not in result.output:
        return _untested(name, result)
    if "BIG_OK" in result.output:
        return _escaped(name, "allocated 1 GiB under a 256 MiB limit")
    if "MemoryError" in result.output:
        return _ok(name, "blocked", "the allocation failed with MemoryError")
    if result.exit_code == _MEMORY_KILLED:
        return _ok(name, "killed", "killed by the memory limit (exit 137)")
    return _untested(name, f"neither refused nor killed: exit {result.exit_code}")


_ENDLESS = """
print("STARTED", flush=True)
while True:
    pass
"""


def check_endless_loop_killed(probe: Probe) -> CheckResult:
    name = "limits: an endless loop"
    result = probe.python(_ENDLESS, limits=Limits(timeout_s=2.0))
    if "STARTED" not in result.output:
        return _untested(name, result)
    if not result.timed_out or result.duration_s > 12:
        return _escaped(name, f"not stopped at the deadline (exit {result.exit_code}, {result.duration_s:.1f}s)")
    return _ok(name, "killed", f"killed at the 2 s deadline after {result.duration_s:.1f}s, exit {result.exit_code}")


_LATE = """
import subprocess, sys, time
subprocess.Popen(["sh", "-c", f"sleep {sys.argv[1]}; echo late > late.txt"])
print("STARTED", flush=True)
time.sleep(60)
"""


def check_deadline_kills_descendants(probe: Probe) -> CheckResult:
    name = "limits: the deadline kills the command and what it started"
    deadline, delay = 2.0, 3.5
    started = time.monotonic()
    result = probe.python(_LATE, str(delay), limits=Limits(timeout_s=deadline))
    time.sleep(max(0.0, started + delay + 1.5 - time.monotonic()))  # past when the writer would write
    if "STARTED" not in result.output:
        return _untested(name, result)
    if not result.timed_out or result.duration_s > 12:
        return _escaped(name, f"not stopped at the deadline (took {result.duration_s:.1f}s)")
    if (probe.workdir / "late.txt").exists():
        return _escaped(name, "a background process outlived the deadline")
    return _ok(name, "killed", f"the command and its child killed at {result.duration_s:.1f}s")


_DETACH = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for fd in (0, 1, 2):
            os.close(fd)
        time.sleep(float(sys.argv[1]))
        open("late.txt", "w").write("outlived the run")
        os._exit(0)
    os._exit(0)
print("DETACHED", flush=True)
"""


def check_detached_child_dies_with_run(probe: Probe) -> CheckResult:
    name = "processes: a detached child does not outlive the run"
    delay = 2.0
    result = probe.python(_DETACH, str(delay))
    ended = time.monotonic()
    if "DETACHED" not in result.output:
        return _untested(name, result)
    time.sleep(delay + 1.5)
    if (probe.workdir / "late.txt").exists():
        return _escaped(name, f"a setsid grandchild wrote {delay:.0f}s after the run ended")
    waited = time.monotonic() - ended
    return _ok(name, "killed", f"the run ended in {result.duration_s:.1f}s; nothing ran {waited:.1f}s later")


# --- privileges ------------------------------------------------------------------------------------


@contextmanager
def _canary_env() -> Iterator[set[str]]:
    """Secrets placed in this process's environment for the length of one probe; yields their values."""
    planted = {CANARY_VAR: secrets.token_hex(16), CANARY_TOKEN_VAR: secrets.token_hex(16)}
    previous = {k: os.environ.get(k) for k in planted}
    os.environ.update(planted)
    try:
        yield set(planted.values())
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _secret_name(key: str) -> bool:
    upper = key.upper()
    return upper.startswith("AUTOFIX_") or upper.endswith("_TOKEN") or any(w in upper for w in _SECRET_WORDS)


def check_env_scrubbed(probe: Probe) -> CheckResult:
    name = "environment: the host's AUTOFIX_* and *_TOKEN variables"
    with _canary_env() as values:
        host_secrets = sorted(k for k in os.environ if _secret_name(k))
        result = probe.python("import os, json; print('ENV', json.dumps(dict(os.environ)))")
    line = _line(result, "ENV")
    if line is None:
        return _untested(name, result)
    inside: dict[str, str] = json.loads(line)
    leaked = sorted(k for k, v in inside.items() if _secret_name(k) or v in values)
    if leaked:
        return _escaped(name, "visible inside: " + ", ".join(leaked))
    return _ok(name, "absent", f"{len(host_secrets)} secret variables on the host "
               f"({', '.join(host_secrets)}), none of {len(inside)} inside")


_CAPS = """
for line in open("/proc/self/status"):
    if line.startswith("CapEff:"):
        print("CAPEFF", line.split()[1])
"""


def check_no_capabilities(probe: Probe) -> CheckResult:
    name = "privileges: no capabilities held"
    result = probe.python(_CAPS)
    line = _line(result, "CAPEFF")
    if line is None:
        return _untested(name, result)
    caps = int(line, 16)
    if caps:
        return _escaped(name, f"effective capability mask {caps:#x}")
    return _ok(name, "absent", "effective capability mask 0")


CHECKS: tuple[Check, ...] = (
    check_loopback_blocked,
    check_outside_blocked,
    check_dns_blocked,
    check_writes_outside_fail,
    check_tmp_private,
    check_secret_files_unreadable,
    check_writes_inside_work,
    check_fork_bomb_contained,
    check_memory_limited,
    check_endless_loop_killed,
    check_deadline_kills_descendants,
    check_detached_child_dies_with_run,
    check_env_scrubbed,
    check_no_capabilities,
)
