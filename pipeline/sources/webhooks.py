"""Sentry's webhook shapes beyond the event-carrying ones in sentry.py: issue state changes, project
service hooks, and the legacy WebHooks plugin.

Shapes (Sentry's integration-platform and service-hook docs, and the payload builders in its source):

- integration-platform `issue` resource: {"action": created | resolved | assigned | archived |
  ignored | unresolved, "data": {"issue": {"id", "shortId", "status", "project": {"id", "slug"},
  "title", ...}}}. `status` is the issue's state after the action.
- service hook, event.created / event.alert (payload v0): {"project": {"slug", "name"},
  "group": {"id", ...}, "event": <an event as the REST API serialises it>}; issue.created:
  {"action": "issue.created", "data": {"issue": ...}} like the integration platform.
- legacy WebHooks plugin: {"id": <issue id>, "project": <slug>, "project_slug", "culprit",
  "message", "url", "level", "triggering_rules", "event": <the event as stored, SDK-like fields>}.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.errors import InvalidInput
from pipeline.records import ErrorEvent
from pipeline.sources._fields import Node
from pipeline.sources.sentry import parse_api_event, parse_event

# What each issue action leaves the issue as, when the payload does not say.
_STATUS_AFTER = {"created": "unresolved", "unresolved": "unresolved", "resolved": "resolved",
                 "archived": "ignored", "ignored": "ignored"}
STATUSES = frozenset({"unresolved", "resolved", "ignored"})


@dataclass(frozen=True)
class IssueChange:
    """An issue webhook: which Sentry issue, what was done to it, and its state now."""

    action: str
    sentry_issue_id: str
    status: str | None  # unresolved | resolved | ignored; None when unknown (assigned, no status)
    project: str | None = None  # the project's slug, else its id
    title: str | None = None


def _id(node: Node, key: str) -> str | None:
    value = node.value.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return node.opt_str(key)


def parse_issue_change(payload: Mapping[str, Any], source: str = "issue-webhook") -> IssueChange:
    root = Node.root(payload, source, "webhook")
    action = root.opt_str("action")
    if action is None:
        raise InvalidInput(source, "issue webhook has no 'action'")
    action = action.removeprefix("issue.")  # service hooks say "issue.created"
    data = root.opt_node("data")
    issue = data.opt_node("issue") if data is not None else None
    if issue is None:
        raise InvalidInput(source, "issue webhook has no 'data.issue' object")
    sentry_id = _id(issue, "id")
    if not sentry_id:
        raise InvalidInput(source, "data.issue has no 'id'")
    status = issue.opt_str("status")
    if status not in STATUSES:
        status = _STATUS_AFTER.get(action)
    project = issue.opt_node("project")
    return IssueChange(
        action=action,
        sentry_issue_id=sentry_id,
        status=status,
        project=(project.opt_str("slug") or _id(project, "id")) if project else None,
        title=issue.opt_str("title"),
    )


def parse_service_hook(
    payload: Mapping[str, Any], source: str = "service-hook", *, received_at: datetime | None = None
) -> ErrorEvent | IssueChange:
    """event.created / event.alert give the event; issue.created gives the issue's change."""
    root = Node.root(payload, source, "service hook")
    if root.has("action") and root.has("data"):
        return parse_issue_change(payload, source)
    event = root.opt_node("event")
    if event is None:
        raise InvalidInput(source, "service hook has neither 'event' nor 'action' and 'data'")
    group = root.opt_node("group")
    project = root.opt_node("project")
    return parse_api_event(
        event.value, source, received_at=received_at,
        project=project.opt_str("slug") if project else None,
        sentry_issue_id=_id(group, "id") if group else None,
    )


def parse_legacy_webhook(
    payload: Mapping[str, Any], source: str = "legacy-webhook", *, received_at: datetime | None = None
) -> ErrorEvent:
    root = Node.root(payload, source, "legacy webhook")
    event = root.opt_node("event")
    if event is None:
        raise InvalidInput(source, "legacy webhook has no 'event' object")
    return parse_event(
        event.value, source, received_at=received_at,
        project=root.opt_str("project_slug") or root.opt_str("project"),
        sentry_issue_id=_id(root, "id"), kind="sentry-webhook",
    )
