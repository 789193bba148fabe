"""The Celery tasks: thin wrappers that take ids, call pipeline stages, and are safe to run twice.

Delivery is at least once (app.py), so each task first looks at what is already stored:

    ingest_event       the store drops an event id it already has; only an issue's first event
                       enqueues attempt_fix
    attempt_fix        does nothing once the issue has candidates awaiting review or is past fixing;
                       an issue left in "fixing" by a dead worker is attempted again, and candidate
                       ids are content hashes, so a repeated attempt rewrites the same candidates
    publish_candidate  approve() returns the stored pull request; branch and commit are deterministic
    run_triage         only enqueues; attempt_fix decides
    sync_pull_requests moves an issue before its pull request, so a rerun finds the PR still open;
                       a CI failure is read once per head commit; follow-ups still due are re-sent
    follow_up_pull_request  pushes a candidate already on the branch at most once (its commit says
                       which candidate it holds); does nothing once the pull request moved on
    sync_pull_requests moves an issue before its pull request, so a rerun finds the PR still open
    process_inbox      a processed inbox item is left alone; events are stored once per event id
    sweep_inbox        only enqueues items still pending; process_inbox decides
    pull_sentry        pulled events land in the inbox and are stored once per event id

Retries follow the error tree: a TransientError is retried with backoff; a PermanentError is not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import structlog

from pipeline.errors import ConfigError, PermanentError, SandboxUnavailable, TransientError
from pipeline.inbox import InboxContext, process_id
from pipeline.ingest import ingest_events
from pipeline.ports import CIHost
from pipeline.pull_requests import awaiting_follow_up, follow_up, sync
from pipeline.records import CandidateStatus, FixCandidate, InboxStatus, Issue, IssueStatus, utcnow
from pipeline.regressions import check_recurrences
from pipeline.review import approve
from pipeline.sources import parse_payload
from pipeline.triage import attempt, pick
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
    enqueued = []
    for fingerprint in sorted(report.issues):
        issue = store.get_issue(fingerprint)
        if issue is not None and issue.count == 1 and issue.status is IssueStatus.NEW:
            attempt_fix.delay(fingerprint)
            enqueued.append(fingerprint)
    return {"stored": report.stored, "duplicates": report.duplicates, "enqueued": enqueued}


@task(**_RETRY)
def attempt_fix(fingerprint: str) -> str:
    """Attempt a fix for one issue; returns the outcome's status, or why nothing was done."""
    deps = current_deps()
    store, settings = deps.store, deps.settings
    structlog.contextvars.bind_contextvars(fingerprint=fingerprint)
    issue = store.get_issue(fingerprint)
    if issue is None:
        log.warning("fix.unknown_issue")
        return "unknown issue"
    done = _already_done(store.list_candidates(CandidateStatus.AWAITING_REVIEW, fingerprint), issue)
    if done:
        log.info("fix.already_done", reason=done)
        return done
    work_base = settings.home / "worktrees"
    work_base.mkdir(parents=True, exist_ok=True)
    try:
        result = attempt(store, settings, deps.fixers, deps.sandbox_for, issue, work_base, deps.iterative)
    except TransientError:
        # Out of "fixing", so the retry (or, once retries run out, the periodic triage) picks it up.
        store.set_issue_status(fingerprint, IssueStatus.TRIAGED)
        raise
    except SandboxUnavailable:
        # Permanent for this worker (no retry fixes a missing backend), but no fault of the issue's.
        store.set_issue_status(fingerprint, IssueStatus.TRIAGED)
        raise
    except PermanentError as exc:
        log.warning("fix.failed_permanently", error=str(exc), error_type=type(exc).__name__)
        store.set_issue_status(fingerprint, IssueStatus.UNFIXABLE)
        raise
    if isinstance(result, str):
        log.info("fix.skipped", reason=result)
        store.set_issue_status(fingerprint, IssueStatus.TRIAGED)
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
def run_triage(limit: int) -> list[str]:
    """Rank the open issues and enqueue a fix attempt for the top `limit`."""
    issues = pick(current_deps().store, limit)
    for issue in issues:
        attempt_fix.delay(issue.fingerprint)
    log.info("triage.enqueued", issues=len(issues))
    return [issue.fingerprint for issue in issues]


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
    """Normalise, scrub, group and store one inbox item (see pipeline/inbox.py)."""
    structlog.contextvars.bind_contextvars(inbox_id=item_id)
    result = process_id(_inbox_context(), item_id)
    if result is None:
        log.warning("inbox.unknown_item")
        return {"status": "unknown"}
    return {"status": result.status.value, "outcome": result.outcome, "error": result.error,
            "stored": list(result.stored), "duplicates": list(result.duplicates)}


def sweep(older_than_s: int = SWEEP_AFTER_S, limit: int = SWEEP_BATCH) -> list[int]:
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
def sweep_inbox(older_than_s: int = SWEEP_AFTER_S) -> list[int]:
    return sweep(older_than_s)


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
