"""Triage: rank open issues by impact x fixability and attempt fixes for the top ones.

One attempt per root-cause cluster: the cluster's best-ranked open issue is attempted, and while
a candidate of the cluster awaits review (or is approved or published) its other issues wait for
it instead of getting fixes of their own. When that pull request is merged, close_cluster closes
every issue of the cluster. External failures (timeouts, connection and OS errors) are recorded
but never attempted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from pipeline.errors import PermanentError, SandboxUnavailable, TransientError
from pipeline.fix_classes import FixClass
from pipeline.flow import FixOutcome, FixRequest, IterativeFixer, fix_issue
from pipeline.learning import Ledger
from pipeline.ports import Fixer, Limits, RunResult, Sandbox, Store
from pipeline.records import (
    ATTEMPT_SKIPPED,
    Attempt,
    AttemptStatus,
    CandidateStatus,
    ClaimRefused,
    Cost,
    ErrorEvent,
    Issue,
    IssueStatus,
    utcnow,
)
from pipeline.settings import RepoConfig, Settings

log = structlog.get_logger(__name__)

# How often a class of crash ends in a verified template fix; a prior until outcomes are learned.
FIXABILITY: dict[str, float] = {
    FixClass.NONE_ATTRIBUTE: 0.9, FixClass.MISSING_KEY: 0.9, FixClass.ZERO_DIVISION: 0.9,
    FixClass.NONE_SUBSCRIPT: 0.8, FixClass.NONE_ITERABLE: 0.8, FixClass.INDEX_RANGE: 0.6,
    FixClass.NONE_OPERAND: 0.7, FixClass.TYPE_MISMATCH: 0.6, FixClass.MISSING_ATTRIBUTE: 0.5,
    FixClass.UNDEFINED_NAME: 0.5,
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


@dataclass(frozen=True)
class Signals:
    """What an issue's recent events say beyond its count: who is hit and whether it is growing."""

    users: int = 0  # distinct users among the recent events (Sentry's `user`: id, email, username, ip)
    last_day: int = 0  # events in the 24 hours before now
    previous_day: int = 0  # events in the 24 hours before that


RECENT_EVENTS = 200  # events of an issue read for its signals


def _user_of(raw: Mapping[str, Any]) -> str | None:
    data = raw.get("data")
    holders = [raw, *((data.get(k) for k in ("error", "event")) if isinstance(data, Mapping) else ())]
    for holder in holders:
        user = holder.get("user") if isinstance(holder, Mapping) else None
        if isinstance(user, Mapping):
            for key in ("id", "email", "username", "ip_address"):
                if user.get(key):
                    return f"{key}:{user[key]}"
    return None


def signals(store: Store, issue: Issue, now: datetime) -> Signals:
    events = store.events_for_issue(issue.fingerprint, limit=RECENT_EVENTS)
    users = {u for e in events if (u := _user_of(e.raw)) is not None}
    ages = [(now - (e.timestamp or e.received_at)).total_seconds() / 86400 for e in events]
    return Signals(len(users), sum(1 for a in ages if 0 <= a < 1), sum(1 for a in ages if 1 <= a < 2))


def rank(issue: Issue, sig: Signals, now: datetime) -> float:
    """Impact x fixability: events (log), users affected (log), recency (halving per idle week, to a
    floor of a quarter), trend (events of the last day against the day before, within 0.5..2), and
    the fix class's fixability. An issue with no recent activity ranks by events x fixability."""
    users = 1 + 0.5 * math.log2(1 + sig.users)
    idle_days = max((now - issue.last_seen).total_seconds(), 0.0) / 86400
    recency = max(0.25, 0.5 ** (idle_days / 7))
    trend = min(2.0, max(0.5, (sig.last_day + 1) / (sig.previous_day + 1)))
    return float(round(priority(issue) * users * recency * trend, 4))


def pick(store: Store, limit: int, now: datetime | None = None) -> list[Issue]:
    """The open issues to attempt, best first (`rank`): at most one per cluster, none of a cluster
    whose fix is already offered, none of a class that is never attempted, none resolved in Sentry."""
    now = now or utcnow()
    issues = [i for status in _OPEN for i in store.list_issues(status) if i.sentry_status != "resolved"]
    scored = (replace(i, priority=rank(i, signals(store, i, now), now)) for i in issues)
    ranked = sorted(scored, key=lambda i: (-i.priority, i.fingerprint))
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


def repo_name(settings: Settings, issue: Issue) -> str | None:
    """The repo the issue is fixed in (recorded on it by its claim), if one is configured."""
    if issue.repo is not None:
        return issue.repo
    repo = settings.repo_for_project(issue.project)
    return repo.name if repo is not None else None


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
                         env=settings.repo_env, setup_command=repo.setup_command, triage=True,
                         context_config=settings.context, index_cache=settings.context_cache_dir)
    return repo, request


def run_attempt(store: Store, request: FixRequest, fixers: Sequence[Fixer], sandbox: Sandbox,
                iterative: Sequence[IterativeFixer] = ()) -> FixOutcome:
    """Fix and store every candidate; the issue's status is the caller's to set."""
    outcome = fix_issue(request, fixers, sandbox, iterative)
    for candidate in outcome.candidates:
        store.save_candidate(candidate)
    return outcome


