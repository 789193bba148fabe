"""The isolation contract every backend keeps, shown against real bubblewrap and a real container.

No fakes: each claim is shown by a real process failing to do what an unsandboxed one can. These
fail (not skip) where a backend cannot run, so a host that cannot sandbox is never mistaken for one
that can.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.errors import InvalidInput
from pipeline.ports import Limits, Sandbox

CONNECT = """
import socket, sys
try:
    socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3).close()
    print("CONNECTED")
except OSError as exc:
    print("REFUSED", exc)
"""

WRITE = """
import sys
for path in sys.argv[1:]:
    try:
        open(path, "w").write("escaped")
        print("WROTE", path)
    except OSError as exc:
        print("DENIED", path, exc.strerror)
"""


def python(sandbox: Sandbox, code: str, *args: str) -> list[str]:
    return [sandbox.python, "-c", code, *args]


def test_each_backend_satisfies_the_sandbox_port(sandbox: Sandbox) -> None:
    assert isinstance(sandbox, Sandbox)
    assert sandbox.name in ("bwrap", "docker")


# --- network ---------------------------------------------------------------------------------------


def test_a_sandboxed_process_cannot_reach_a_listener_an_unsandboxed_one_can(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = str(server.getsockname()[1])
        outside = subprocess.run([sys.executable, "-c", CONNECT, port], capture_output=True, text=True, check=True)
        inside = sandbox.run(tmp_path, python(sandbox, CONNECT, port))

    assert outside.stdout.startswith("CONNECTED")
    assert inside.output.startswith("REFUSED"), inside.output


def test_a_sandboxed_process_cannot_resolve_external_names(sandbox: Sandbox, tmp_path: Path) -> None:
    code = (
        "import socket\ntry:\n socket.getaddrinfo('example.com', 443); print('RESOLVED')\n"
        "except OSError: print('NO_DNS')"
    )

    result = sandbox.run(tmp_path, python(sandbox, code))

    assert result.output.strip() == "NO_DNS", result.output


# --- filesystem ------------------------------------------------------------------------------------


def test_writes_outside_the_workdir_leave_no_file_on_the_host(sandbox: Sandbox, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    name = f"escape-{tmp_path.name}"
    targets = [tmp_path / name, Path.home() / name, Path("/etc") / name, Path(sys.prefix) / name]
    try:
        result = sandbox.run(workdir, python(sandbox, WRITE, *map(str, targets)))
        leaked = [t for t in targets if t.exists()]
    finally:
        for target in targets:
            target.unlink(missing_ok=True)

    assert leaked == []
    # The workdir's sibling lies on the sandbox's private /tmp: writable there, invisible here.
    # Everything else is read-only or not there at all, and refuses outright.
    for target in targets[1:]:
        assert f"DENIED {target}" in result.output, result.output


def test_writes_inside_the_workdir_are_kept(sandbox: Sandbox, tmp_path: Path) -> None:
    result = sandbox.run(tmp_path, ["sh", "-c", "mkdir -p sub && echo kept > sub/out.txt"])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "sub" / "out.txt").read_text() == "kept\n"


def test_the_hosts_tmp_is_not_shared(sandbox: Sandbox, tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    host_file = tmp_path / "host-only.txt"  # under the host's /tmp, outside the workdir
    host_file.write_text("secret")
    scratch = Path("/tmp") / f"scratch-{tmp_path.name}"

    result = sandbox.run(workdir, ["sh", "-c", f"cat {host_file}; echo private > {scratch} && echo wrote"])

    assert "secret" not in result.output
    assert "wrote" in result.output  # the sandbox has a /tmp of its own...
    assert not scratch.exists()  # ...that the host never sees


def test_read_only_paths_of_a_run_are_readable_at_their_own_path_and_not_writable(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    (shared / "data.txt").write_text("from the host")
    workdir = tmp_path / "work"
    workdir.mkdir()
    code = f"print(open({str(shared / 'data.txt')!r}).read())\n" + WRITE

    result = sandbox.run(workdir, python(sandbox, code, str(shared / "new.txt")), ro_paths=[shared])

    assert "from the host" in result.output, result.output
    assert f"DENIED {shared / 'new.txt'}" in result.output
    assert not (shared / "new.txt").exists()


def test_a_read_only_path_that_does_not_exist_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        sandbox.run(tmp_path, ["true"], ro_paths=[tmp_path / "missing"])


# --- limits ----------------------------------------------------------------------------------------


def test_a_command_past_its_deadline_is_killed_and_reported_timed_out(sandbox: Sandbox, tmp_path: Path) -> None:
    result = sandbox.run(tmp_path, ["sh", "-c", "echo started; sleep 30"], Limits(timeout_s=1.0))

    assert result.timed_out
    assert result.exit_code == 124
    assert result.duration_s < 6
    assert "started" in result.output


def test_allocating_beyond_the_memory_limit_fails(sandbox: Sandbox, tmp_path: Path) -> None:
    code = "bytearray(16 * 2**20); print('small ok', flush=True); bytearray(2**30); print('big ok')"
    result = sandbox.run(tmp_path, python(sandbox, code), Limits(memory_mb=256))

    assert "small ok" in result.output
    assert "big ok" not in result.output
    assert result.exit_code != 0


def test_starting_more_processes_than_the_limit_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    code = (
        "import os, time\nn = 0\nfor _ in range(100):\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        time.sleep(3); os._exit(0)\n    n += 1\nprint('started', n)"
    )
    result = sandbox.run(tmp_path, python(sandbox, code), Limits(max_processes=20))

    started = int(result.output.split("started")[1].split()[0])
    assert started < 20


def test_output_keeps_only_the_tail_of_stdout_and_stderr_merged(sandbox: Sandbox, tmp_path: Path) -> None:
    code = "import sys\nprint('x' * 100_000, flush=True)\nprint('the end', file=sys.stderr)"
    result = sandbox.run(tmp_path, python(sandbox, code), Limits(output_bytes=1000))

    assert len(result.output) <= 1000
    assert result.output.endswith("the end\n")


def test_a_command_that_writes_megabytes_keeps_exactly_the_last_bytes(sandbox: Sandbox, tmp_path: Path) -> None:
    code = "for i in range(200_000):\n    print(f'line {i:06d}')"
    result = sandbox.run(tmp_path, python(sandbox, code), Limits(output_bytes=24))

    assert result.output == "line 199998\nline 199999\n"


# --- environment -----------------------------------------------------------------------------------


def test_parent_secrets_are_not_visible_inside(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOFIX_LLM_API_KEY", "sk-parent-secret")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-parent-secret")
    code = "import os, json; print(json.dumps(dict(os.environ)))"

    result = sandbox.run(tmp_path, python(sandbox, code), env={"GIVEN": "yes"})
    inside = json.loads(result.output)

    assert "AUTOFIX_LLM_API_KEY" not in inside and "GITHUB_TOKEN" not in inside
    assert "parent-secret" not in result.output
    assert inside["GIVEN"] == "yes"
    assert inside["PYTHONDONTWRITEBYTECODE"] == "1"
    assert not inside["HOME"].startswith(str(Path.home()))


# --- a repo's environment ----------------------------------------------------------------------------


def test_a_venv_made_inside_works_read_only_in_later_runs_at_the_same_path(
    sandbox: Sandbox, repo_env: Path, tmp_path: Path
) -> None:
    (tmp_path / "test_inside.py").write_text(
        "def test_passes():\n    assert 1 + 1 == 2\n\ndef test_fails():\n    assert 1 + 1 == 3\n"
    )
    venv_python = str(repo_env / "venv" / "bin" / "python")

    result = sandbox.run(tmp_path, [venv_python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                         ro_paths=[repo_env])
    tamper = sandbox.run(tmp_path, ["sh", "-c", f"echo x > {repo_env}/venv/tampered"], ro_paths=[repo_env])

    assert "1 failed, 1 passed" in result.output, result.output
    assert result.exit_code == 1
    assert tamper.exit_code != 0 and not (repo_env / "venv" / "tampered").exists()
