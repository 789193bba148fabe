"""Triage: rank open issues by impact x fixability and attempt fixes for the top ones.

One attempt per root-cause cluster: the cluster's best-ranked open issue is attempted, and while
a candidate of the cluster awaits review (or is approved or published) its other issues wait for
it instead of getting fixes of their own. When that pull request is merged, close_cluster closes
every issue of the cluster. External failures (timeouts, connection and OS errors) are recorded
but never attempted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import structlog

from pipeline.fix_classes import FixClass
from pipeline.flow import FixOutcome, FixRequest, IterativeFixer, fix_issue
from pipeline.learning import Ledger
from pipeline.ports import Fixer, Limits, Sandbox, Store
from pipeline.records import CandidateStatus, ErrorEvent, Issue, IssueStatus
from pipeline.settings import RepoConfig, Settings

log = structlog.get_logger(__name__)

# How often a class of crash ends in a verified template fix; a prior until outcomes are learned.
FIXABILITY: dict[str, float] = {
    FixClass.NONE_ATTRIBUTE: 0.9, FixClass.MISSING_KEY: 0.9, FixClass.ZERO_DIVISION: 0.9,
    FixClass.NONE_SUBSCRIPT: 0.8, FixClass.NONE_ITERABLE: 0.8, FixClass.INDEX_RANGE: 0.6,
    FixClass.TYPE_MISMATCH: 0.6, FixClass.MISSING_ATTRIBUTE: 0.5, FixClass.UNDEFINED_NAME: 0.5,
    FixClass.NONE_CALL: 0.3, FixClass.EXHAUSTED_ITERATOR: 0.3, FixClass.UNBOUND_LOCAL: 0.3,
    FixClass.PARSE_VALUE: 0.3, FixClass.VALUE_ERROR: 0.3, FixClass.TYPE_ERROR: 0.3, FixClass.OTHER: 0.3,
    FixClass.WRONG_ARGUMENTS: 0.2, FixClass.ENCODING: 0.2, FixClass.OVERFLOW: 0.2, FixClass.RAISED: 0.2,
    FixClass.ASSERTION: 0.1, FixClass.RECURSION: 0.1, FixClass.IMPORT_ERROR: 0.05,
    FixClass.MESSAGE: 0.0, FixClass.EXTERNAL: 0.0,
}
SKIPPED_CLASSES = {FixClass.EXTERNAL: "an external failure (timeout, connection or OS error): recorded, not "
                   "attempted", FixClass.MESSAGE: "a logged message with no stack: nothing to fix from"}
_OPEN = (IssueStatus.NEW, IssueStatus.TRIAGED)
# A patch with one of these fates is never proposed to the same issue again.
_TRIED = frozenset({CandidateStatus.REJECTED, CandidateStatus.REGRESSED, CandidateStatus.PUBLISHED})
_OFFERED = (CandidateStatus.AWAITING_REVIEW, CandidateStatus.APPROVED, CandidateStatus.PUBLISHED)
# Closed with its cluster when the cluster's fix is merged.
_CLOSABLE = (IssueStatus.NEW, IssueStatus.TRIAGED, IssueStatus.FIXING, IssueStatus.UNFIXABLE,
             IssueStatus.REJECTED, IssueStatus.AWAITING_REVIEW, IssueStatus.APPROVED, IssueStatus.PR_OPEN)


def fixability(fix_class: str) -> float:
    return FIXABILITY.get(fix_class, FIXABILITY[FixClass.OTHER])


def priority(issue: Issue) -> float:
    return round(math.log2(1 + issue.count) * fixability(issue.fix_class), 4)


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
    """The open issues to attempt, best first: at most one per cluster, none of a cluster whose fix
    is already offered, none of a class that is never attempted, none resolved in Sentry."""
    issues = [i for status in _OPEN for i in store.list_issues(status) if i.sentry_status != "resolved"]
    ranked = sorted((replace(i, priority=priority(i)) for i in issues), key=lambda i: (-i.priority, i.fingerprint))
    for issue in ranked:
        store.set_issue_priority(issue.fingerprint, issue.priority)  # never the whole row: see set_*
    chosen: list[Issue] = []
    clusters: set[str] = set()
    for issue in ranked:
        if skip_reason(store, issue) is not None or (issue.cluster_id and issue.cluster_id in clusters):
            continue
        if issue.cluster_id:
            clusters.add(issue.cluster_id)
        chosen.append(issue)
    return chosen[:limit]


def skip_reason(store: Store, issue: Issue) -> str | None:
    """Why the issue is not attempted now: its class is never attempted, or its cluster's fix is
    already offered; None when it may be attempted."""
    if issue.fix_class in SKIPPED_CLASSES:
        return SKIPPED_CLASSES[FixClass(issue.fix_class)]
    offered = cluster_offer(store, issue)
    if offered is not None:
        return f"cluster {issue.cluster_id} already has a fix offered: candidate {offered}"
    return None


def cluster_offer(store: Store, issue: Issue) -> str | None:
    """The id of a candidate offered (awaiting review, approved, published) for another issue of
    the issue's cluster, if there is one."""
    if not issue.cluster_id:
        return None
    for other in store.issues_in_cluster(issue.cluster_id):
        if other.fingerprint == issue.fingerprint:
            continue
        for status in _OFFERED:
            offered = store.list_candidates(status, other.fingerprint)
            if offered:
                return offered[0].id
    return None


