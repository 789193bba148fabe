"""Triage: rank open issues by impact x fixability and attempt fixes for the top ones."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import structlog

from pipeline.flow import FixOutcome, FixRequest, fix_issue
from pipeline.learning import Ledger
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
# A patch with one of these fates is never proposed to the same issue again.
_TRIED = frozenset({CandidateStatus.REJECTED, CandidateStatus.REGRESSED, CandidateStatus.PUBLISHED})


def priority(issue: Issue) -> float:
    return round(math.log2(1 + issue.count) * FIXABILITY.get(issue.fix_class, 0.3), 4)


def best_event(events: Sequence[ErrorEvent]) -> ErrorEvent | None:
    """The event to fix from: one whose crash frame captured local variables, then the one with the
    most in-app frames free of scrubbed values (those can be replayed), newest first.

    An issue can group a Sentry event (with locals) and a log traceback (without) of one crash; only
    the first lets a reproduction be written, whichever arrived last.
    """
    def richness(event: ErrorEvent) -> tuple[bool, int, datetime]:
        frame = event.crash_frame()
        exc = event.primary
        clean = sum(1 for f in (exc.frames if exc else ()) if f.in_app and f.vars and "[Filtered" not in repr(f.vars))
        return (bool(frame and frame.vars), clean, event.timestamp or event.received_at)

    return max(events, key=richness, default=None)


@dataclass
class TriageReport:
    outcomes: dict[str, FixOutcome] = field(default_factory=dict)  # by fingerprint
    skipped: dict[str, str] = field(default_factory=dict)  # fingerprint -> why


def pick(store: Store, limit: int) -> list[Issue]:
    issues = [i for status in _OPEN for i in store.list_issues(status)]
    ranked = sorted((replace(i, priority=priority(i)) for i in issues), key=lambda i: -i.priority)
    for issue in ranked:
        store.set_issue_priority(issue.fingerprint, issue.priority)  # never the whole row: see set_*
    return ranked[:limit]


SandboxFor = Callable[[RepoConfig], Sandbox]


def prepare(store: Store, settings: Settings, issue: Issue,
            work_base: Path) -> tuple[RepoConfig, FixRequest] | str:
    """The repo and the fix request for one issue, or why it cannot be attempted.

    The request carries the issue's hints (CI output, reviewers' hints), the patches already tried
    (rejected, regressed or published: never proposed again) and the gate's learned record.
    """
    repo = settings.repo_for_project(issue.project) if issue.repo is None else settings.repo_named(issue.repo)
    if repo is None or repo.path is None:
        return f"no repo with a local checkout serves project {issue.project!r}"
    event = best_event(store.events_for_issue(issue.fingerprint))
    if event is None:
        return "the issue has no stored event"
    earlier = store.list_candidates(issue_fingerprint=issue.fingerprint)
    tried = frozenset(c.patch.id for c in earlier if c.status in _TRIED)
    history = tuple(review for c in earlier if c.status in _TRIED for review in store.reviews_for(c.id))
    learned = Ledger.from_outcomes(store.outcomes(), settings.learning) if settings.learning.enabled else None
    limits = Limits(timeout_s=settings.sandbox_timeout_s, memory_mb=settings.sandbox_memory_mb)
    request = FixRequest(event, replace(issue, repo=repo.name), repo.path, work_base, repo.test_command,
                         repo.path_mappings, settings.gate, limits, history, tuple(repo.sandbox_paths),
                         tuple(store.hints_for(issue.fingerprint)), tried, learned,
                         default_branch=repo.default_branch, env_home=settings.envs_dir,
                         env=settings.repo_env, setup_command=repo.setup_command, triage=True)
    return repo, request


def run_attempt(store: Store, request: FixRequest, fixers: Sequence[Fixer], sandbox: Sandbox) -> FixOutcome:
    """Fix and store every candidate; the issue's status is the caller's to set."""
    outcome = fix_issue(request, fixers, sandbox)
    for candidate in outcome.candidates:
        store.save_candidate(candidate)
    return outcome


def attempt(store: Store, settings: Settings, fixers: Sequence[Fixer], sandbox_for: SandboxFor, issue: Issue,
            work_base: Path) -> FixOutcome | str:
    """Fix one issue and store its candidates; returns the outcome, or why it was skipped."""
    prepared = prepare(store, settings, issue, work_base)
    if isinstance(prepared, str):
        return prepared
    repo, request = prepared
    issue = replace(request.issue, status=IssueStatus.FIXING)
    store.update_issue(issue)
    outcome = run_attempt(store, replace(request, issue=issue), fixers, sandbox_for(repo))
    queued = any(c.status is CandidateStatus.AWAITING_REVIEW for c in outcome.candidates)
    status = IssueStatus.AWAITING_REVIEW if queued else IssueStatus.UNFIXABLE
    store.update_issue(replace(issue, status=status))
    log.info("issue.triaged", fingerprint=issue.fingerprint, status=status.value, outcome=outcome.status)
    return outcome


# Told (attempts done, attempts in all, the issue about to be attempted) before each attempt.
OnAttempt = Callable[[int, int, Issue], None]


def triage(store: Store, settings: Settings, fixers: Sequence[Fixer], sandbox_for: SandboxFor,
           limit: int = 10, on_attempt: OnAttempt | None = None) -> TriageReport:
    report = TriageReport()
    work_base = settings.home / "worktrees"
    work_base.mkdir(parents=True, exist_ok=True)
    picked = pick(store, limit)
    for done, issue in enumerate(picked):
        if on_attempt is not None:
            on_attempt(done, len(picked), issue)
        result = attempt(store, settings, fixers, sandbox_for, issue, work_base)
        if isinstance(result, str):
            report.skipped[issue.fingerprint] = result
            store.set_issue_status(issue.fingerprint, IssueStatus.TRIAGED)
        else:
            report.outcomes[issue.fingerprint] = result
    return report
