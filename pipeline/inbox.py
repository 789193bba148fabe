"""The inbox stage: one accepted payload, stored raw, becomes stored events (or an issue's new state).

`process_item` reads an inbox item by its kind (sources/inbox_items.py: envelope, store, webhook
resource, service hook, legacy plugin, API event; repaired the way Sentry's normaliser would), then
hands the events to the ingest stage (scrub, group, store), or applies the issue's change of state,
and marks the item processed, applying the raw-body retention. Items holding only events are
stored together, many per transaction. Bad input never escapes: a payload that
fails to parse is marked failed with the reason and nothing of it is stored. Only a TransientError
(store or Sentry API unreachable) propagates, leaving the item pending for a retry.

Processing is idempotent: events are stored once per event id, issue states are set, not toggled,
so an item processed twice (a redelivered task, a sweep) changes nothing the second time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from pipeline.errors import AutofixError, PermanentError, TransientError
from pipeline.ingest import IngestReport, prepare, record
from pipeline.ports import Inbox, InboxFinish, SentryAPI, Store
from pipeline.records import ErrorEvent, InboxItem, InboxKind, InboxStatus, Issue, utcnow
from pipeline.scrub import scrub_value
from pipeline.sources.envelope import split_envelope
from pipeline.sources.inbox_items import (
    EVENT_RESOURCES,
    RECORDED_RESOURCES,
    RESOURCE,
    SENTRY_ISSUE_ID,
    SENTRY_STATUS,
    ItemContents,
    read_item,
)
from pipeline.sources.webhooks import IssueChange

log = structlog.get_logger(__name__)

Retention = Literal["keep", "scrub", "drop"]
ERROR_LIMIT = 2000  # characters of an error message kept on the item

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
    work: ItemContents | None = None
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


def _is_plain(item: InboxItem, work: ItemContents) -> bool:
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


# --- applying ------------------------------------------------------------------------------------


def _apply(ctx: InboxContext, item: InboxItem, work: ItemContents,
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


__all__ = ["EVENT_RESOURCES", "RECORDED_RESOURCES", "RESOURCE", "SENTRY_ISSUE_ID", "SENTRY_STATUS", "InboxContext",
           "ItemResult", "process_id", "process_item", "process_items", "scrub_body"]
