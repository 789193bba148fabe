"""The inbox stage: one accepted payload, stored raw, becomes stored events (or an issue's new state).

`process_item` reads an inbox item by its kind (envelope, store, webhook resource, service hook,
legacy plugin, API event), repairs what Sentry's normaliser would repair (NULs, absurd timestamps:
sources/sanitize.py), parses, then hands the events to the ingest stage (scrub, group, store) and
marks the item processed, applying the raw-body retention. Bad input never escapes: a payload that
fails to parse is marked failed with the reason and nothing of it is stored. Only a TransientError
(store or Sentry API unreachable) propagates, leaving the item pending for a retry.

Processing is idempotent: events are stored once per event id, issue states are set, not toggled,
so an item processed twice (a redelivered task, a sweep) changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from pipeline.errors import AutofixError, InvalidInput, PermanentError, TransientError
from pipeline.ingest import IngestReport, ingest_events
from pipeline.ports import Inbox, SentryAPI, Store
from pipeline.records import ErrorEvent, InboxItem, InboxKind, InboxStatus, utcnow
from pipeline.scrub import scrub_value
from pipeline.sources.envelope import split_envelope
from pipeline.sources.sanitize import repair
from pipeline.sources.sentry import load_json, parse_api_event, parse_event, parse_webhook
from pipeline.sources.webhooks import (
    IssueChange,
    parse_issue_change,
    parse_legacy_webhook,
    parse_service_hook,
)

log = structlog.get_logger(__name__)

Retention = Literal["keep", "scrub", "drop"]
ERROR_LIMIT = 2000  # characters of an error message kept on the item

# Headers the edge keeps on an item (lower-case names), read back here.
RESOURCE = "sentry-hook-resource"
SENTRY_ISSUE_ID = "x-autofix-sentry-issue-id"  # set by pulls on the API events they store
SENTRY_STATUS = "x-autofix-sentry-status"
EVENT_RESOURCES = frozenset({"error", "event_alert"})
RECORDED_RESOURCES = frozenset({"installation"})


@dataclass(frozen=True)
class InboxContext:
    store: Store
    inbox: Inbox
    in_app_packages: Collection[str] = ()
    retention: Retention = "scrub"
    sentry_api: Callable[[], SentryAPI | None] = lambda: None  # built only when an issue needs it


@dataclass(frozen=True)
class ItemResult:
    item_id: int
    status: InboxStatus
    outcome: str | None = None
    error: str | None = None
    stored: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()
    issues: tuple[str, ...] = ()  # fingerprints touched (new events or state changes)
    notes: tuple[str, ...] = field(default=())


@dataclass
class _Work:
    """What an item turned out to hold."""

    events: list[ErrorEvent] = field(default_factory=list)
    change: IssueChange | None = None
    outcome: str | None = None  # for items that hold neither (installation, unknown resource)
    notes: list[str] = field(default_factory=list)


def process_id(ctx: InboxContext, item_id: int) -> ItemResult | None:
    """Process the stored item with this id; None when there is no such item."""
    item = ctx.inbox.inbox_item(item_id)
    return None if item is None else process_item(ctx, item)


def process_item(ctx: InboxContext, item: InboxItem) -> ItemResult:
    """Normalise, scrub, group and store one item and mark it; see the module docstring."""
    assert item.id is not None, "only stored items are processed"
    if item.status is InboxStatus.PROCESSED:
        return ItemResult(item.id, item.status, item.outcome, notes=("already processed",))
    bound = log.bind(inbox_id=item.id, kind=item.kind.value)
    try:
        work = read_item(item)
        result = _apply(ctx, item, work)
    except TransientError:
        raise
    except PermanentError as exc:
        return _fail(ctx, item, str(exc), bound)
    except Exception as exc:  # noqa: BLE001 - a bug must not lose the payload: it stays, marked failed
        bound.exception("inbox.processing_crashed")
        return _fail(ctx, item, f"internal error: {type(exc).__name__}: {exc}", bound)
    replace_body, body = _retained(item, ctx.retention)
    ctx.inbox.finish_inbox(item.id, InboxStatus.PROCESSED, outcome=result.outcome,
                           replace_body=replace_body, body=body)
    bound.info("inbox.processed", outcome=result.outcome, notes=list(result.notes) or None)
    return result


def _fail(ctx: InboxContext, item: InboxItem, error: str, bound: Any) -> ItemResult:
    assert item.id is not None
    error = error.replace("\x00", "\ufffd")[:ERROR_LIMIT]
    ctx.inbox.finish_inbox(item.id, InboxStatus.FAILED, error=error)
    bound.warning("inbox.failed", error=error)
    return ItemResult(item.id, InboxStatus.FAILED, error=error)


# --- reading -------------------------------------------------------------------------------------


def read_item(item: InboxItem) -> _Work:
    """Parse the item into events or an issue change; PermanentError when it cannot be read."""
    if item.body is None:
        raise InvalidInput(_source(item), "the raw body was dropped; nothing left to process")
    reader = _READERS[item.kind]
    return reader(item)


def _source(item: InboxItem) -> str:
    return f"inbox {item.id} ({item.kind.value})"


def _document(item: InboxItem, body: bytes, paths: tuple[tuple[str, ...], ...], work: _Work) -> Any:
    """The JSON body with NULs and absurd timestamps repaired (noted on the work)."""
    document = load_json(body, _source(item))
    document, notes = repair(document, paths, item.received_at)
    work.notes.extend(notes)
    return document


def _with_id(document: Any, event_id: str | None) -> Any:
    # The sender was answered with this id; an event without one must be stored under it.
    if isinstance(document, dict) and event_id and document.get("event_id") is None:
        document["event_id"] = event_id
    return document


def _read_envelope(item: InboxItem) -> _Work:
    work = _Work()
    envelope = split_envelope(item.body or b"", _source(item))
    for entry in envelope.events():
        document = _with_id(_document(item, entry.payload, ((),), work), item.event_id)
        work.events.append(parse_event(document, _source(item), received_at=item.received_at,
                                       project=item.project, kind="sentry-envelope"))
    if not work.events:
        work.outcome = "no event items"
    return work


def _read_store(item: InboxItem) -> _Work:
    work = _Work()
    document = _with_id(_document(item, item.body or b"", ((),), work), item.event_id)
    work.events.append(parse_event(document, _source(item), received_at=item.received_at, project=item.project))
    return work


def _read_webhook(item: InboxItem) -> _Work:
    work = _Work()
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


def _read_service_hook(item: InboxItem) -> _Work:
    work = _Work()
    document = _document(item, item.body or b"", (("event",),), work)
    parsed = parse_service_hook(document, _source(item), received_at=item.received_at)
    if isinstance(parsed, IssueChange):
        work.change = parsed
    else:
        work.events.append(parsed)
    return work


def _read_legacy(item: InboxItem) -> _Work:
    work = _Work()
    document = _document(item, item.body or b"", (("event",),), work)
    work.events.append(parse_legacy_webhook(document, _source(item), received_at=item.received_at))
    return work


def _read_api_event(item: InboxItem) -> _Work:
    work = _Work()
    document = _document(item, item.body or b"", ((),), work)
    work.events.append(parse_api_event(document, _source(item), received_at=item.received_at,
                                       project=item.project, sentry_issue_id=item.headers.get(SENTRY_ISSUE_ID)))
    return work


_READERS: dict[InboxKind, Callable[[InboxItem], _Work]] = {
    InboxKind.ENVELOPE: _read_envelope,
    InboxKind.STORE: _read_store,
    InboxKind.WEBHOOK: _read_webhook,
    InboxKind.SERVICE_HOOK: _read_service_hook,
    InboxKind.LEGACY_WEBHOOK: _read_legacy,
    InboxKind.API_EVENT: _read_api_event,
}


# --- applying ------------------------------------------------------------------------------------


def _apply(ctx: InboxContext, item: InboxItem, work: _Work) -> ItemResult:
    assert item.id is not None
    report = ingest_events(ctx.store, work.events, ctx.in_app_packages) if work.events else IngestReport()
    touched = set(report.issues)
    status = item.headers.get(SENTRY_STATUS)
    for event in work.events:
        if status and event.sentry_issue_id:
            touched.update(ctx.store.set_sentry_status(event.sentry_issue_id, status))
    outcome = work.outcome
    if work.change is not None:
        outcome, changed = _apply_change(ctx, item, work.change)
        touched.update(changed)
    elif work.events:
        outcome = f"stored {len(report.stored)} event(s), {len(report.duplicates)} duplicate(s)"
    return ItemResult(item.id, InboxStatus.PROCESSED, outcome, stored=tuple(report.stored),
                      duplicates=tuple(report.duplicates), issues=tuple(sorted(touched)),
                      notes=tuple(work.notes))


def _apply_change(ctx: InboxContext, item: InboxItem, change: IssueChange) -> tuple[str, set[str]]:
    """Keep our issue in step with Sentry's; an issue we have never seen gets its latest event
    fetched through the API (when configured), stored like a pull would store it."""
    known = ctx.store.issues_for_sentry_id(change.sentry_issue_id)
    fetched = ""
    if not known and change.status != "resolved":
        fetched = _fetch_latest(ctx, change)
    changed: set[str] = set()
    if change.status is not None:
        changed.update(ctx.store.set_sentry_status(change.sentry_issue_id, change.status))
    what = f"Sentry issue {change.sentry_issue_id} {change.action}"
    if change.status:
        what += f" ({change.status})"
    if changed:
        return f"{what}: {len(changed)} issue(s) updated{fetched}", changed
    return f"{what}: no stored issue{fetched}", changed


def _fetch_latest(ctx: InboxContext, change: IssueChange) -> str:
    api = ctx.sentry_api()
    if api is None:
        return "; the Sentry API is not configured, so its event was not fetched"
    fetched = api.issue_event(change.sentry_issue_id, "latest")
    headers = {SENTRY_ISSUE_ID: change.sentry_issue_id}
    if change.status:
        headers[SENTRY_STATUS] = change.status
    event_item = InboxItem(kind=InboxKind.API_EVENT, body=fetched.body, received_at=utcnow(),
                           project=change.project, headers=headers)
    (new_id,) = ctx.inbox.add_to_inbox([event_item])
    assert new_id is not None
    result = process_id(ctx, new_id)
    return f"; latest event fetched as inbox {new_id}: {result.outcome or result.error if result else 'gone'}"


# --- retention -----------------------------------------------------------------------------------


def _retained(item: InboxItem, retention: Retention) -> tuple[bool, bytes | None]:
    if retention == "keep":
        return False, None
    if retention == "drop":
        return True, None
    return True, scrub_body(item)


def scrub_body(item: InboxItem) -> bytes | None:
    """The raw body with secrets scrubbed, in the same framing (an envelope stays an envelope)."""
    if item.body is None:
        return None
    try:
        if item.kind is InboxKind.ENVELOPE:
            return _scrub_envelope(item.body)
        return _dumps(scrub_value(json.loads(item.body)))
    except (ValueError, AutofixError):
        return None  # it parsed a moment ago; if not now, keep nothing rather than secrets


def _scrub_envelope(body: bytes) -> bytes:
    envelope = split_envelope(body)
    parts = [_dumps(scrub_value(dict(envelope.headers)))]
    for entry in envelope.items:
        try:
            payload = _dumps(scrub_value(json.loads(entry.payload)))
        except ValueError:
            payload = b""  # binary items (attachments) are not kept
        headers = {**scrub_value(dict(entry.headers)), "length": len(payload)}
        parts += [_dumps(headers), payload]
    return b"\n".join(parts) + b"\n"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
