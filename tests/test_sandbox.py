"""The sandbox backends against the real bubblewrap: isolation, limits, environment, backend choice.

No fakes: each isolation claim is shown by a real process failing to do what an unsandboxed one can.
These fail (not skip) where bubblewrap cannot run, so a host that cannot sandbox is never mistaken
for one that can.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from pipeline.errors import ConfigError, SandboxUnavailable
from pipeline.ports import Limits, Sandbox
from sandbox import BwrapConfig, LocalConfig, make_sandbox
from sandbox.bwrap import BubblewrapSandbox
from sandbox.check import self_check
from sandbox.config import parse_config
from sandbox.local import LocalSandbox

CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
    print("CONNECTED")
except OSError as exc:
    print("REFUSED", exc)
"""


@pytest.fixture(scope="module")
def bwrap() -> BubblewrapSandbox:
    return BubblewrapSandbox()


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def test_bubblewrap_sandbox_satisfies_the_sandbox_port(bwrap: BubblewrapSandbox) -> None:
    assert isinstance(bwrap, Sandbox)
    assert isinstance(LocalSandbox(), Sandbox)


# --- network ---------------------------------------------------------------------------------------


def test_sandboxed_process_cannot_reach_a_listener_an_unsandboxed_one_can(
    bwrap: BubblewrapSandbox, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = str(server.getsockname()[1])
        outside = subprocess.run(python(CONNECT, port), capture_output=True, text=True, check=True)
        inside = bwrap.run(tmp_path, python(CONNECT, port))

    assert outside.stdout.startswith("CONNECTED")
    assert inside.output.startswith("REFUSED"), inside.output


def test_sandboxed_process_cannot_resolve_external_names(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    code = (
        "import socket\ntry:\n socket.getaddrinfo('example.com', 443); print('RESOLVED')\n"
        "except OSError: print('NO_DNS')"
    )

    result = bwrap.run(tmp_path, python(code))

    assert result.output.strip() == "NO_DNS", result.output


# --- filesystem ------------------------------------------------------------------------------------

WRITE = """
import sys
for path in sys.argv[1:]:
    try:
        open(path, "w").write("escaped")
        print("WROTE", path)
    except OSError as exc:
        print("DENIED", path, exc.strerror)
"""


def test_writes_outside_the_workdir_leave_no_file_on_the_host(
    bwrap: BubblewrapSandbox, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    name = f"escape-{tmp_path.name}"
    targets = [tmp_path / name, Path.home() / name, Path("/etc") / name, Path(sys.prefix) / name]
    try:
        result = bwrap.run(workdir, python(WRITE, *map(str, targets)))
        leaked = [t for t in targets if t.exists()]
    finally:
        for target in targets:
            target.unlink(missing_ok=True)

    assert leaked == []
    # The workdir's sibling lies on the sandbox's private /tmp: writable there, invisible here.
    # Everything else is a read-only mount and refuses outright.
    for target in targets[1:]:
        assert f"DENIED {target} Read-only file system" in result.output


def test_writes_inside_the_workdir_are_kept(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    result = bwrap.run(tmp_path, ["sh", "-c", "mkdir -p sub && echo kept > sub/out.txt"])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "sub" / "out.txt").read_text() == "kept\n"


def test_the_hosts_tmp_is_not_shared(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    host_file = tmp_path / "host-only.txt"  # under the host's /tmp, outside the workdir
    host_file.write_text("secret")
    scratch = Path("/tmp") / f"scratch-{tmp_path.name}"

    result = bwrap.run(workdir, ["sh", "-c", f"cat {host_file}; echo private > {scratch} && echo wrote"])

    assert "secret" not in result.output
    assert "wrote" in result.output  # the sandbox has a /tmp of its own...
    assert not scratch.exists()  # ...that the host never sees


def test_sandboxed_process_cannot_make_new_user_namespaces(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    result = bwrap.run(tmp_path, ["sh", "-c", "unshare --user true && echo NESTED || echo BLOCKED"])

    assert result.output.strip().endswith("BLOCKED"), result.output


# --- limits ----------------------------------------------------------------------------------------


def test_a_command_past_its_deadline_is_killed_and_reported_timed_out(
    bwrap: BubblewrapSandbox, tmp_path: Path
) -> None:
    result = bwrap.run(tmp_path, ["sh", "-c", "echo started; sleep 30"], Limits(timeout_s=0.5))

    assert result.timed_out
    assert result.exit_code == 124
    assert result.duration_s < 5
    assert "started" in result.output


def test_allocating_beyond_the_memory_limit_fails(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    code = "bytearray(16 * 2**20); print('small ok', flush=True); bytearray(2**30); print('big ok')"
    result = bwrap.run(tmp_path, python(code), Limits(memory_mb=256))

    assert "small ok" in result.output
    assert "big ok" not in result.output
    assert "MemoryError" in result.output
    assert result.exit_code != 0


def test_starting_more_processes_than_the_limit_is_refused(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    code = (
        "import os, time\nn = 0\nfor _ in range(100):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(3); os._exit(0)\n    n += 1\nprint('started', n)"
    )
    result = bwrap.run(tmp_path, python(code), Limits(max_processes=20))

    started = int(result.output.split("started")[1].split()[0])
    assert started < 20


def test_output_keeps_only_the_tail_of_stdout_and_stderr_merged(
    bwrap: BubblewrapSandbox, tmp_path: Path
) -> None:
    code = "import sys\nprint('x' * 100_000, flush=True)\nprint('the end', file=sys.stderr)"
    result = bwrap.run(tmp_path, python(code), Limits(output_bytes=1000))

    assert len(result.output) <= 1000
    assert result.output.endswith("the end\n")


# --- environment -----------------------------------------------------------------------------------


def test_parent_secrets_are_not_visible_inside(
    bwrap: BubblewrapSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOFIX_LLM_API_KEY", "sk-parent-secret")
    code = "import os, json; print(json.dumps(dict(os.environ)))"

    result = bwrap.run(tmp_path, python(code), env={"GIVEN": "yes"})
    inside = json.loads(result.output)

    assert "AUTOFIX_LLM_API_KEY" not in inside
    assert "sk-parent-secret" not in result.output
    assert inside["GIVEN"] == "yes"
    assert inside["PYTHONDONTWRITEBYTECODE"] == "1"
    assert not inside["HOME"].startswith(str(Path.home()))


def test_pytest_runs_inside_with_the_callers_python(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    (tmp_path / "test_inside.py").write_text(
        "def test_passes():\n    assert 1 + 1 == 2\n\ndef test_fails():\n    assert 1 + 1 == 3\n"
    )

    result = bwrap.run(tmp_path, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])

    assert "1 failed, 1 passed" in result.output, result.output
    assert result.exit_code == 1


# --- backend choice --------------------------------------------------------------------------------


def test_auto_picks_an_isolating_backend() -> None:
    assert make_sandbox("auto").name == "bwrap"


def test_auto_refuses_rather_than_falling_back_to_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap to be found

    with pytest.raises(SandboxUnavailable, match="AUTOFIX_SANDBOX=local"):
        make_sandbox("auto")


def test_missing_bwrap_raises_sandbox_unavailable() -> None:
    with pytest.raises(SandboxUnavailable, match="not installed"):
        BwrapConfig(executable=Path("/nonexistent/bwrap")).build()


def test_a_bwrap_that_cannot_make_a_sandbox_raises_sandbox_unavailable() -> None:
    with pytest.raises(SandboxUnavailable, match="cannot create a sandbox"):
        BwrapConfig(executable=Path("/bin/false")).build()


def test_local_backend_warns_every_time_it_is_built() -> None:
    with capture_logs() as logs:
        make_sandbox("local")
        make_sandbox("local")

    warnings = [e for e in logs if e["event"] == "sandbox.local_selected"]
    assert len(warnings) == 2
    assert all(e["log_level"] == "warning" for e in warnings)


def test_an_unknown_backend_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        make_sandbox("chroot")


def test_backend_config_is_chosen_by_its_kind() -> None:
    assert isinstance(parse_config({"kind": "local"}), LocalConfig)
    config = parse_config({"kind": "bwrap", "extra_ro_paths": ["/srv/data"]})
    assert isinstance(config, BwrapConfig)
    assert config.extra_ro_paths == (Path("/srv/data"),)


# --- self check ------------------------------------------------------------------------------------


def test_self_check_passes_every_check_for_bwrap(bwrap: BubblewrapSandbox) -> None:
    results = self_check(bwrap)

    assert [r for r in results if not r.passed] == []
    assert len(results) >= 8


def test_self_check_reports_local_as_not_isolated() -> None:
    failed = {r.name for r in self_check(LocalSandbox()) if not r.passed}

    assert "network: parent's loopback listener unreachable" in failed
    assert "filesystem: writes outside the workdir do not reach the host" in failed
