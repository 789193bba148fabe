"""The escape suite, through `autofix sandbox check --backend X`, on every isolating backend."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ATTACKS = ("127.0.0.1", "outside", "DNS", "writes outside", "host secrets", "fork bomb", "memory hog",
           "endless loop", "detached child", "AUTOFIX_* and *_TOKEN")


def test_every_attack_of_the_escape_suite_is_blocked_or_killed(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    env["AUTOFIX_HOME"] = str(tmp_path)  # the state folder: its canary must stay unread
    env["GITHUB_TOKEN"] = "ghp-host-secret"  # a *_TOKEN of the host
    if backend == "docker":
        base_url = request.getfixturevalue("docker_config").base_url
        if base_url:
            env["DOCKER_HOST"] = base_url

    done = subprocess.run([sys.executable, "-m", "pipeline", "sandbox", "check", "--backend", backend, "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["backend"] == backend and report["passed"]
    names = " | ".join(check["name"] for check in report["checks"])
    for attack in ATTACKS:
        assert attack in names, attack
    assert {check["how"] for check in report["checks"]} <= {"blocked", "killed", "absent", "works"}
    env_check = next(c for c in report["checks"] if "_TOKEN" in c["name"])
    assert "GITHUB_TOKEN" in env_check["detail"]  # the host had it; the sandbox did not
