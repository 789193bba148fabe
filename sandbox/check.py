"""The isolation self-test behind `autofix sandbox check`: run probes in a sandbox, judge from outside.

Every check runs a small Python probe inside the sandbox and decides from the parent's side: a file
is judged written only if the parent can see it, the network is judged reachable against a listener
the parent itself runs. A check that cannot tell (its control fails) reports failure, never success.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.ports import Limits, RunResult, Sandbox

CANARY_VAR = "AUTOFIX_SELF_CHECK_SECRET"
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
_PROBE_LIMITS = Limits(timeout_s=30.0, memory_mb=1024, max_processes=64, output_bytes=20_000)


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


Check = Callable[[Sandbox, Path], CheckResult]


def self_check(sandbox: Sandbox) -> list[CheckResult]:
    """Run every isolation check against `sandbox`, each in its own scratch workdir."""
    results = []
    for check in CHECKS:
        with tempfile.TemporaryDirectory(prefix="autofix-check-") as tmp:
            results.append(check(sandbox, Path(tmp)))
    return results


def _py(sandbox: Sandbox, workdir: Path, code: str, limits: Limits = _PROBE_LIMITS) -> RunResult:
    return sandbox.run(workdir, [sys.executable, "-c", code], limits)


# --- network ---------------------------------------------------------------------------------------

_CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=3).close()
    print("CONNECTED")
except OSError as exc:
    print("REFUSED", exc)
"""


