"""Pull: a Sentry project's unresolved issues, each one's recommended event, into the inbox.

For each issue the API lists (query and sort as given), the event Sentry recommends (its pick of the
most useful: a stack trace, locals; `latest` where the server has no such choice) is stored in the
inbox raw, as the API returned it, with Sentry's issue id and state, then processed by the inbox
stage like any other payload. An event already stored by another route (the SDK, a webhook) is
dropped there as a duplicate, so pulling often counts nothing twice. `pull_project` is what
`autofix pull` and the periodic task call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from pipeline.errors import InvalidInput, NotFound
from pipeline.inbox import SENTRY_ISSUE_ID, SENTRY_STATUS, InboxContext, ItemResult, process_id
from pipeline.ports import ApiEvent, SentryAPI, SentryIssue
from pipeline.records import InboxItem, InboxKind, InboxStatus, utcnow
from pipeline.sources.envelope import normalize_event_id

log = structlog.get_logger(__name__)


@dataclass
class PullReport:
    project: str
    issues: list[str] = field(default_factory=list)  # Sentry issue ids listed
    stored: list[str] = field(default_factory=list)  # event ids stored
    duplicates: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # Sentry issue id -> why
    inbox_ids: list[int] = field(default_factory=list)


def _event_of(api: SentryAPI, issue: SentryIssue) -> ApiEvent:
    try:
        return api.issue_event(issue.id, "recommended")
    except NotFound:
        return api.issue_event(issue.id, "latest")  # servers older than the recommended choice


def _pages(api: SentryAPI, project: str, query: str, sort: str, limit: int) -> list[SentryIssue]:
    issues: list[SentryIssue] = []
    cursor: str | None = None
    while len(issues) < limit:
        page = api.issues(project, query=query, sort=sort, cursor=cursor, per_page=min(100, limit - len(issues)))
        issues.extend(page.issues[: limit - len(issues)])
        if page.next_cursor is None or not page.issues:
            break
        cursor = page.next_cursor
    return issues


def pull_project(api: SentryAPI, ctx: InboxContext, project: str, *, query: str = "is:unresolved",
                 sort: str = "date", limit: int = 100) -> PullReport:
    report = PullReport(project)
    for issue in _pages(api, project, query, sort, limit):
        report.issues.append(issue.id)
        try:
            fetched = _event_of(api, issue)
        except InvalidInput as exc:
            report.failed[issue.id] = str(exc)
            log.warning("pull.event_unavailable", sentry_issue_id=issue.id, error=str(exc))
            continue
        item = InboxItem(
            kind=InboxKind.API_EVENT, body=fetched.body, received_at=utcnow(), project=project,
            headers={SENTRY_ISSUE_ID: issue.id, SENTRY_STATUS: issue.status},
            event_id=normalize_event_id(fetched.payload.get("eventID")),
        )
        (inbox_id,) = ctx.inbox.add_to_inbox([item])
        assert inbox_id is not None  # API events carry no Request-ID to collide on
        report.inbox_ids.append(inbox_id)
        result = process_id(ctx, inbox_id)
        _count(report, issue, result)
    log.info("pull.done", project=project, issues=len(report.issues), stored=len(report.stored),
             duplicates=len(report.duplicates), failed=len(report.failed))
    return report


def _count(report: PullReport, issue: SentryIssue, result: ItemResult | None) -> None:
    if result is None:
        return
    if result.status is InboxStatus.FAILED:
        report.failed[issue.id] = result.error or "failed"
    report.stored.extend(result.stored)
    report.duplicates.extend(result.duplicates)
