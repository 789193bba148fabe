"""The Celery tasks: thin wrappers that take ids, call pipeline stages, and are safe to run twice.

Delivery is at least once (app.py), so each task first looks at what is already stored:

    ingest_event       the store drops an event id it already has; only an issue's first event
                       enqueues attempt_fix
    attempt_fix        does nothing once the issue has candidates awaiting review or is past fixing;
                       an issue left in "fixing" by a dead worker is attempted again, and candidate
                       ids are content hashes, so a repeated attempt rewrites the same candidates
    publish_candidate  approve() returns the stored pull request; branch and commit are deterministic
    run_triage         only enqueues; attempt_fix decides
    sync_pull_requests moves an issue before its pull request, so a rerun finds the PR still open

Retries follow the error tree: a TransientError is retried with backoff; a PermanentError is not.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog

from pipeline.errors import ConfigError, PermanentError, TransientError
from pipeline.ingest import ingest_events
from pipeline.records import CandidateStatus, FixCandidate, Issue, IssueStatus
from pipeline.review import approve
from pipeline.sources import parse_payload
from pipeline.triage import attempt, close_cluster, pick
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
_CLOSING = {"merged": IssueStatus.MERGED, "closed": IssueStatus.CLOSED}


@task(**_RETRY)
def ingest_event(payload: dict[str, Any], source: str) -> dict[str, list[str]]:
    """Store one Sentry event (any JSON shape); enqueue a fix attempt for a new issue."""
    deps = current_deps()
    store = deps.store
    report = ingest_events(store, [parse_payload(payload, source)], deps.in_app, deps.templates,
                           deps.source_lines)
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
        result = attempt(store, settings, deps.fixers, deps.sandbox_for, issue, work_base)
    except TransientError:
        # Out of "fixing", so the retry (or, once retries run out, the periodic triage) picks it up.
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
    """Ask the code host about each open pull request; record the merged and closed ones."""
    deps = current_deps()
    store, host = deps.store, deps.code_host
    changed: dict[str, str] = {}
    for pr in store.list_pull_requests():
        if pr.state != "open":
            continue
        try:
            repo = deps.settings.repo_named(pr.repo)
        except ConfigError:
            log.warning("pull_request.repo_unconfigured", candidate_id=pr.candidate_id, repo=pr.repo)
            continue
        state = host.pull_request_state(repo, pr)
        if state not in _CLOSING:
            continue
        candidate = store.get_candidate(pr.candidate_id)
        if candidate is not None:
            close_cluster(store, candidate.issue_fingerprint, _CLOSING[state])  # merged: the whole cluster
        store.save_pull_request(replace(pr, state=state))
        changed[pr.candidate_id] = state
        log.info("pull_request.synced", candidate_id=pr.candidate_id, state=state)
    return changed
