"""The Celery tasks: thin wrappers that take ids, call pipeline stages, and are safe to run twice.

Delivery is at least once (app.py), so each task first looks at what is already stored:

    ingest_event       the store drops an event id it already has; only an issue's first event
                       enqueues attempt_fix
    attempt_fix        starts only by a claim in the store (one running attempt per issue, within
                       the budgets); a redelivery (its worker died) takes over its own attempt, a
                       second task for the issue is refused; any exception ends the attempt
                       (failed, with its error) and leaves the issue triaged after a backoff.
                       Candidate ids are content hashes: a repeated attempt updates the same
                       candidates, which keep their first created_at and status
    publish_candidate  approve() returns the stored pull request; branch and commit are deterministic
    run_triage         claims the top K within the budgets, then enqueues; a claim is made once
    sync_pull_requests moves an issue before its pull request, so a rerun finds the PR still open;
                       a CI failure is read once per head commit; follow-ups still due are re-sent
    follow_up_pull_request  pushes a candidate already on the branch at most once (its commit says
                       which candidate it holds); does nothing once the pull request moved on
    sync_pull_requests moves an issue before its pull request, so a rerun finds the PR still open
    process_inbox      a processed inbox item is left alone; events are stored once per event id
    sweep_inbox        only enqueues items still pending (process_inbox decides) and reaps attempts
                       whose lease ran out
    pull_sentry        pulled events land in the inbox and are stored once per event id

Retries follow the error tree: a TransientError is retried with backoff; a PermanentError is not.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import structlog

from pipeline.errors import ConfigError, PermanentError, TransientError
from pipeline.inbox import InboxContext, process_id
from pipeline.ingest import ingest_events
from pipeline.ports import CIHost
from pipeline.pull_requests import awaiting_follow_up, follow_up, sync
from pipeline.records import (
    AttemptStatus,
    CandidateStatus,
    ClaimRefused,
    FixCandidate,
    InboxStatus,
    Issue,
    IssueStatus,
    utcnow,
)
from pipeline.regressions import check_recurrences
from pipeline.review import approve
from pipeline.sources import parse_payload
from pipeline.triage import attempt, pick, repo_name, skip_reason
from workers.app import current_deps, task

log = structlog.get_logger(__name__)

_RETRY: dict[str, Any] = {
    "autoretry_for": (TransientError,),
    "retry_backoff": 30,  # seconds before the first retry, doubled each time
    "retry_backoff_max": 30 * 60,
    "retry_jitter": True,
    "max_retries": 6,
    "throws": (PermanentError,),  # expected failures: logged without a traceback
}
_ATTEMPTABLE = {IssueStatus.NEW, IssueStatus.TRIAGED, IssueStatus.FIXING}


@task(**_RETRY)
def ingest_event(payload: dict[str, Any], source: str) -> dict[str, list[str]]:
    """Store one Sentry event (any JSON shape); enqueue a fix attempt for a new issue."""
    deps = current_deps()
    store = deps.store
    report = ingest_events(store, [parse_payload(payload, source)], deps.in_app, deps.templates,
                           deps.source_lines)
    check_recurrences(store, deps.settings, report.issues)  # a merged fix's crash back: reopen
    enqueued = _attempt_new_issues(sorted(report.issues)) if report.stored else []
    return {"stored": report.stored, "duplicates": report.duplicates, "enqueued": enqueued}


@task(**_RETRY)
def attempt_fix(fingerprint: str, attempt_id: str | None = None) -> str:
    """Attempt a fix for one issue; returns the outcome's status, or why nothing was done.

    The attempt starts only by a claim in the store (one running attempt per issue, within the
    budgets), made here under this task's id, or made already by the triage run that sent
    `attempt_id`. A redelivery of this task (its worker died) takes its own attempt over.
    """
    deps = current_deps()
    store, settings = deps.store, deps.settings
    structlog.contextvars.bind_contextvars(fingerprint=fingerprint, attempt_id=attempt_id)
    issue = store.get_issue(fingerprint)
    if issue is None:
        log.warning("fix.unknown_issue")
        return "unknown issue"
    claimed = None
    if attempt_id is not None:
        claimed = store.get_attempt(attempt_id)
        if claimed is None or claimed.status is not AttemptStatus.RUNNING:
            log.info("fix.already_done", reason="the triage run's attempt is over")
            return "attempt already finished"
    else:
        done = _already_done(store.list_candidates(CandidateStatus.AWAITING_REVIEW, fingerprint), issue)
        if done:
            log.info("fix.already_done", reason=done)
            return done
    try:
        result = attempt(store, settings, deps.fixers, deps.sandbox_for, issue, settings.home / "worktrees",
                         deps.iterative, task_id=attempt_fix.request.id, claimed=claimed)
    except PermanentError as exc:
        log.warning("fix.failed_permanently", error=str(exc), error_type=type(exc).__name__)
        raise
    if isinstance(result, str):
        log.info("fix.skipped", reason=result)
        return result
    log.info("fix.attempted", status=result.status, candidates=len(result.candidates))
    return result.status


def _already_done(awaiting: list[FixCandidate], issue: Issue) -> str | None:
    if awaiting:
        return f"{len(awaiting)} candidate(s) already awaiting review"
    if issue.status not in _ATTEMPTABLE:
        return f"issue is {issue.status.value}"
    if issue.sentry_status == "resolved":
        return "issue is resolved in Sentry"
    return None


@task(**_RETRY)
def publish_candidate(candidate_id: str, reviewer: str) -> dict[str, str]:
    """Approve a candidate and open its pull request; a repeat returns the stored one."""
    deps = current_deps()
    pr = approve(deps.store, deps.code_host, deps.settings, candidate_id, reviewer)
    return {"url": pr.url, "branch": pr.branch, "commit_sha": pr.commit_sha}


@task(**_RETRY)
def run_triage(limit: int | None = None) -> dict[str, Any]:
    """Rank the open issues and start the top `limit` (settings.schedule.triage_top_k) within the
    budgets: each is claimed here, then its attempt_fix enqueued with the claim's id. A budget that
    runs out (attempts running at once, today's tokens or cost) stops the run; an issue refused
    for its own reasons (backing off, attempted too often) is passed over for the next."""
    deps = current_deps()
    store, settings = deps.store, deps.settings
    limit = limit or settings.schedule.triage_top_k
    budgets = settings.claim_budgets()
    backing_off = store.backing_off()
    started: list[str] = []
    refused: dict[str, str] = {}
    stopped: str | None = None
    for issue in pick(store, len(store.list_issues())):
        if len(started) >= limit:
            break
        if issue.fingerprint in backing_off:
            refused[issue.fingerprint] = "backing off"
            continue
        task_id = uuid.uuid4().hex
        claim = store.claim_attempt(issue.fingerprint, budgets, task_id=task_id, repo=repo_name(settings, issue))
        if isinstance(claim, ClaimRefused):
            if claim.budget:
                stopped = claim.reason
                break
            refused[issue.fingerprint] = claim.reason
            continue
        attempt_fix.apply_async(args=[issue.fingerprint], kwargs={"attempt_id": claim.id}, task_id=task_id)
        started.append(issue.fingerprint)
    log.info("triage.started", started=started, refused=refused, stopped=stopped)
    return {"started": started, "refused": refused, "stopped": stopped}


@task(**_RETRY)
def sync_pull_requests() -> dict[str, str]:
    """Ask each open pull request's code host for news: merged, closed, CI failed, needs a human.

    A CI failure enqueues follow_up_pull_request; merged issues are then checked for recurrences.
    """
    deps = current_deps()
    store, settings = deps.store, deps.settings
    changed: dict[str, str] = {}
    for pr in store.list_pull_requests():
        if pr.state != "open":
            continue
        try:
            repo = settings.repo_named(pr.repo)
        except ConfigError:
            log.warning("pull_request.repo_unconfigured", candidate_id=pr.candidate_id, repo=pr.repo)
            continue
        try:
            action = sync(store, deps.code_host_for(repo), settings, repo, pr)
        except PermanentError as exc:  # one pull request the host refuses must not stall the others
            log.warning("pull_request.sync_failed", candidate_id=pr.candidate_id, error=str(exc),
                        error_type=type(exc).__name__)
            continue
        if action != "unchanged":
            changed[pr.candidate_id] = action
        current = store.get_pull_request(pr.candidate_id)
        if current is not None and awaiting_follow_up(current):
            follow_up_pull_request.delay(pr.candidate_id)  # also re-sends one a crash left unsent
    merged = [i.fingerprint for i in store.list_issues(IssueStatus.MERGED)]
    for fingerprint in check_recurrences(store, settings, merged):
        changed[fingerprint] = "regressed"
    return changed


@task(**_RETRY)
def follow_up_pull_request(candidate_id: str) -> str:
    """Attempt again the issue of a pull request whose CI failed; push a new verified fix to it."""
    deps = current_deps()
    store, settings = deps.store, deps.settings
    structlog.contextvars.bind_contextvars(candidate_id=candidate_id)
    pr = store.get_pull_request(candidate_id)
    if pr is None or not awaiting_follow_up(pr):
        return "nothing to follow up"
    repo = settings.repo_named(pr.repo)
    host = deps.code_host_for(repo)
    if not isinstance(host, CIHost):
        return "the code host runs no CI"
    work_base = settings.home / "worktrees"
    work_base.mkdir(parents=True, exist_ok=True)
    result = follow_up(store, host, settings, deps.fixers, deps.sandbox_for, repo, candidate_id, work_base,
                       deps.iterative)
    if result is None:
        return "nothing to follow up"
    return "needs a human" if result.needs_human else f"pushed {result.commit_sha[:10]}"
# --- the inbox -----------------------------------------------------------------------------------

SWEEP_AFTER_S = 60  # an item pending this long was never enqueued, or its task was lost
SWEEP_BATCH = 1000


def _inbox_context() -> InboxContext:
    deps = current_deps()
    store = deps.inbox_store
    return InboxContext(store=store, inbox=store, in_app_packages=tuple(deps.settings.in_app_packages),
                        retention=deps.settings.inbox_retention, sentry_api=lambda: deps.sentry_api)


@task(**_RETRY)
def process_inbox(item_id: int) -> dict[str, Any]:
    """Normalise, scrub, group and store one inbox item (see pipeline/inbox.py); an issue it created
    gets an attempt enqueued (budgets.attempt_new_issues), which claims it or not."""
    structlog.contextvars.bind_contextvars(inbox_id=item_id)
    result = process_id(_inbox_context(), item_id)
    if result is None:
        log.warning("inbox.unknown_item")
        return {"status": "unknown"}
    enqueued = _attempt_new_issues(result.issues) if result.stored else []
    return {"status": result.status.value, "outcome": result.outcome, "error": result.error,
            "stored": list(result.stored), "duplicates": list(result.duplicates), "enqueued": enqueued}


def _attempt_new_issues(fingerprints: Sequence[str]) -> list[str]:
    deps = current_deps()
    if not deps.settings.budgets.attempt_new_issues:
        return []
    store = deps.store
    enqueued = []
    for fingerprint in fingerprints:
        issue = store.get_issue(fingerprint)
        if issue is not None and issue.status is IssueStatus.NEW and skip_reason(store, issue) is None:
            attempt_fix.delay(fingerprint)  # a second one for the same issue is refused by the claim
            enqueued.append(fingerprint)
    return enqueued


def sweep(older_than_s: float = SWEEP_AFTER_S, limit: int = SWEEP_BATCH) -> list[int]:
    """Enqueue process_inbox again for items pending longer than `older_than_s` (a broker outage
    at accept time, a lost message); returns their ids. Safe to run often: processing is idempotent."""
    store = current_deps().inbox_store
    pending = store.inbox_items(InboxStatus.PENDING, limit=limit, before=utcnow() - timedelta(seconds=older_than_s))
    for item in pending:
        assert item.id is not None
        process_inbox.delay(item.id)
    if pending:
        log.info("inbox.swept", enqueued=len(pending))
    return [item.id for item in pending if item.id is not None]


@task(**_RETRY)
def sweep_inbox(older_than_s: float | None = None) -> list[int]:
    """The outbox sweep (beat, every schedule.sweep_every_s): rows still pending are enqueued again,
    and running attempts whose lease ran out are reaped (their issues retryable again)."""
    settings = current_deps().settings
    reaped = current_deps().store.reap_attempts(settings.claim_budgets().lease_s)
    if reaped:
        log.warning("attempts.reaped", issues=reaped)
    return sweep(settings.schedule.sweep_after_s if older_than_s is None else older_than_s)


@task(**_RETRY)
def pull_configured() -> dict[str, Any]:
    """Pull every configured Sentry project (schedule.pull_projects); nothing without the API."""
    settings = current_deps().settings
    if not settings.sentry_api_configured or not settings.schedule.pull_projects:
        return {}
    return {project: pull_sentry(project, settings.schedule.pull_query, settings.schedule.pull_limit)
            for project in settings.schedule.pull_projects}


@task(**_RETRY)
def pull_sentry(project: str, query: str = "is:unresolved", limit: int = 100) -> dict[str, Any]:
    """Pull a Sentry project's issues through the REST API into the inbox, processing each event."""
    from pipeline.pull import pull_project

    api = current_deps().sentry_api
    if api is None:
        raise ConfigError("pulls need AUTOFIX_SENTRY_URL and AUTOFIX_SENTRY_API_TOKEN")
    report = pull_project(api, _inbox_context(), project, query=query, limit=limit)
    return {"issues": report.issues, "stored": report.stored, "duplicates": report.duplicates,
            "failed": report.failed}