class CountingSandbox:
    """A sandbox that counts its runs (recorded on the attempt: the sandbox-runs metric)."""

    def __init__(self, inner: Sandbox) -> None:
        self.inner = inner
        self.name = inner.name
        self.python = inner.python
        self.runs = 0

    def run(self, workdir: Path, command: Sequence[str], limits: Limits | None = None,
            env: Mapping[str, str] | None = None, ro_paths: Sequence[Path] = ()) -> RunResult:
        self.runs += 1
        return self.inner.run(workdir, command, limits or Limits(), env, ro_paths)


def backoff_until(store: Store, settings: Settings, fingerprint: str, now: datetime | None = None) -> datetime:
    """When an issue whose attempt just failed may be attempted again: the base backoff, doubled per
    consecutive failed or deferred attempt before this one, capped."""
    failures = 0
    for earlier in reversed(store.list_attempts(fingerprint)):
        if earlier.status in (AttemptStatus.FAILED, AttemptStatus.DEFERRED):
            failures += 1
        elif earlier.status is AttemptStatus.DONE:
            break
    budgets = settings.budgets
    delay = min(budgets.retry_backoff_s * 2 ** max(failures - 1, 0), budgets.retry_backoff_max_s)
    return (now or utcnow()) + timedelta(seconds=delay)


ERROR_LIMIT = 4000  # characters of an error kept on the attempt


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_LIMIT]


def attempt(store: Store, settings: Settings, fixers: Sequence[Fixer], sandbox_for: SandboxFor, issue: Issue,
            work_base: Path, iterative: Sequence[IterativeFixer] = (), *, task_id: str | None = None,
            claimed: Attempt | None = None) -> FixOutcome | str:
    """Claim the issue, fix it and store its candidates; the outcome, or why nothing was attempted.

    Nothing starts without a claim (store.claim_attempt: one running attempt per issue, within the
    budgets); `claimed` is one already made (a triage run claims before it enqueues). Every way out
    ends the attempt and moves the issue out of `fixing` column by column: a verified fix to
    awaiting review, none to unfixable; a fixer or the sandbox failing transiently, or any
    unexpected exception, to triaged after a backoff, with the error on the attempt; the exception is
    raised again for the caller (Celery's retry policy follows the error tree).
    """
    skipped = skip_reason(store, issue)
    if skipped is not None and claimed is None:
        return skipped
    claim = claimed or store.claim_attempt(issue.fingerprint, settings.claim_budgets(), task_id=task_id,
                                           repo=repo_name(settings, issue))
    if isinstance(claim, ClaimRefused):
        log.info("attempt.refused", fingerprint=issue.fingerprint, reason=claim.reason)
        return claim.reason
    counting: CountingSandbox | None = None

    def finish(status: AttemptStatus, issue_status: IssueStatus, outcome: str, error: str | None = None,
               cost: Cost | None = None, backoff: bool = False) -> None:
        retry_after = backoff_until(store, settings, issue.fingerprint) if backoff else None
        store.finish_attempt(claim.id, status, issue_status, outcome=outcome, error=error, cost=cost or Cost(),
                             sandbox_runs=counting.runs if counting else 0, retry_after=retry_after)
        log.info("attempt.finished", fingerprint=issue.fingerprint, attempt_id=claim.id, status=status.value,
                 outcome=outcome, issue_status=issue_status.value, error=error)

    started = time.monotonic()
    try:
        prepared = skipped or prepare(store, settings, issue, work_base)
        if isinstance(prepared, str):
            finish(AttemptStatus.DONE, IssueStatus.TRIAGED, ATTEMPT_SKIPPED, prepared)
            return prepared
        repo, request = prepared
        work_base.mkdir(parents=True, exist_ok=True)
        counting = CountingSandbox(sandbox_for(repo))
        request = replace(request, issue=replace(request.issue, status=IssueStatus.FIXING))
        outcome = run_attempt(store, request, fixers, counting, iterative)
    except SandboxUnavailable as exc:  # permanent for this worker, but no fault of the issue's
        finish(AttemptStatus.FAILED, IssueStatus.TRIAGED, type(exc).__name__, _error_text(exc), backoff=True)
        raise
    except TransientError as exc:
        finish(AttemptStatus.DEFERRED, IssueStatus.TRIAGED, type(exc).__name__, _error_text(exc), backoff=True)
        raise
    except PermanentError as exc:
        finish(AttemptStatus.FAILED, IssueStatus.UNFIXABLE, type(exc).__name__, _error_text(exc))
        raise
    except Exception as exc:
        log.exception("attempt.crashed", fingerprint=issue.fingerprint, attempt_id=claim.id)
        cost = Cost(seconds=round(time.monotonic() - started, 3))
        finish(AttemptStatus.FAILED, IssueStatus.TRIAGED, type(exc).__name__, _error_text(exc), cost, backoff=True)
        raise
    queued = any(c.status is CandidateStatus.AWAITING_REVIEW for c in outcome.candidates)
    if queued:
        finish(AttemptStatus.DONE, IssueStatus.AWAITING_REVIEW, outcome.status, cost=outcome.cost)
    elif outcome.deferred:  # a fixer may still have something once it is back: try again later
        why = "; ".join(f"{name}: {error}" for name, error in outcome.deferred.items())
        finish(AttemptStatus.DEFERRED, IssueStatus.TRIAGED, outcome.status, why, outcome.cost, backoff=True)
    else:
        finish(AttemptStatus.DONE, IssueStatus.UNFIXABLE, outcome.status, cost=outcome.cost)
    log.info("issue.triaged", fingerprint=issue.fingerprint, queued=queued, outcome=outcome.status)
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
            if isinstance(result, str):  # the attempt recorded its own end, or none started
                report.skipped[issue.fingerprint] = result
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
