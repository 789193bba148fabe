"""Verification on every backend, end to end on the example service, with the repo's environment.

The repo's environment is made inside the sandbox (`repo_env`) and mounted read-only; its venv's
bin/ leads PATH, so the reproduction (`python -m pytest`) and the test command run with the venv's
interpreter, on docker as on bwrap. Moved here from tests/test_verify.py and run on each backend.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.fixers.templates import TemplateFixer
from pipeline.flow import FixRequest, fix_issue
from pipeline.grouping import group
from pipeline.ports import Sandbox
from pipeline.sources import load_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FIXABLE = ("1-checkout-coupon-null", "3-profile-without-nickname", "4-summary-of-empty-draft",
           "5-summary-of-gift-card-order")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    from pipeline.demo import prepare_repo

    return prepare_repo(EXAMPLES, tmp_path / "demo")[0]


@pytest.fixture
def toolenv(tmp_path: Path) -> Path:
    """A stand-in for a repo's own tools, outside every folder the sandbox mounts by default."""
    root = tmp_path / "toolenv"
    (root / "bin").mkdir(parents=True)
    tool = root / "bin" / "repo-tests"
    tool.write_text('#!/bin/sh\nexec python -m pytest -q -p no:cacheprovider "$@"\n')
    tool.chmod(0o755)
    return root


def _request(repo: Path, tmp_path: Path, tool_paths: tuple[Path, ...], event: str = "3-profile-without-nickname",
             test_command: str = "repo-tests") -> FixRequest:
    event_, issue = group(load_path(EXAMPLES / "events" / f"{event}.json")[0])
    return FixRequest(event_, issue, repo, tmp_path / "work", test_command=test_command, tool_paths=tool_paths)


def test_a_repos_own_tools_are_mounted_and_first_on_path(
    sandbox_mounting: Callable[..., Sandbox], repo: Path, toolenv: Path, repo_env: Path, tmp_path: Path
) -> None:
    sandbox = sandbox_mounting(toolenv, repo_env)
    outcome = fix_issue(_request(repo, tmp_path, (toolenv, repo_env / "venv")), [TemplateFixer()], sandbox)

    assert outcome.status == "verified", outcome.reason
    runs = outcome.best.verification.runs  # type: ignore[union-attr]
    assert [run.kind for run in runs] == ["repro_before", "repro_after", "tests_after"]
    assert "passed" in runs[-1].output_tail


def test_without_the_mount_the_test_command_is_not_found_and_nothing_is_verified(
    sandbox: Sandbox, repo: Path, tmp_path: Path
) -> None:
    outcome = fix_issue(_request(repo, tmp_path, ()), [TemplateFixer()], sandbox)

    assert outcome.status == "unverified"
    assert outcome.reason == "the test command fails after the patch"
    tests = outcome.best.verification.runs[-1]  # type: ignore[union-attr]
    assert tests.kind == "tests_after" and tests.exit_code == 127  # sh: command not found


@pytest.mark.parametrize("event", FIXABLE)
def test_every_fixable_example_crash_is_reproduced_fixed_and_tested(
    sandbox_mounting: Callable[..., Sandbox], event: str, repo: Path, repo_env: Path, tmp_path: Path
) -> None:
    sandbox = sandbox_mounting(repo_env)
    fix = _request(repo, tmp_path, (repo_env / "venv",), event, "python -m pytest -q -p no:cacheprovider")

    outcome = fix_issue(fix, [TemplateFixer()], sandbox)

    assert outcome.status == "verified", outcome.reason
    before, after, tests = outcome.best.verification.runs  # type: ignore[union-attr]
    assert before.exit_code == 1 and after.exit_code == 0 and tests.exit_code == 0
