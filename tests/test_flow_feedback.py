"""What a fix attempt learns from earlier ones: hints reach fixers that read them, tried patches are
never proposed again, and candidates keep the reproduction they were verified with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.fixers.templates import TemplateFixer
from pipeline.flow import FixRequest, fix_issue
from pipeline.grouping import group
from pipeline.ports import ReadsHints
from pipeline.records import CodeContext, ErrorEvent, Hint, Issue, Patch, Review
from pipeline.sources import load_path
from sandbox.config import make_sandbox

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"
HINT = Hint("fp", "ci", "CI failed: test_display_name expected 'Ada'", "ci:abc")


@pytest.fixture
def request_(tmp_path: Path) -> FixRequest:
    from pipeline.demo import prepare_repo

    repo = prepare_repo(EXAMPLES, tmp_path / "demo")[0]
    event, issue = group(load_path(EXAMPLES / "events" / "3-profile-without-nickname.json")[0])
    return FixRequest(event, issue, repo, tmp_path / "work", TEST_COMMAND)


class HintReader:
    """A fixer that builds its proposal from feedback (as a prompt-building fixer does)."""

    name = "hint-reader"

    def __init__(self) -> None:
        self.seen: list[tuple[str, Sequence[Hint]]] = []

    def propose(self, issue: Issue, event: ErrorEvent, context: CodeContext, history: Sequence[Review]) -> list[Patch]:
        self.seen.append(("propose", ()))
        return []

    def propose_with_hints(self, issue: Issue, event: ErrorEvent, context: CodeContext, history: Sequence[Review],
                           hints: Sequence[Hint]) -> list[Patch]:
        self.seen.append(("propose_with_hints", hints))
        return []


def test_hints_reach_the_fixers_that_read_them_and_only_when_there_are_some(request_: FixRequest) -> None:
    reader = HintReader()
    assert isinstance(reader, ReadsHints) and not isinstance(TemplateFixer(), ReadsHints)
    sandbox = make_sandbox("bwrap")

    fix_issue(request_, [reader], sandbox)
    outcome = fix_issue(replace(request_, hints=(HINT,)), [reader], sandbox)

    assert reader.seen == [("propose", ()), ("propose_with_hints", (HINT,))]
    assert outcome.status == "no_fix" and outcome.reason.startswith("no fixer has a patch")


def test_a_patch_tried_before_is_not_proposed_again_and_the_next_one_is_verified(request_: FixRequest) -> None:
    sandbox = make_sandbox("bwrap")
    first = fix_issue(request_, [TemplateFixer()], sandbox)
    assert first.status == "verified" and first.best is not None
    assert first.best.reproduction is not None and "def test_replay_0" in first.best.reproduction

    second = fix_issue(replace(request_, tried=frozenset({first.best.patch.id})), [TemplateFixer()], sandbox)

    assert second.status == "verified", second.reason
    assert second.best is not None and second.best.patch.id != first.best.patch.id
    assert first.best.patch.id not in {c.patch.id for c in second.candidates}

    tried = frozenset(p.id for p in TemplateFixer().propose(request_.issue, request_.event, second.context, ()))
    none_left = fix_issue(replace(request_, tried=tried), [TemplateFixer()], sandbox)
    assert none_left.status == "no_fix"
    assert none_left.reason == ("every patch the fixers propose for missing-key at shop/users.py:"
                                f"{second.context.crash.line if second.context.crash else 0} in display_name was tried before")
