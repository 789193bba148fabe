"""deploy/: the example autofix.toml passes `autofix config check`; the compose file runs the
services the deployment needs, each with a health check, from commands the CLI has, and what differs
between hosts is a variable with the production default. (`make deploy-check` brings it up.)"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from helpers_cli import clean_env, git

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def autofix(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=clean_env(**env),
                          capture_output=True, text=True, timeout=120)


def test_the_example_configuration_passes_config_check_beside_its_checkout(tmp_path: Path) -> None:
    shutil.copy(DEPLOY / "autofix.toml", tmp_path / "autofix.toml")
    checkout = tmp_path / "checkouts" / "shop"
    checkout.mkdir(parents=True)
    git(checkout, "init", "-q")

    result = autofix("config", "check", "--json", cwd=tmp_path, AUTOFIX_CONFIG=str(tmp_path / "autofix.toml"))

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["settings"]["budgets"]["max_concurrent_attempts"] == 2
    assert [c["passed"] for c in report["checks"]] == [True]
    missing = autofix("config", "check", cwd=DEPLOY, AUTOFIX_CONFIG=str(DEPLOY / "autofix.toml"),
                      AUTOFIX_HOME=str(tmp_path / "home"))  # no checkout beside it: a usage error, named
    assert missing.returncode == 2 and "repos[0].path: no such folder" in missing.stderr


def test_the_compose_file_runs_web_both_workers_beat_redis_and_postgres_with_health_checks() -> None:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]

    assert set(services) == {"web", "ingest-worker", "fix-worker", "beat", "redis", "postgres"}
    assert all("healthcheck" in service for service in services.values())
    assert {"redis-data", "postgres-data"} <= set(compose["volumes"])
    commands = {name: services[name]["command"] for name in ("web", "ingest-worker", "fix-worker", "beat")}
    assert commands["ingest-worker"][:3] == ["worker", "--queues", "ingest"]
    assert commands["fix-worker"][:3] == ["worker", "--queues", "fix"]
    assert services["web"]["environment"]["AUTOFIX_INGEST_PROCESSING"] == "celery"
    for name, command in commands.items():
        # One image, the command picks the process.
        assert services[name]["image"] == "${AUTOFIX_IMAGE:-autofix:latest}"
        assert autofix(command[0], "--help", cwd=DEPLOY).returncode == 0, name
    assert 'ENTRYPOINT ["autofix"]' in (DEPLOY / "Dockerfile").read_text()


def test_host_specific_values_default_to_production_and_the_state_folder_is_the_same_path_on_both_sides() -> None:
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]

    assert services["redis"]["image"] == "${AUTOFIX_REDIS_IMAGE:-redis:7-alpine}"
    assert services["postgres"]["image"] == "${AUTOFIX_POSTGRES_IMAGE:-postgres:16-alpine}"
    state = "${AUTOFIX_STATE_DIR:-/var/lib/autofix}"
    for name in ("web", "ingest-worker", "fix-worker", "beat"):
        assert f"{state}:{state}" in services[name]["volumes"], name  # sandbox mounts resolve on the host
        assert services[name]["environment"]["AUTOFIX_HOME"] == state
    (socket,) = [v for v in services["fix-worker"]["volumes"] if isinstance(v, dict)]
    assert socket["target"] == "/var/run/docker.sock" and socket["bind"] == {"create_host_path": False}
