"""Inbox items -> what they hold: events, or an issue's change of state, read by the item's kind.

Each kind has a reader: an envelope's event items, a store-endpoint event, a webhook by its
Sentry-Hook-Resource (error and event_alert carry an event, issue a change, installation is only
recorded, anything else ignored), a service hook, the legacy plugin, an event a pull fetched from the
API. Before parsing, the JSON is repaired the way Sentry's normaliser would (sources/sanitize.py).
A reader raises InvalidInput or UnsupportedEvent for what cannot be read; it stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import InvalidInput
from pipeline.records import ErrorEvent, InboxItem, InboxKind
from pipeline.sources.envelope import split_envelope
from pipeline.sources.sanitize import repair
from pipeline.sources.sentry import load_json, parse_api_event, parse_event, parse_webhook
from pipeline.sources.webhooks import (
    IssueChange,
    parse_issue_change,
    parse_legacy_webhook,
    parse_service_hook,
)

# Headers the edge keeps on an item (lower-case names), read back here.
RESOURCE = "sentry-hook-resource"
SENTRY_ISSUE_ID = "x-autofix-sentry-issue-id"  # set by pulls on the API events they store
SENTRY_STATUS = "x-autofix-sentry-status"
EVENT_RESOURCES = frozenset({"error", "event_alert"})
RECORDED_RESOURCES = frozenset({"installation"})



@dataclass
class ItemContents:
    """What an item turned out to hold."""

    events: list[ErrorEvent] = field(default_factory=list)
    change: IssueChange | None = None
    outcome: str | None = None  # for items that hold neither (installation, unknown resource)
    notes: list[str] = field(default_factory=list)  # repairs made on the way


def read_item(item: InboxItem) -> ItemContents:
    """Parse the item into events or an issue change; PermanentError when it cannot be read."""
    if item.body is None:
        raise InvalidInput(_source(item), "the raw body was dropped; nothing left to process")
    reader = _READERS[item.kind]
    return reader(item)


def _source(item: InboxItem) -> str:
    return f"inbox {item.id} ({item.kind.value})"


def _document(item: InboxItem, body: bytes, paths: tuple[tuple[str, ...], ...], work: ItemContents) -> Any:
    """The JSON body with NULs and absurd timestamps repaired (noted on the work)."""
    document = load_json(body, _source(item))
    # JSON text can only carry a NUL escaped; without the escape there is nothing to replace.
    document, notes = repair(document, paths, item.received_at, nul=b"\\u0000" in body)
    work.notes.extend(notes)
    return document


def _with_id(document: Any, event_id: str | None) -> Any:
    # The sender was answered with this id; an event without one must be stored under it.
    if isinstance(document, dict) and event_id and document.get("event_id") is None:
        document["event_id"] = event_id
    return document


def _read_envelope(item: InboxItem) -> ItemContents:
    work = ItemContents()
    envelope = split_envelope(item.body or b"", _source(item))
    for entry in envelope.events():
        document = _with_id(_document(item, entry.payload, ((),), work), item.event_id)
        work.events.append(parse_event(document, _source(item), received_at=item.received_at,
                                       project=item.project, kind="sentry-envelope"))
    if not work.events:
        work.outcome = "no event items"
    return work


def _read_store(item: InboxItem) -> ItemContents:
    work = ItemContents()
    document = _with_id(_document(item, item.body or b"", ((),), work), item.event_id)
    work.events.append(parse_event(document, _source(item), received_at=item.received_at, project=item.project))
    return work


def _read_webhook(item: InboxItem) -> ItemContents:
    work = ItemContents()
    resource = item.headers.get(RESOURCE, "")
    if resource in EVENT_RESOURCES:
        document = _document(item, item.body or b"", (("data", "error"), ("data", "event")), work)
        work.events.append(parse_webhook(document, _source(item), received_at=item.received_at))
    elif resource == "issue":
        work.change = parse_issue_change(_document(item, item.body or b"", (), work), _source(item))
    elif resource in RECORDED_RESOURCES:
        document = _document(item, item.body or b"", (), work)
        action = document.get("action") if isinstance(document, Mapping) else None
        work.outcome = f"{resource} {action or 'received'}: recorded"
    else:
        work.outcome = f"resource {resource or '(none)'!r} ignored"
    return work


def _read_service_hook(item: InboxItem) -> ItemContents:
    work = ItemContents()
    document = _document(item, item.body or b"", (("event",),), work)
    parsed = parse_service_hook(document, _source(item), received_at=item.received_at)
    if isinstance(parsed, IssueChange):
        work.change = parsed
    else:
        work.events.append(parsed)
    return work


def _read_legacy(item: InboxItem) -> ItemContents:
    work = ItemContents()
    document = _document(item, item.body or b"", (("event",),), work)
    work.events.append(parse_legacy_webhook(document, _source(item), received_at=item.received_at))
    return work


def _read_api_event(item: InboxItem) -> ItemContents:
    work = ItemContents()
    document = _document(item, item.body or b"", ((),), work)
    work.events.append(parse_api_event(document, _source(item), received_at=item.received_at,
                                       project=item.project, sentry_issue_id=item.headers.get(SENTRY_ISSUE_ID)))
    return work


_READERS: dict[InboxKind, Callable[[InboxItem], ItemContents]] = {
    InboxKind.ENVELOPE: _read_envelope,
    InboxKind.STORE: _read_store,
    InboxKind.WEBHOOK: _read_webhook,
    InboxKind.SERVICE_HOOK: _read_service_hook,
    InboxKind.LEGACY_WEBHOOK: _read_legacy,
    InboxKind.API_EVENT: _read_api_event,
}
