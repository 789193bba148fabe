"""Verification policy in the real bubblewrap sandbox on the example service (the backend contract
suite, tests/contract/, runs the rest of verification on every backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.fixers.templates import TemplateFixer
from pipeline.flow import FixRequest, fix_issue
from pipeline.grouping import group
from pipeline.sources import load_path
from sandbox.config import make_sandbox

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    from pipeline.demo import prepare_repo

    return prepare_repo(EXAMPLES, tmp_path / "demo")[0]


@pytest.fixture
def toolenv(tmp_path: Path) -> Path:
    """A stand-in for a repo's own virtualenv, outside every folder the sandbox mounts by default."""
    root = tmp_path / "toolenv"
    (root / "bin").mkdir(parents=True)
    tool = root / "bin" / "repo-tests"
    tool.write_text('#!/bin/sh\nexec python -m pytest -q -p no:cacheprovider "$@"\n')
    tool.chmod(0o755)
    return root


def _request(repo: Path, tmp_path: Path, tool_paths: tuple[Path, ...], envs: Path) -> FixRequest:
    event, issue = group(load_path(EXAMPLES / "events" / "3-profile-without-nickname.json")[0])
    return FixRequest(event, issue, repo, tmp_path / "work", test_command="repo-tests", tool_paths=tool_paths,
                      env_home=envs)


def test_a_verified_candidate_without_tests_is_held_when_the_gate_requires_tests(
    repo: Path, toolenv: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    from dataclasses import replace

    request = replace(_request(repo, tmp_path, (), repo_env_cache), test_command=None, triage=True)
    outcome = fix_issue(request, [TemplateFixer()], make_sandbox("bwrap"))
    assert outcome.status == "verified"  # the service has tests/, so they are found and run
    assert outcome.best.verification.tests_run  # type: ignore[union-attr]
    (repo / "tests").rename(repo / "checks")
    (repo / "pyproject.toml").write_text('[project]\nname = "shop"\nversion = "1"\n')
    from helpers_fix import git
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "no discoverable tests")
    held = fix_issue(request, [TemplateFixer()], make_sandbox("bwrap"))
    assert held.status == "verified" and not held.queued
    decision = held.decisions[held.best.id]  # type: ignore[union-attr]
    assert decision.reasons == ("tests not run, and the policy requires them (gate.require_tests)",)
