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


def _request(repo: Path, tmp_path: Path, tool_paths: tuple[Path, ...]) -> FixRequest:
    event, issue = group(load_path(EXAMPLES / "events" / "3-profile-without-nickname.json")[0])
    return FixRequest(event, issue, repo, tmp_path / "work", test_command="repo-tests", tool_paths=tool_paths)


def test_a_repos_own_tools_are_mounted_and_first_on_path(repo: Path, toolenv: Path, tmp_path: Path) -> None:
    outcome = fix_issue(_request(repo, tmp_path, (toolenv,)), [TemplateFixer()], make_sandbox("bwrap", [toolenv]))
    assert outcome.status == "verified", outcome.reason
    kinds = [run.kind for run in outcome.best.verification.runs]  # type: ignore[union-attr]
    assert kinds == ["repro_before", "repro_after", "tests_after"]


def test_without_the_mount_the_test_command_is_not_found_and_nothing_is_verified(
    repo: Path, toolenv: Path, tmp_path: Path
) -> None:
    outcome = fix_issue(_request(repo, tmp_path, ()), [TemplateFixer()], make_sandbox("bwrap"))
    assert outcome.status == "unverified"
    assert outcome.reason == "the test command fails after the patch"
    tests = outcome.best.verification.runs[-1]  # type: ignore[union-attr]
    assert tests.kind == "tests_after" and tests.exit_code == 127  # sh: command not found