def close_cluster(store: Store, fingerprint: str, status: IssueStatus) -> list[str]:
    """Record a pull request's end: merged closes every issue of the issue's cluster (one root cause,
    one fix); closed unmerged ends only this issue, so the cluster's others can be attempted."""
    store.set_issue_status(fingerprint, status)
    issue = store.get_issue(fingerprint)
    if status is not IssueStatus.MERGED or issue is None or not issue.cluster_id:
        return [fingerprint]
    closed = store.set_cluster_status(issue.cluster_id, IssueStatus.MERGED, _CLOSABLE)
    log.info("cluster.closed", cluster_id=issue.cluster_id, issues=len(closed) + 1)
    return sorted({fingerprint, *closed})


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


def run_attempt(store: Store, request: FixRequest, fixers: Sequence[Fixer], sandbox: Sandbox,
                iterative: Sequence[IterativeFixer] = ()) -> FixOutcome:
    """Fix and store every candidate; the issue's status is the caller's to set."""
    outcome = fix_issue(request, fixers, sandbox, iterative)
    for candidate in outcome.candidates:
        store.save_candidate(candidate)
    return outcome


def attempt(store: Store, settings: Settings, fixers: Sequence[Fixer], sandbox_for: SandboxFor, issue: Issue,
            work_base: Path, iterative: Sequence[IterativeFixer] = ()) -> FixOutcome | str:
    """Fix one issue and store its candidates; returns the outcome, or why it was skipped."""
    skipped = skip_reason(store, issue)
    if skipped is not None:
        return skipped
    prepared = prepare(store, settings, issue, work_base)
    if isinstance(prepared, str):
        return prepared
    repo, request = prepared
    issue = replace(request.issue, status=IssueStatus.FIXING)
    store.update_issue(issue)
    outcome = run_attempt(store, replace(request, issue=issue), fixers, sandbox_for(repo), iterative)
    queued = any(c.status is CandidateStatus.AWAITING_REVIEW for c in outcome.candidates)
    status = IssueStatus.AWAITING_REVIEW if queued else IssueStatus.UNFIXABLE
    store.update_issue(replace(issue, status=status))
    log.info("issue.triaged", fingerprint=issue.fingerprint, status=status.value, outcome=outcome.status)
    return outcome


# Told (attempts done, attempts in all, the issue about to be attempted) before each attempt.
OnAttempt = Callable[[int, int, Issue], None]


def triage(store: Store, settings: Settings, fixers: Sequence[Fixer], sandbox_for: SandboxFor,
           limit: int = 10, on_attempt: OnAttempt | None = None,
           iterative: Sequence[IterativeFixer] = ()) -> TriageReport:
    """Attempt up to `limit` issues: per cluster its best-ranked open issue, and when that one gets
    no fix awaiting review, the cluster's next open issue (another event may carry what the first
    lacked, such as captured arguments)."""
    report = TriageReport()
    work_base = settings.home / "worktrees"
    work_base.mkdir(parents=True, exist_ok=True)
    attempts = 0
    picked = pick(store, limit)
    for first in picked:
        for issue in _cluster_queue(store, first):
            if attempts >= limit:
                break
            if on_attempt is not None:
                on_attempt(attempts, len(picked), issue)
            attempts += 1
            result = attempt(store, settings, fixers, sandbox_for, issue, work_base, iterative)
            if isinstance(result, str):
                report.skipped[issue.fingerprint] = result
                store.set_issue_status(issue.fingerprint, IssueStatus.TRIAGED)
                break
            report.outcomes[issue.fingerprint] = result
            if any(c.status is CandidateStatus.AWAITING_REVIEW for c in result.candidates):
                break
    for issue in (i for status in _OPEN for i in store.list_issues(status)):
        why = skip_reason(store, issue)  # never attempted, or waiting for its cluster's fix
        if why is not None:
            report.skipped[issue.fingerprint] = why
            store.set_issue_status(issue.fingerprint, IssueStatus.TRIAGED)
    return report


def _cluster_queue(store: Store, first: Issue) -> list[Issue]:
    """The issue, then the other open issues of its cluster, best first."""
    if not first.cluster_id:
        return [first]
    others = [replace(i, priority=priority(i)) for i in store.issues_in_cluster(first.cluster_id)
              if i.fingerprint != first.fingerprint and i.status in _OPEN]
    return [first, *sorted(others, key=lambda i: (-i.priority, i.fingerprint))]
