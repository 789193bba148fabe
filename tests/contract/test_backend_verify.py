"""Verification on every backend, end to end on the example service, with the repo's environment.

The flow builds the repo's environment inside the sandbox (sandbox/env.py: wheels fetched on the host,
the venv made and installed offline inside), mounts it read-only, and runs the replays and the test
command with its interpreter, on docker as on bwrap. A repo's own tools (`tool_paths`) are mounted
too and lead PATH.
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
FIXABLE = ("2-checkout-coupon-absent", "3-profile-without-nickname", "4-summary-of-empty-draft",
           "5-summary-of-gift-card-order")
TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"


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
    root.chmod(0o755)
    return root


def _request(repo: Path, tmp_path: Path, envs: Path, tool_paths: tuple[Path, ...] = (),
             event: str = "3-profile-without-nickname", test_command: str = TEST_COMMAND) -> FixRequest:
    event_, issue = group(load_path(EXAMPLES / "events" / f"{event}.json")[0])
    return FixRequest(event_, issue, repo, tmp_path / "work", test_command=test_command, tool_paths=tool_paths,
                      env_home=envs)


def test_a_repos_own_tools_are_mounted_and_first_on_path(
    sandbox_mounting: Callable[..., Sandbox], repo: Path, toolenv: Path, repo_env_cache: Path, tmp_path: Path
) -> None:
    sandbox = sandbox_mounting(toolenv)
    request = _request(repo, tmp_path, repo_env_cache, (toolenv,), test_command="repo-tests")

    outcome = fix_issue(request, [TemplateFixer()], sandbox)

    assert outcome.status == "verified", outcome.reason
    v = outcome.best.verification  # type: ignore[union-attr]
    assert [run.kind for run in v.runs] == ["replays_before", "tests_before", "replays_after", "tests_after"]
    assert v.tests_pass_after is True and "passed" in v.runs[-1].output_tail


def test_without_the_mount_the_test_command_is_not_found_and_the_tests_give_no_evidence(
    sandbox: Sandbox, repo: Path, repo_env_cache: Path, tmp_path: Path
) -> None:
    outcome = fix_issue(_request(repo, tmp_path, repo_env_cache, test_command="repo-tests"), [TemplateFixer()],
                        sandbox)

    v = outcome.best.verification  # type: ignore[union-attr]
    tests = v.runs[1]
    assert tests.kind == "tests_before" and tests.exit_code == 127  # sh: command not found
    assert v.tests_pass_after is None


@pytest.mark.parametrize("event", FIXABLE)
def test_every_fixable_example_crash_is_replayed_fixed_and_tested(
    sandbox: Sandbox, event: str, repo: Path, repo_env_cache: Path, tmp_path: Path
) -> None:
    outcome = fix_issue(_request(repo, tmp_path, repo_env_cache, event=event), [TemplateFixer()], sandbox)

    assert outcome.status == "verified", outcome.reason
    v = outcome.best.verification  # type: ignore[union-attr]
    assert v.reproduced and v.repro_passes_after and v.tests_pass_after is True
    assert all(run.exit_code == 0 for run in v.runs if run.kind in ("replays_after", "tests_after"))
