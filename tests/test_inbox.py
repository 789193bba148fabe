"""The inbox in the store and the inbox stage, on a SQLite file and on a fresh PostgreSQL schema.

Store: batches insert in one transaction, a Request-ID is stored once, items finish with their
outcome and the body retention applied, failed items go back to pending. Stage: each kind of item
becomes stored events or an issue state; bad items fail with the reason and store nothing.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.adapters.sql_store import SqlStore
from pipeline.inbox import (
    RESOURCE,
    SENTRY_ISSUE_ID,
    SENTRY_STATUS,
    InboxContext,
    process_id,
    process_items,
    scrub_body,
)
from pipeline.records import InboxItem, InboxKind, InboxStatus
from pipeline.sources.envelope import split_envelope

DATA = Path(__file__).resolve().parent / "data"
T0 = datetime(2026, 11, 23, 20, 43, 6, tzinfo=UTC)
TAGGED_EMAIL = b'"customer_email":"jane.doe@example.com"'  # source lines keep theirs: they are code


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[SqlStore]:
    url: str = request.getfixturevalue(f"{request.param}_url")
    store = SqlStore(url)
    yield store
    store.close()


def item(kind: InboxKind = InboxKind.STORE, body: bytes | None = b"{}", **changes: Any) -> InboxItem:
    return InboxItem(kind=kind, body=body, received_at=changes.pop("received_at", T0), **changes)


def context(store: SqlStore, **changes: Any) -> InboxContext:
    return InboxContext(store=store, inbox=store, **changes)


def add(store: SqlStore, *items: InboxItem) -> list[int]:
    ids = store.add_to_inbox(list(items))
    assert all(i is not None for i in ids)
    return [i for i in ids if i is not None]


# --- the store -----------------------------------------------------------------------------------


def test_a_batch_is_inserted_in_order_and_each_item_reads_back_as_stored(store: SqlStore) -> None:
    items = [item(body=f'{{"n": {n}}}'.encode(), project="1", headers={"content-encoding": "gzip"},
                  event_id=uuid.uuid4().hex) for n in range(5)]
    ids = add(store, *items)
    assert ids == sorted(ids) and len(set(ids)) == 5
    back = store.inbox_item(ids[2])
    assert back is not None and back.body == b'{"n": 2}' and back.headers == {"content-encoding": "gzip"}
    assert back.status is InboxStatus.PENDING and back.attempts == 0 and back.received_at == T0
    assert back.event_id == items[2].event_id and back.kind is InboxKind.STORE


def test_a_request_id_is_stored_once_even_within_one_batch(store: SqlStore) -> None:
    first = store.add_to_inbox([item(request_id="r-1"), item(), item(request_id="r-1"), item(request_id="r-2")])
    again = store.add_to_inbox([item(request_id="r-2")])
    assert first[0] is not None and first[1] is not None and first[2] is None and first[3] is not None
    assert again == [None]
    assert store.inbox_counts() == {"pending": 3}


def test_finishing_counts_the_attempt_and_applies_the_retention(store: SqlStore) -> None:
    kept, scrubbed, dropped = add(store, item(), item(), item())
    store.finish_inbox(kept, InboxStatus.PROCESSED, outcome="stored 1 event(s)")
    store.finish_inbox(scrubbed, InboxStatus.PROCESSED, replace_body=True, body=b'{"scrubbed": true}')
    store.finish_inbox(dropped, InboxStatus.FAILED, error="bad", replace_body=True, body=None)
    rows = {i.id: i for i in store.inbox_items(limit=10)}
    assert rows[kept].body == b"{}" and rows[kept].outcome == "stored 1 event(s)" and rows[kept].attempts == 1
    assert rows[scrubbed].body == b'{"scrubbed": true}'
    assert rows[dropped].body is None and rows[dropped].error == "bad" and rows[dropped].status is InboxStatus.FAILED
    assert all(r.processed_at is not None for r in rows.values())
    assert store.inbox_backlog() == 0


def test_failed_items_go_back_to_pending_one_or_all(store: SqlStore) -> None:
    a, b, c = add(store, item(), item(), item())
    for item_id in (a, b):
        store.finish_inbox(item_id, InboxStatus.FAILED, error="x")
    assert store.retry_inbox(a) == [a]
    assert store.retry_inbox(c) == []  # pending, not failed
    store.finish_inbox(a, InboxStatus.FAILED, error="x")
    assert store.retry_inbox() == [a, b]
    assert store.inbox_backlog() == 3


def test_items_are_listed_by_status_and_age(store: SqlStore) -> None:
    old, new = add(store, item(received_at=T0 - timedelta(hours=1)), item())
    store.finish_inbox(new, InboxStatus.FAILED, error="x")
    assert [i.id for i in store.inbox_items(InboxStatus.PENDING)] == [old]
    assert [i.id for i in store.inbox_items(InboxStatus.FAILED)] == [new]
    assert [i.id for i in store.inbox_items(before=T0 - timedelta(minutes=1))] == [old]


def _pairs(n: int, fingerprint: str = "fp") -> list[Any]:
    from pipeline.ingest import prepare
    from pipeline.sources import parse_event

    base = json.loads((DATA / "event_attribute_error.json").read_text())
    return [prepare(parse_event({**base, "event_id": uuid.uuid4().hex})) for _ in range(n)]


def test_events_recorded_together_drop_duplicates_stored_or_within_the_batch(store: SqlStore) -> None:
    first = _pairs(3)
    assert store.record_events(first[:1]) == [True]
    assert store.record_events([first[1], first[0], first[2], first[1]]) == [True, False, True, False]
    (issue,) = store.list_issues()
    assert issue.count == 3 and len(store.events_for_issue(issue.fingerprint)) == 3


def test_concurrent_batches_with_the_same_events_store_each_once(store: SqlStore) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    pairs = _pairs(20)
    barrier = threading.Barrier(3)

    def write(offset: int) -> list[bool]:
        barrier.wait()
        return store.record_events(pairs[offset:] + pairs[:offset])

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(write, (0, 7, 13)))
    assert sum(sum(r) for r in results) == 20
    (issue,) = store.list_issues()
    assert issue.count == 20


# --- the stage -----------------------------------------------------------------------------------


def test_a_recorded_envelope_becomes_a_stored_grouped_and_scrubbed_event(store: SqlStore) -> None:
    body = (DATA / "event_chained_from.envelope").read_bytes()
    (item_id,) = add(store, item(InboxKind.ENVELOPE, body, project="1"))

    result = process_id(context(store, retention="scrub"), item_id)

    assert result is not None and result.status is InboxStatus.PROCESSED and len(result.stored) == 1
    event = store.get_event(result.stored[0])
    assert event is not None and event.project == "1" and event.source == "sentry-envelope"
    assert event.received_at == T0
    assert event.tags["customer_email"] == "[Filtered:email]"
    assert event.exceptions[-1].value == "order o-4040 not found for [Filtered:email]"
    stored = store.inbox_item(item_id)
    assert stored is not None and stored.body is not None
    assert TAGGED_EMAIL in body and TAGGED_EMAIL not in stored.body
    assert split_envelope(stored.body).events()  # and still an envelope


@pytest.mark.parametrize("retention", ["keep", "scrub", "drop"])
def test_the_raw_body_is_kept_scrubbed_or_dropped_after_processing(store: SqlStore, retention: Any) -> None:
    body = (DATA / "event_attribute_error.json").read_bytes()
    (item_id,) = add(store, item(InboxKind.STORE, body))
    process_id(context(store, retention=retention), item_id)
    stored = store.inbox_item(item_id)
    assert stored is not None and stored.status is InboxStatus.PROCESSED
    if retention == "keep":
        assert stored.body == body
    elif retention == "scrub":
        assert stored.body is not None and b'"customer_email": "jane.doe@example.com"' in body
        assert b"customer_email" in stored.body and b'"customer_email":"jane.doe@example.com"' not in stored.body
    else:
        assert stored.body is None


def test_by_default_the_raw_body_is_dropped_once_its_event_is_stored(store: SqlStore) -> None:
    (item_id,) = add(store, item(InboxKind.STORE, (DATA / "event_attribute_error.json").read_bytes()))
    process_id(context(store), item_id)
    stored = store.inbox_item(item_id)
    assert stored is not None and stored.status is InboxStatus.PROCESSED and stored.body is None
    (issue,) = store.list_issues()
    (event,) = store.events_for_issue(issue.fingerprint)
    assert event.raw["event_id"] == event.id  # the payload lives on, scrubbed, with its event


def test_a_batch_stores_each_items_events_in_one_go_and_marks_each_item(store: SqlStore) -> None:
    body = (DATA / "event_attribute_error.json").read_bytes()
    other = json.loads(body)
    other["event_id"] = uuid.uuid4().hex
    ids = add(store, item(InboxKind.STORE, body), item(InboxKind.STORE, b"not json"),
              item(InboxKind.STORE, json.dumps(other).encode()), item(InboxKind.STORE, body))
    results = process_items(context(store), [i for i in store.inbox_items(limit=10)])
    assert [r.item_id for r in results] == ids
    assert [r.status for r in results] == [InboxStatus.PROCESSED, InboxStatus.FAILED, InboxStatus.PROCESSED,
                                           InboxStatus.PROCESSED]
    assert [len(r.stored) for r in results] == [1, 0, 1, 0] and results[3].duplicates == results[0].stored
    assert store.inbox_counts() == {"processed": 3, "failed": 1}
    (issue,) = store.list_issues()
    assert issue.count == 2


def test_an_item_processed_twice_stores_its_event_once(store: SqlStore) -> None:
    body = (DATA / "event_attribute_error.json").read_bytes()
    first, second = add(store, item(InboxKind.STORE, body), item(InboxKind.STORE, body))
    a = process_id(context(store), first)
    b = process_id(context(store), second)
    again = process_id(context(store), first)
    assert a is not None and b is not None and again is not None
    assert len(a.stored) == 1 and b.stored == () and b.duplicates == a.stored
    assert again.notes == ("already processed",)
    (issue,) = store.list_issues()
    assert issue.count == 1


@pytest.mark.parametrize(("kind", "body", "headers", "reason"), [
    (InboxKind.STORE, b"not json", {}, "is not JSON"),
    (InboxKind.STORE, b'{"event_id": "ab", "exception": {"values": "KeyError"}}', {},
     "exception.values is a string, expected a list"),
    (InboxKind.STORE, b'{"event_id": "ab", "platform": "python"}', {}, "has no 'exception' and no 'message'"),
    (InboxKind.ENVELOPE, b'{}\n{"type":"event","length":99}\n{}\n', {}, "declares length 99"),
    (InboxKind.WEBHOOK, b'{"action": "created", "data": {}}', {RESOURCE: "error"}, "neither 'event' nor 'error'"),
    (InboxKind.WEBHOOK, b'{"action": "resolved", "data": {"issue": {}}}', {RESOURCE: "issue"}, "has no 'id'"),
    (InboxKind.LEGACY_WEBHOOK, b'{"id": "1"}', {}, "legacy webhook has no 'event' object"),
    (InboxKind.SERVICE_HOOK, b'{"project": {}}', {}, "neither 'event' nor 'action'"),
    (InboxKind.API_EVENT, b'{"eventID": "x", "entries": [{"type": "exception", "data": {"values": [1]}}]}', {},
     "expected an object"),
])
def test_a_bad_item_fails_with_its_reason_and_stores_nothing(
    store: SqlStore, kind: InboxKind, body: bytes, headers: dict[str, str], reason: str
) -> None:
    (item_id,) = add(store, item(kind, body, headers=headers))
    result = process_id(context(store), item_id)
    assert result is not None and result.status is InboxStatus.FAILED and reason in (result.error or "")
    stored = store.inbox_item(item_id)
    assert stored is not None and stored.status is InboxStatus.FAILED and stored.body == body  # kept for a retry
    assert store.list_issues() == []


def test_a_dropped_body_cannot_be_processed_again(store: SqlStore) -> None:
    (item_id,) = add(store, item(body=None))
    result = process_id(context(store), item_id)
    assert result is not None and result.status is InboxStatus.FAILED and "dropped" in (result.error or "")


def test_nul_characters_and_absurd_timestamps_are_repaired_before_storing(store: SqlStore) -> None:
    payload = {"event_id": uuid.uuid4().hex, "message": "a\u0000b", "timestamp": 1e300, "tags": {"k\u0000": "v"},
               "exception": {"values": [{"type": "E\u0000", "value": "\u0000",
                                         "stacktrace": {"frames": [{"function": "f", "filename": "a.py",
                                                                    "vars": {"x": "\u0000"}}]}}]}}
    (item_id,) = add(store, item(InboxKind.STORE, json.dumps(payload).encode()))
    result = process_id(context(store), item_id)
    assert result is not None and result.status is InboxStatus.PROCESSED, result.error
    assert any("NUL" in note for note in result.notes) and any("out of range" in note for note in result.notes)
    event = store.get_event(payload["event_id"])
    assert event is not None and event.timestamp is None and event.message == "a\ufffdb"
    assert event.exceptions[0].type == "E\ufffd" and event.tags == {"k\ufffd": "v"}
    assert event.exceptions[0].frames[0].vars == {"x": "\ufffd"}


def test_an_api_event_from_a_pull_carries_its_sentry_issue_and_state(store: SqlStore) -> None:
    body = (DATA / "api_event_chained_from.json").read_bytes()
    (item_id,) = add(store, item(InboxKind.API_EVENT, body, project="shop",
                                 headers={SENTRY_ISSUE_ID: "4504082601", SENTRY_STATUS: "unresolved"}))
    result = process_id(context(store), item_id)
    assert result is not None and result.status is InboxStatus.PROCESSED
    (issue,) = store.issues_for_sentry_id("4504082601")
    assert issue.sentry_status == "unresolved" and issue.project == "shop"


def test_an_issue_change_for_a_known_issue_sets_its_state(store: SqlStore) -> None:
    body = (DATA / "webhook_error_created.json").read_bytes()
    (created,) = add(store, item(InboxKind.WEBHOOK, body, headers={RESOURCE: "error"}))
    process_id(context(store), created)
    change = {"action": "resolved", "data": {"issue": {"id": "4504082601", "status": "resolved",
                                                        "project": {"slug": "shop"}}}}
    (resolved,) = add(store, item(InboxKind.WEBHOOK, json.dumps(change).encode(), headers={RESOURCE: "issue"}))
    result = process_id(context(store), resolved)
    assert result is not None and result.outcome == "Sentry issue 4504082601 resolved (resolved): 1 issue(s) updated"
    (issue,) = store.issues_for_sentry_id("4504082601")
    assert issue.sentry_status == "resolved"


def test_scrubbing_a_body_keeps_its_shape(store: SqlStore) -> None:
    envelope = (DATA / "event_message.envelope").read_bytes()
    scrubbed = scrub_body(item(InboxKind.ENVELOPE, envelope))
    assert scrubbed is not None
    before, after = split_envelope(envelope), split_envelope(scrubbed)
    assert [i.type for i in before.items] == [i.type for i in after.items]
    assert json.loads(after.events()[0].payload)["event_id"] == json.loads(before.events()[0].payload)["event_id"]


# --- the in-process processor ----------------------------------------------------------------------


@pytest.mark.parametrize("pressed", [False, True], ids=["waits-then-bites", "pressed"])
def test_the_processor_gives_way_to_requests_but_never_starves(sqlite_url: str, pressed: bool) -> None:
    import time

    from pipeline.web.processing import InProcessProcessor

    store = SqlStore(sqlite_url)
    body = (DATA / "event_attribute_error.json").read_bytes()
    add(store, *[item(InboxKind.STORE, body) for _ in range(3)])
    processor = InProcessProcessor(context(store))
    processor.give_way(busy=lambda: True, recent=lambda: True, just_served=lambda: True, pressed=lambda: pressed)
    started = time.monotonic()
    processor.start()
    try:
        deadline = started + 20
        while store.inbox_backlog() and time.monotonic() < deadline:
            time.sleep(0.05)
        took = time.monotonic() - started
    finally:
        processor.stop()
        store.close()
    assert store.inbox_backlog() == 0
    # Always busy: without pressure it waits MAX_WAIT_S between small bites; pressed, it does not.
    assert (took >= InProcessProcessor.MAX_WAIT_S) is not pressed
