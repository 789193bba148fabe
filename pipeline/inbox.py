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
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from pipeline.errors import AutofixError, InvalidInput, PermanentError, TransientError
from pipeline.ingest import IngestReport, prepare, record
from pipeline.ports import Inbox, InboxFinish, SentryAPI, Store
from pipeline.records import ErrorEvent, InboxItem, InboxKind, InboxStatus, Issue, utcnow
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
    retention: Retention = "drop"
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
    return process_items(ctx, [item])[0]


@dataclass
class _Read:
    item: InboxItem
    work: _Work | None = None
    pairs: list[tuple[ErrorEvent, Issue]] = field(default_factory=list)
    result: ItemResult | None = None  # set once the item is done
    finish: InboxFinish | None = None


def process_items(ctx: InboxContext, items: Sequence[InboxItem]) -> list[ItemResult]:
    """Process items, storing the events of the plain ones (events only, no issue state) together in
    one transaction and marking every item in another; the others one by one. Results in order."""
    reads = [_read(ctx, item) for item in items]
    plain = [r for r in reads if r.result is None and r.work is not None and _is_plain(r.item, r.work)]
    if plain:
        try:
            report = record(ctx.store, [pair for r in plain for pair in r.pairs])
        except TransientError:
            raise
        except Exception:  # noqa: BLE001 - one bad event must not fail the batch: retry item by item
            log.exception("inbox.batch_failed", items=len(plain))
            for r in plain:
                _one(ctx, r)
        else:
            _split(ctx, plain, report.recorded)
    for r in reads:
        if r.result is None:
            _one(ctx, r)
    ctx.inbox.finish_inbox_many([r.finish for r in reads if r.finish is not None])
    for r in reads:
        assert r.result is not None
        _log_result(r.item, r.result)
    return [r.result for r in reads if r.result is not None]


def _read(ctx: InboxContext, item: InboxItem) -> _Read:
    assert item.id is not None, "only stored items are processed"
    read = _Read(item)
    if item.status is InboxStatus.PROCESSED:
        read.result = ItemResult(item.id, item.status, item.outcome, notes=("already processed",))
        return read
    try:
        read.work = read_item(item)
        read.pairs = [prepare(event, ctx.in_app_packages) for event in read.work.events]
    except TransientError:
        raise
    except Exception as exc:  # noqa: BLE001 - bad input or a bug: the payload stays, marked failed
        _fail(read, exc)
    return read


def _is_plain(item: InboxItem, work: _Work) -> bool:
    return bool(work.events) and work.change is None and not item.headers.get(SENTRY_STATUS)


def _split(ctx: InboxContext, plain: list[_Read], recorded: list[bool]) -> None:
    position = 0
    for r in plain:
        flags = recorded[position : position + len(r.pairs)]
        position += len(r.pairs)
        stored = tuple(event.id for (event, _), ok in zip(r.pairs, flags, strict=True) if ok)
        duplicates = tuple(event.id for (event, _), ok in zip(r.pairs, flags, strict=True) if not ok)
        fingerprints = {issue.fingerprint for (_, issue), ok in zip(r.pairs, flags, strict=True) if ok}
        assert r.item.id is not None and r.work is not None
        outcome = f"stored {len(stored)} event(s), {len(duplicates)} duplicate(s)"
        _done(ctx, r, ItemResult(r.item.id, InboxStatus.PROCESSED, outcome, stored=stored, duplicates=duplicates,
                                 issues=tuple(sorted(fingerprints)), notes=tuple(r.work.notes)))


def _one(ctx: InboxContext, read: _Read) -> None:
    assert read.work is not None
    try:
        _done(ctx, read, _apply(ctx, read.item, read.work, read.pairs))
    except TransientError:
        raise
    except Exception as exc:  # noqa: BLE001 - bad input or a bug: the payload stays, marked failed
        _fail(read, exc)


def _done(ctx: InboxContext, read: _Read, result: ItemResult) -> None:
    replace_body, body = _retained(read.item, ctx.retention)
    read.result = result
    read.finish = InboxFinish(result.item_id, InboxStatus.PROCESSED, outcome=result.outcome,
                              replace_body=replace_body, body=body)


def _fail(read: _Read, exc: Exception) -> None:
    assert read.item.id is not None
    if isinstance(exc, PermanentError):
        error = str(exc)
    else:
        log.exception("inbox.processing_crashed", inbox_id=read.item.id)
        error = f"internal error: {type(exc).__name__}: {exc}"
    error = error.replace("\x00", "\ufffd")[:ERROR_LIMIT]
    read.result = ItemResult(read.item.id, InboxStatus.FAILED, error=error)
    read.finish = InboxFinish(read.item.id, InboxStatus.FAILED, error=error)  # the body stays, for a retry


def _log_result(item: InboxItem, result: ItemResult) -> None:
    if result.status is InboxStatus.FAILED:
        log.warning("inbox.failed", inbox_id=item.id, kind=item.kind.value, error=result.error)
    elif result.notes != ("already processed",):
        log.info("inbox.processed", inbox_id=item.id, kind=item.kind.value, outcome=result.outcome,
                 notes=list(result.notes) or None)


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
    # JSON text can only carry a NUL escaped; without the escape there is nothing to replace.
    document, notes = repair(document, paths, item.received_at, nul=b"\\u0000" in body)
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


def _apply(ctx: InboxContext, item: InboxItem, work: _Work,
           pairs: Sequence[tuple[ErrorEvent, Issue]]) -> ItemResult:
    assert item.id is not None
    report = record(ctx.store, pairs) if pairs else IngestReport()
    touched = set(report.issues)
    status = item.headers.get(SENTRY_STATUS)
    for event, _ in pairs:
        if status and event.sentry_issue_id:
            touched.update(ctx.store.set_sentry_status(event.sentry_issue_id, status))
    outcome = work.outcome
    if work.change is not None:
        outcome, changed = _apply_change(ctx, item, work.change)
        touched.update(changed)
    elif pairs:
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