def check_loopback_blocked(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "network: parent's loopback listener unreachable"
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        try:
            socket.create_connection(("127.0.0.1", port), timeout=3).close()
        except OSError as exc:
            return CheckResult(
                name, False, f"control failed: the parent cannot reach its own listener: {exc}"
            )
        result = _py(sandbox, workdir, _CONNECT.format(port=port))
    if "CONNECTED" in result.output:
        return CheckResult(name, False, f"connected to 127.0.0.1:{port} from inside")
    if "REFUSED" not in result.output:
        return CheckResult(name, False, f"probe did not run: {result.output.strip()[-300:]}")
    return CheckResult(name, True, result.output.strip().removeprefix("REFUSED "))


_EXTERNAL = """
import socket
reached = []
for host, port in (("1.1.1.1", 443), ("8.8.8.8", 53)):
    try:
        socket.create_connection((host, port), timeout=3).close()
        reached.append(f"{host}:{port}")
    except OSError:
        pass
try:
    socket.getaddrinfo("example.com", 443)
    reached.append("dns:example.com")
except OSError:
    pass
print("REACHED", *reached)
"""


def check_external_blocked(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "network: DNS and external addresses unreachable"
    result = _py(sandbox, workdir, _EXTERNAL)
    line = next((ln for ln in result.output.splitlines() if ln.startswith("REACHED")), None)
    if line is None:
        return CheckResult(name, False, f"probe did not run: {result.output.strip()[-300:]}")
    reached = line.split()[1:]
    if reached:
        return CheckResult(name, False, "reached " + ", ".join(reached))
    return CheckResult(name, True, "no route out, no name resolution")


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


def _outside_targets(workdir: Path, token: str) -> list[Path]:
    name = f"autofix-escape-{token}"
    places = [Path.home(), Path("/etc"), Path(sys.prefix), workdir.parent, Path(tempfile.gettempdir())]
    return [p / name for p in dict.fromkeys(places)]


def check_writes_outside_fail(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "filesystem: writes outside the workdir do not reach the host"
    targets = _outside_targets(workdir, secrets.token_hex(6))
    result = sandbox.run(
        workdir, [sys.executable, "-c", _WRITE, json.dumps([str(t) for t in targets])], _PROBE_LIMITS
    )
    escaped = [t for t in targets if t.exists()]
    for path in escaped:
        path.unlink()  # the check found a hole; do not leave its evidence lying around
    if "WROTE" not in result.output:
        return CheckResult(name, False, f"probe did not run: {result.output.strip()[-300:]}")
    if escaped:
        return CheckResult(name, False, "wrote " + ", ".join(map(str, escaped)))
    return CheckResult(name, True, f"{len(targets)} places tried, none reached the host")


def check_tmp_private(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "filesystem: the host's /tmp is not visible"
    with tempfile.NamedTemporaryFile(prefix="autofix-marker-", dir="/tmp") as marker:
        code = f"import os; print('SEEN' if os.path.exists({marker.name!r}) else 'UNSEEN')"
        result = _py(sandbox, workdir, code)
    if "UNSEEN" in result.output:
        return CheckResult(name, True, "a file in the host's /tmp was not there inside")
    if "SEEN" in result.output:
        return CheckResult(name, False, "a file in the host's /tmp was visible inside")
    return CheckResult(name, False, f"probe did not run: {result.output.strip()[-300:]}")


def check_writes_inside_work(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "filesystem: writes inside the workdir succeed"
    token = secrets.token_hex(6)
    _py(sandbox, workdir, f"open('inside.txt', 'w').write({token!r})")
    target = workdir / "inside.txt"
    if target.is_file() and target.read_text() == token:
        return CheckResult(name, True, "the host read back what the sandbox wrote")
    return CheckResult(name, False, "the file written inside is missing on the host")


# --- limits ----------------------------------------------------------------------------------------

_LATE = """
import os, subprocess, time
subprocess.Popen(["sh", "-c", "sleep 1.5; echo late > late.txt"])
time.sleep(60)
"""


def check_timeout_kills(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "limits: the deadline kills the command and what it started"
    result = _py(sandbox, workdir, _LATE, Limits(timeout_s=0.5))
    time.sleep(2.0)  # long enough for the background writer to have written, had it survived
    survivors = (workdir / "late.txt").exists()
    if not result.timed_out or result.duration_s > 10:
        return CheckResult(name, False, f"not stopped at the deadline (took {result.duration_s:.1f}s)")
    if survivors:
        return CheckResult(name, False, "a background process outlived the deadline")
    return CheckResult(name, True, f"stopped after {result.duration_s:.1f}s, exit {result.exit_code}")


_ALLOCATE = """
small = bytearray(32 * 1024 * 1024)
print("SMALL_OK", flush=True)
big = bytearray(1024 * 1024 * 1024)
print("BIG_OK")
"""


def check_memory_limited(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "limits: memory beyond the limit is refused"
    result = _py(sandbox, workdir, _ALLOCATE, Limits(timeout_s=30, memory_mb=256))
    if "SMALL_OK" not in result.output:
        return CheckResult(name, False, f"probe did not run: {result.output.strip()[-300:]}")
    if "BIG_OK" in result.output:
        return CheckResult(name, False, "allocated 1 GiB under a 256 MiB limit")
    return CheckResult(name, True, "1 GiB refused under a 256 MiB limit")


_FORK = """
import os, time
started = 0
for _ in range(64):
    try:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        started += 1
    except OSError:
        break
print("STARTED", started)
"""


def check_processes_limited(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "limits: process count is capped"
    result = _py(sandbox, workdir, _FORK, Limits(timeout_s=20, max_processes=16))
    line = next((ln for ln in result.output.splitlines() if ln.startswith("STARTED")), None)
    if line is None:
        return CheckResult(name, False, f"probe did not run: {result.output.strip()[-300:]}")
    started = int(line.split()[1])
    if started >= 64:
        return CheckResult(name, False, "started 64 processes under a limit of 16")
    return CheckResult(name, True, f"fork refused after {started} children under a limit of 16")


# --- privileges ------------------------------------------------------------------------------------


@contextmanager
def _canary() -> Iterator[str]:
    """A secret placed in this process's environment for the length of one probe."""
    value = secrets.token_hex(16)
    previous = os.environ.get(CANARY_VAR)
    os.environ[CANARY_VAR] = value
    try:
        yield value
    finally:
        if previous is None:
            os.environ.pop(CANARY_VAR, None)
        else:
            os.environ[CANARY_VAR] = previous


def check_env_scrubbed(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "environment: the host's secrets are not passed in"
    with _canary() as value:
        result = _py(sandbox, workdir, "import os, json; print('ENV', json.dumps(dict(os.environ)))")
    line = next((ln for ln in result.output.splitlines() if ln.startswith("ENV ")), None)
    if line is None:
        return CheckResult(name, False, f"probe did not run: {result.output.strip()[-300:]}")
    inside: dict[str, str] = json.loads(line[4:])
    leaked = sorted(
        k
        for k, v in inside.items()
        if k.startswith("AUTOFIX_") or any(w in k.upper() for w in _SECRET_WORDS) or v == value
    )
    if leaked:
        return CheckResult(name, False, "visible inside: " + ", ".join(leaked))
    return CheckResult(name, True, f"{len(inside)} variables inside, none secret")


_CAPS = """
for line in open("/proc/self/status"):
    if line.startswith("CapEff:"):
        print("CAPEFF", line.split()[1])
"""


def check_no_capabilities(sandbox: Sandbox, workdir: Path) -> CheckResult:
    name = "privileges: no capabilities held"
    result = _py(sandbox, workdir, _CAPS)
    line = next((ln for ln in result.output.splitlines() if ln.startswith("CAPEFF")), None)
    if line is None:
        return CheckResult(name, False, f"probe did not run: {result.output.strip()[-300:]}")
    caps = int(line.split()[1], 16)
    return CheckResult(name, caps == 0, f"effective capability mask {caps:#x}")


CHECKS: tuple[Check, ...] = (
    check_loopback_blocked,
    check_external_blocked,
    check_writes_outside_fail,
    check_tmp_private,
    check_writes_inside_work,
    check_timeout_kills,
    check_memory_limited,
    check_processes_limited,
    check_env_scrubbed,
    check_no_capabilities,
)
