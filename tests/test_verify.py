"""Verification in the real bubblewrap sandbox, end to end on the example service."""

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


def test_a_repos_own_tools_are_mounted_and_first_on_path(
    repo: Path, toolenv: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    outcome = fix_issue(_request(repo, tmp_path, (toolenv,), repo_env_cache), [TemplateFixer()], make_sandbox("bwrap"))
    assert outcome.status == "verified", outcome.reason
    v = outcome.best.verification  # type: ignore[union-attr]
    assert [run.kind for run in v.runs] == ["replays_before", "tests_before", "replays_after", "tests_after"]
    assert v.tests_pass_after is True
    assert "tests passed on the base and still pass" in v.reason


def test_without_the_mount_the_test_command_is_not_found_and_the_tests_give_no_evidence(
    repo: Path, toolenv: Path, tmp_path: Path, repo_env_cache: Path
) -> None:
    outcome = fix_issue(_request(repo, tmp_path, (), repo_env_cache), [TemplateFixer()], make_sandbox("bwrap"))
    v = outcome.best.verification  # type: ignore[union-attr]
    tests = v.runs[1]
    assert tests.kind == "tests_before" and tests.exit_code == 127  # sh: command not found
    # Red on the base with no test ids: nothing to compare, so the tests count as not run.
    assert v.tests_pass_after is None
    assert "tests not run: the test command fails on the base and reports no test ids" in v.reason


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
