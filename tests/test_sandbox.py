"""bubblewrap's particulars, the local backend, and backend choice (the contract is in tests/contract/).

No fakes: each isolation claim is shown by a real process failing to do what an unsandboxed one can.
These fail (not skip) where bubblewrap cannot run, so a host that cannot sandbox is never mistaken
for one that can.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from pipeline.errors import ConfigError, PermanentError, SandboxUnavailable, TransientError
from pipeline.ports import Limits, Sandbox
from sandbox import BwrapConfig, LocalConfig, make_sandbox
from sandbox.bwrap import BubblewrapSandbox
from sandbox.check import self_check
from sandbox.config import DockerConfig, parse_config
from sandbox.local import LocalSandbox


@pytest.fixture(scope="module")
def bwrap() -> BubblewrapSandbox:
    return BubblewrapSandbox()


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def test_bubblewrap_sandbox_satisfies_the_sandbox_port(bwrap: BubblewrapSandbox) -> None:
    assert isinstance(bwrap, Sandbox)
    assert isinstance(LocalSandbox(), Sandbox)


# --- bwrap only ------------------------------------------------------------------------------------
# What every backend must do is in tests/contract/; what follows is particular to bubblewrap.


def test_sandboxed_process_cannot_make_new_user_namespaces(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    result = bwrap.run(tmp_path, ["sh", "-c", "unshare --user true && echo NESTED || echo BLOCKED"])

    assert result.output.strip().endswith("BLOCKED"), result.output


def test_allocating_beyond_the_memory_limit_raises_memory_error(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    code = "bytearray(16 * 2**20); print('small ok', flush=True); bytearray(2**30); print('big ok')"
    result = bwrap.run(tmp_path, python(code), Limits(memory_mb=256))

    assert "small ok" in result.output and "big ok" not in result.output
    assert "MemoryError" in result.output  # an address-space rlimit refuses; docker's cgroup kills


@pytest.mark.skipif(os.geteuid() != 0, reason="only root owns /etc/shadow; others cannot read it anyway")
def test_files_of_etc_only_their_owner_may_read_stay_unreadable_when_the_caller_is_root(
    bwrap: BubblewrapSandbox, tmp_path: Path
) -> None:
    secret = [p for p in ("/etc/shadow", "/etc/gshadow") if Path(p).exists()]
    readable = ["/etc/passwd", "/etc/hostname"]
    code = """
import sys
for p in sys.argv[1:]:
    try:
        open(p).read(); print("READ", p)
    except OSError as e:
        print("DENIED", p, e.strerror)
"""

    result = bwrap.run(tmp_path, python(code, *secret, *readable))

    assert Path("/etc/shadow").read_text()  # the host's root can read it...
    for path in secret:
        assert f"DENIED {path}" in result.output, result.output  # ...its sandbox cannot
    for path in readable:
        assert f"READ {path}" in result.output


def test_pytest_runs_inside_with_the_callers_python(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    (tmp_path / "test_inside.py").write_text(
        "def test_passes():\n    assert 1 + 1 == 2\n\ndef test_fails():\n    assert 1 + 1 == 3\n"
    )

    result = bwrap.run(tmp_path, [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"])

    assert "1 failed, 1 passed" in result.output, result.output
    assert result.exit_code == 1


def test_the_sandbox_python_is_the_base_interpreter_and_runs_inside(bwrap: BubblewrapSandbox, tmp_path: Path) -> None:
    result = bwrap.run(tmp_path, [bwrap.python, "-c", "import sys; print(sys.prefix == sys.base_prefix)"])

    assert bwrap.python == str(getattr(sys, "_base_executable", sys.executable))
    assert result.output.strip() == "True", result.output  # not autofix's virtualenv


# --- backend choice --------------------------------------------------------------------------------


NO_ENGINE = DockerConfig(base_url="unix:///nonexistent/docker.sock")


def test_auto_picks_bwrap_when_no_container_engine_answers_and_says_why() -> None:
    with capture_logs() as logs:
        sandbox = make_sandbox("auto", docker=NO_ENGINE)

    assert sandbox.name == "bwrap"
    chosen = next(e for e in logs if e["event"] == "sandbox.auto_selected")
    assert chosen["backend"] == "bwrap"
    assert "no container engine answers" in chosen["reason"] and "/nonexistent/docker.sock" in chosen["reason"]


def test_auto_refuses_rather_than_falling_back_to_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap to be found

    with pytest.raises(SandboxUnavailable, match="AUTOFIX_SANDBOX=local"):
        make_sandbox("auto", docker=NO_ENGINE)


def test_missing_bwrap_raises_sandbox_unavailable_which_is_permanent() -> None:
    with pytest.raises(SandboxUnavailable, match="not installed") as raised:
        BwrapConfig(executable=Path("/nonexistent/bwrap")).build()

    # Retrying does not install bubblewrap: a worker must not retry it as a transient failure.
    assert isinstance(raised.value, PermanentError) and not isinstance(raised.value, TransientError)


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
    docker = parse_config({"kind": "docker", "image": "autofix-sandbox:abc", "cpus": 2})
    assert isinstance(docker, DockerConfig) and docker.image == "autofix-sandbox:abc" and docker.cpus == 2.0


def test_choosing_a_backend_imports_no_sdk_it_does_not_build() -> None:
    code = (
        "import sys\nfrom sandbox.config import make_sandbox\nmake_sandbox('bwrap')\n"
        "print('docker' in sys.modules, 'sandbox.docker' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert done.stdout.split() == ["False", "False"]


# --- self check ------------------------------------------------------------------------------------


def test_self_check_reports_local_as_not_isolated() -> None:
    only = ("check_loopback_blocked", "check_writes_outside_fail", "check_secret_files_unreadable",
            "check_env_scrubbed")
    results = {r.name: r for r in self_check(LocalSandbox(), only=only)}

    assert results["network: TCP to a listener on the host's 127.0.0.1"].how == "escaped"
    assert results["filesystem: writes outside the workdir"].how == "escaped"
    assert results["filesystem: host secrets (canaries in home and the state folder, /etc/shadow)"].how == "escaped"
    # The one thing local does isolate: the environment is built from scratch.
    assert results["environment: the host's AUTOFIX_* and *_TOKEN variables"].passed
