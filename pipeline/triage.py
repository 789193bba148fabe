"""Triage: rank open issues by impact x fixability and attempt fixes for the top ones."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import structlog

from pipeline.flow import FixOutcome, FixRequest, fix_issue
from pipeline.ports import Fixer, Limits, Sandbox, Store
from pipeline.records import CandidateStatus, ErrorEvent, Issue, IssueStatus
from pipeline.settings import RepoConfig, Settings

log = structlog.get_logger(__name__)

# How often a class of crash ends in a verified template fix; a prior until outcomes are learned.
FIXABILITY = {
    "AttributeError:NoneType": 0.9, "KeyError": 0.9, "ZeroDivisionError": 0.9,
    "TypeError:NoneType-subscript": 0.8, "TypeError:NoneType-iterable": 0.8, "IndexError": 0.6,
    "TypeError:unsupported-operand": 0.6,
}
_OPEN = (IssueStatus.NEW, IssueStatus.TRIAGED)


def priority(issue: Issue) -> float:
    return round(math.log2(1 + issue.count) * FIXABILITY.get(issue.fix_class, 0.3), 4)


def best_event(events: Sequence[ErrorEvent]) -> ErrorEvent | None:
    """The event to fix from: one whose crash frame captured local variables, newest first.

    An issue can group a Sentry event (with locals) and a log traceback (without) of one crash; only
    the first lets a reproduction be written, whichever arrived last.
    """
    def richness(event: ErrorEvent) -> tuple[bool, datetime]:
        frame = event.crash_frame()
        return (bool(frame and frame.vars), event.timestamp or event.received_at)

    return max(events, key=richness, default=None)


@dataclass
class TriageReport:
    outcomes: dict[str, FixOutcome] = field(default_factory=dict)  # by fingerprint
    skipped: dict[str, str] = field(default_factory=dict)  # fingerprint -> why


def pick(store: Store, limit: int) -> list[Issue]:
    """The open issues by priority; an issue resolved in Sentry is not attempted."""
    issues = [i for status in _OPEN for i in store.list_issues(status) if i.sentry_status != "resolved"]
    ranked = sorted((replace(i, priority=priority(i)) for i in issues), key=lambda i: -i.priority)
    for issue in ranked:
        store.set_issue_priority(issue.fingerprint, issue.priority)  # never the whole row: see set_*
    return ranked[:limit]


SandboxFor = Callable[[RepoConfig], Sandbox]


def attempt(store: Store, settings: Settings, fixers: Sequence[Fixer], sandbox_for: SandboxFor, issue: Issue,
            work_base: Path) -> FixOutcome | str:
    """Fix one issue and store its candidates; returns the outcome, or why it was skipped."""
    repo = settings.repo_for_project(issue.project) if issue.repo is None else settings.repo_named(issue.repo)
    if repo is None or repo.path is None:
        return f"no repo with a local checkout serves project {issue.project!r}"
    event = best_event(store.events_for_issue(issue.fingerprint))
    if event is None:
        return "the issue has no stored event"
    issue = replace(issue, repo=repo.name, status=IssueStatus.FIXING)
    store.update_issue(issue)
    limits = Limits(timeout_s=settings.sandbox_timeout_s, memory_mb=settings.sandbox_memory_mb)
    request = FixRequest(event, issue, repo.path, work_base, repo.test_command, repo.path_mappings,
                         settings.gate, limits, tool_paths=tuple(repo.sandbox_paths))
    outcome = fix_issue(request, fixers, sandbox_for(repo))
    for candidate in outcome.candidates:
        store.save_candidate(candidate)
    queued = any(c.status is CandidateStatus.AWAITING_REVIEW for c in outcome.candidates)
    status = IssueStatus.AWAITING_REVIEW if queued else IssueStatus.UNFIXABLE
    store.update_issue(replace(issue, status=status))
    log.info("issue.triaged", fingerprint=issue.fingerprint, status=status.value, outcome=outcome.status)
    return outcome


def triage(store: Store, settings: Settings, fixers: Sequence[Fixer], sandbox_for: SandboxFor,
           limit: int = 10) -> TriageReport:
    report = TriageReport()
    work_base = settings.home / "worktrees"
    work_base.mkdir(parents=True, exist_ok=True)
    for issue in pick(store, limit):
        result = attempt(store, settings, fixers, sandbox_for, issue, work_base)
        if isinstance(result, str):
            report.skipped[issue.fingerprint] = result
            store.set_issue_status(issue.fingerprint, IssueStatus.TRIAGED)
        else:
            report.outcomes[issue.fingerprint] = result
    return report
