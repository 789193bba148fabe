"""The SDK endpoints of a running `autofix serve`: authentication, limits, and bad input.

Bad input is answered 4xx with a reason and leaves nothing behind (no inbox row, no event); input
that Sentry's normaliser repairs (NUL characters, absurd timestamps) is accepted and stored repaired,
on SQLite and on PostgreSQL. A payload accepted at the edge that later fails to parse stays in the
inbox, failed, with its reason, and nothing of it is stored.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import uuid
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import brotli
import httpx
import pytest
from helpers_serve import DSN_KEY, Server, wait_for
from sqlalchemy import create_engine, make_url, text

from pipeline.records import InboxStatus

AUTH = {"X-Sentry-Auth": f"Sentry sentry_key={DSN_KEY}, sentry_version=7, sentry_client=tests/1.0"}
BROKER = os.environ.get("AUTOFIX_TEST_BROKER_URL", "redis://127.0.0.1:6379/11")
LIMITS = {"AUTOFIX_INGEST_MAX_BODY_BYTES": "100000", "AUTOFIX_INGEST_MAX_DECOMPRESSED_BYTES": "400000"}


def event(message: str = "boom", **fields: Any) -> dict[str, Any]:
    frames = [{"function": "handler", "filename": "app/views.py", "module": "app.views", "lineno": 10,
               "context_line": "    return compute(x)", "in_app": True},
              {"function": "compute", "filename": "app/core.py", "module": "app.core", "lineno": 3,
               "context_line": "    return 1 / x", "in_app": True, "vars": {"x": "0"}}]
    return {"event_id": uuid.uuid4().hex, "platform": "python", "level": "error",
            "timestamp": datetime.now(UTC).isoformat(),
            "exception": {"values": [{"type": "ZeroDivisionError", "value": message,
                                      "stacktrace": {"frames": frames}}]}, **fields}


def envelope(payload: dict[str, Any] | bytes, *, length: int | None = None, header: dict[str, Any] | None = None,
             extra_items: bytes = b"") -> bytes:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    event_id = payload.get("event_id") if isinstance(payload, dict) else None
    head = json.dumps(header if header is not None else {"event_id": event_id, "sent_at": "2026-01-01T00:00:00Z"})
    item = {"type": "event", "length": len(body) if length is None else length}
    return head.encode() + b"\n" + json.dumps(item).encode() + b"\n" + body + b"\n" + extra_items


def post(server: Server, body: bytes, *, path: str = "/api/1/envelope/", headers: dict[str, str] | None = None,
         auth: bool = True) -> httpx.Response:
    all_headers = {**(AUTH if auth else {}), "Content-Type": "application/x-sentry-envelope", **(headers or {})}
    return httpx.post(server.url(path), content=body, headers=all_headers, timeout=30)


def stored_ids(server: Server) -> set[str]:
    return {e.id for i in server.store.list_issues() for e in server.store.events_for_issue(i.fingerprint, 1000)}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server.start(tmp_path_factory.mktemp("edge"), env=LIMITS)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pg_server(tmp_path_factory: pytest.TempPathFactory, _postgres_server: str) -> Iterator[Server]:
    schema = f"autofix_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(_postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
    server = Server.start(tmp_path_factory.mktemp("edge-pg"), store_url=url.render_as_string(hide_password=False),
                          env=LIMITS)
    yield server
    server.stop()
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


# --- accepted ------------------------------------------------------------------------------------


def test_an_envelope_is_answered_with_its_event_id_after_its_row_is_committed(server: Server) -> None:
    payload = event()
    response = post(server, envelope(payload))
    assert response.status_code == 200 and response.json() == {"id": payload["event_id"]}
    wait_for("the event", lambda: payload["event_id"] in stored_ids(server))


def test_the_store_endpoint_takes_one_event_json_gzipped(server: Server) -> None:
    payload = event()
    response = post(server, gzip.compress(json.dumps(payload).encode()), path="/api/1/store/",
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert response.status_code == 200 and response.json() == {"id": payload["event_id"]}
    wait_for("the event", lambda: payload["event_id"] in stored_ids(server))


@pytest.mark.parametrize("how", ["query", "envelope-dsn", "deflate", "raw-deflate", "dashed-id"])
def test_keys_in_the_query_or_the_envelope_header_and_other_encodings_are_accepted(server: Server, how: str) -> None:
    payload = event()
    body = envelope(payload)
    path, headers, auth = "/api/1/envelope/", {}, True
    if how == "query":
        path, auth = f"/api/1/envelope/?sentry_key={DSN_KEY}&sentry_version=7", False
    elif how == "envelope-dsn":
        body, auth = envelope(payload, header={"dsn": f"http://{DSN_KEY}@127.0.0.1/1"}), False
    elif how == "deflate":
        body, headers = zlib.compress(body), {"Content-Encoding": "deflate"}
    elif how == "raw-deflate":
        squeeze = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        body, headers = squeeze.compress(body) + squeeze.flush(), {"Content-Encoding": "deflate"}
    elif how == "dashed-id":
        payload["event_id"] = str(uuid.UUID(payload["event_id"]))
        body = envelope(payload)
    response = post(server, body, path=path, headers=headers, auth=auth)
    assert response.status_code == 200, response.text
    event_id = uuid.UUID(payload["event_id"]).hex
    assert response.json() == {"id": event_id}
    wait_for("the event", lambda: event_id in stored_ids(server))


def test_an_envelope_of_only_a_transaction_and_a_session_is_answered_and_not_stored(server: Server) -> None:
    before = server.store.inbox_counts()
    transaction = json.dumps({"type": "transaction", "spans": []}).encode()
    session = b'{"sid":"x","status":"ok"}'
    body = (b'{"event_id":"' + uuid.uuid4().hex.encode() + b'"}\n'
            + b'{"type":"transaction","length":' + str(len(transaction)).encode() + b"}\n" + transaction + b"\n"
            + b'{"type":"session"}\n' + session + b"\n")
    response = post(server, body)
    assert response.status_code == 200
    assert server.store.inbox_counts() == before


# --- refused, nothing stored ---------------------------------------------------------------------

BOMB = gzip.compress(b"{" + b" " * 50_000_000 + b"}")
ITEM = json.dumps(event()).encode()

BAD_INPUT: list[tuple[str, bytes, dict[str, str], str, int, str]] = [
    # (case, body, headers, path, status, words of the reason)
    ("non-JSON event", b"this is not json", {}, "/api/1/store/", 400, "event is not JSON"),
    ("JSON list", b"[1, 2]", {}, "/api/1/store/", 400, "expected an object"),
    ("none of the expected fields", b'{"platform": "python", "level": "error"}', {}, "/api/1/store/", 400,
     "none of exception, message, logentry, event_id"),
    ("event id not a UUID", b'{"event_id": "abc", "message": "x"}', {}, "/api/1/store/", 400, "is not a UUID"),
    ("NaN in JSON", b'{"message": "x", "timestamp": NaN}', {}, "/api/1/store/", 400, "event is not JSON"),
    ("number out of range", b'{"message": "x", "timestamp": 1e400}', {}, "/api/1/store/", 400,
     "number is infinity"),
    ("lone surrogate", b'{"message": "\\ud800"}', {}, "/api/1/store/", 400, "surrogate"),
    ("not UTF-8", b'{"message": "caf\xe9"}', {}, "/api/1/store/", 400, "not valid UTF-8"),
    ("form content type", b"a=b", {"Content-Type": "application/x-www-form-urlencoded"}, "/api/1/store/", 400,
     "is not accepted here"),
    ("multipart content type", b"--x--", {"Content-Type": "multipart/form-data; boundary=x"}, "/api/1/envelope/",
     400, "is not accepted here"),
    ("empty body", b"", {}, "/api/1/envelope/", 400, "empty body"),
    ("truncated gzip", gzip.compress(envelope(event()))[:-12], {"Content-Encoding": "gzip"}, "/api/1/envelope/",
     400, "gzip body is truncated"),
    ("corrupt gzip", b"\x1f\x8bnot really gzip", {"Content-Encoding": "gzip"}, "/api/1/envelope/", 400,
     "gzip body is corrupt"),
    ("truncated brotli", brotli.compress(envelope(event()))[:-20], {"Content-Encoding": "br"}, "/api/1/envelope/",
     400, "br body is"),
    ("gzip bomb", BOMB, {"Content-Encoding": "gzip"}, "/api/1/envelope/", 413,
     "decompressed body is over the limit of 400000 bytes"),
    ("body over the limit", b"x" * 100_001, {}, "/api/1/envelope/", 413, "over the limit of 100000"),
    ("unknown encoding", b"x", {"Content-Encoding": "zstd"}, "/api/1/envelope/", 415, "'zstd' is not supported"),
    ("envelope header not JSON", b"nope\n" + ITEM, {}, "/api/1/envelope/", 400, "envelope header is not JSON"),
    ("item longer than declared", envelope(ITEM, length=len(ITEM) - 5), {}, "/api/1/envelope/", 400,
     "payload runs on past it"),
    ("item shorter than declared", envelope(ITEM, length=len(ITEM) + 50), {}, "/api/1/envelope/", 400,
     f"declares length {len(ITEM) + 50} but"),
    ("item header not JSON", b'{}\n{"type": "event", "length": 3\nabc\n', {}, "/api/1/envelope/", 400,
     "envelope item 0 header is not JSON"),
    ("item payload not JSON", envelope(b"{not json}"), {}, "/api/1/envelope/", 400,
     "envelope item 0 payload is not JSON"),
    ("item without event fields", envelope(b'{"user": {"id": 1}}'), {}, "/api/1/envelope/", 400,
     "envelope item 0 payload has none of exception"),
    ("bad project id", envelope(ITEM), {}, "/api/shop/envelope/", 400, "bad project path parameter"),
]


@pytest.mark.parametrize(("case", "body", "headers", "path", "status", "reason"), BAD_INPUT,
                         ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_refused_with_its_reason_and_stores_nothing(
    server: Server, case: str, body: bytes, headers: dict[str, str], path: str, status: int, reason: str
) -> None:
    before_rows, before_events = server.store.inbox_counts(), stored_ids(server)
    response = post(server, body, path=path, headers=headers)
    assert response.status_code == status, response.text
    assert reason in response.json()["detail"]
    assert server.store.inbox_counts() == before_rows
    assert stored_ids(server) == before_events


def test_a_body_streamed_without_a_length_is_cut_off_at_the_limit(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            yield b"x" * 10_000

    before = server.store.inbox_counts()
    response = httpx.post(server.url("/api/1/envelope/"), content=chunks(), headers=AUTH, timeout=30)
    assert response.status_code == 413
    assert server.store.inbox_counts() == before


@pytest.mark.parametrize(
    ("headers", "status", "reason"),
    [
        ({}, 401, "missing authorization information"),
        ({"X-Sentry-Auth": "Sentry sentry_key=nobody, sentry_version=7"}, 403, "unknown sentry_key"),
        ({"X-Sentry-Auth": "Bearer abc"}, 401, "bad x-sentry-auth header"),
        ({"X-Sentry-Auth": "Sentry sentry_version=7"}, 401, "no sentry_key"),
    ],
)
def test_requests_without_a_known_key_are_refused(server: Server, headers: dict[str, str], status: int,
                                                  reason: str) -> None:
    before = server.store.inbox_counts()
    response = httpx.post(server.url("/api/1/envelope/"), content=envelope(event()), headers=headers, timeout=30)
    assert response.status_code == status and reason in response.json()["detail"]
    assert server.store.inbox_counts() == before


def test_credentials_in_both_the_header_and_the_query_are_refused(server: Server) -> None:
    response = post(server, envelope(event()), path=f"/api/1/envelope/?sentry_key={DSN_KEY}")
    assert response.status_code == 401 and "multiple authorization payloads" in response.json()["detail"]


# --- repaired, not refused -------------------------------------------------------------------------


def _nul_event() -> dict[str, Any]:
    payload = event("bad byte \x00 in the value")
    frame = payload["exception"]["values"][0]["stacktrace"]["frames"][-1]
    frame["vars"] = {"name\x00": "a\x00b", "nested": {"list": ["\x00"]}}
    payload["tags"] = {"route": "/x\x00y"}
    payload["message"] = "nul \x00 message"
    return payload


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_nul_characters_are_stored_as_replacement_characters(backend: str, request: pytest.FixtureRequest) -> None:
    target: Server = request.getfixturevalue("server" if backend == "sqlite" else "pg_server")
    payload = _nul_event()
    response = post(target, envelope(payload))
    assert response.status_code == 200

    event_id = payload["event_id"]
    stored = wait_for("the event", lambda: target.store.get_event(event_id))
    assert stored.exceptions[0].value == "bad byte \ufffd in the value"
    assert stored.exceptions[0].frames[-1].vars == {"name\ufffd": "a\ufffdb", "nested": {"list": ["\ufffd"]}}
    assert stored.tags == {"route": "/x\ufffdy"}
    assert "\x00" not in json.dumps(stored.raw)
    issue = target.store.get_issue(stored.fingerprint or "")
    assert issue is not None and "\x00" not in issue.title


@pytest.mark.parametrize(
    "timestamp", [1e300, "9999-12-31T23:59:59Z", -5, "yesterday", 4102444800, "1e400"],
    ids=["overflow", "year-9999", "before-2000", "not-a-time", "year-2100", "overflow-text"],
)
def test_absurd_timestamps_are_dropped_and_the_event_counts_as_seen_when_received(server: Server,
                                                                                   timestamp: Any) -> None:
    payload = event(f"absurd {timestamp}")
    payload["timestamp"] = timestamp
    sent_at = datetime.now(UTC)
    response = post(server, envelope(payload))
    assert response.status_code == 200, response.text

    stored = wait_for("the event", lambda: server.store.get_event(payload["event_id"]))
    assert stored.timestamp is None
    assert abs(stored.received_at - sent_at) < timedelta(seconds=30)
    issue = server.store.get_issue(stored.fingerprint or "")
    assert issue is not None and abs(issue.last_seen - sent_at) < timedelta(seconds=30)


def test_an_event_accepted_but_malformed_inside_fails_in_the_inbox_with_its_reason_and_stores_nothing(
    server: Server,
) -> None:
    payload = event("lineno as text")
    payload["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"] = "ten"
    response = post(server, envelope(payload))
    assert response.status_code == 200  # the edge checks framing, not every field

    failed = wait_for("the failed item", lambda: [i for i in server.store.inbox_items(InboxStatus.FAILED, 1000)
                                                  if i.event_id == payload["event_id"]])
    assert "frames[0].lineno is a string, expected an integer" in (failed[0].error or "")
    assert server.store.get_event(payload["event_id"]) is None

    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    env.update(AUTOFIX_HOME=str(server.root / "home"), AUTOFIX_STORE_URL=server.store_url,
               AUTOFIX_CONFIG=str(server.root / "autofix.toml"))
    listed = subprocess.run([sys.executable, "-m", "pipeline", "inbox", "--failed", "--json"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert failed[0].id in [row["id"] for row in json.loads(listed.stdout)["items"]]
    retried = subprocess.run([sys.executable, "-m", "pipeline", "inbox", "--retry", str(failed[0].id), "--json"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert retried.returncode == 1  # ran again, failed the same way, still failed and stored nothing
    assert json.loads(retried.stdout)[0]["status"] == "failed"
    every = subprocess.run([sys.executable, "-m", "pipeline", "inbox", "--retry-all", "--json"], env=env,
                           capture_output=True, text=True, timeout=60)
    assert every.returncode == 1 and failed[0].id in [row["id"] for row in json.loads(every.stdout)]
    assert server.store.get_event(payload["event_id"]) is None


# --- backlog bound -------------------------------------------------------------------------------


def test_a_backlog_over_its_bound_is_answered_429_with_retry_after(tmp_path: Any) -> None:
    # With a broker and no worker, accepted rows stay pending: the backlog only grows.
    server = Server.start(tmp_path, env={"AUTOFIX_BROKER_URL": BROKER, "AUTOFIX_INGEST_MAX_BACKLOG": "3",
                                         "AUTOFIX_INGEST_RETRY_AFTER_S": "7"})
    try:
        answers = []
        for _ in range(8):
            answers.append(post(server, envelope(event())))
            if answers[-1].status_code == 429:
                break
        assert [a.status_code for a in answers[:3]] == [200, 200, 200]
        refused = answers[-1]
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "7"
        assert "unprocessed payloads" in refused.json()["detail"]
        assert server.store.inbox_counts().get("pending", 0) == len(answers) - 1
    finally:
        server.stop()


# --- shutdown ------------------------------------------------------------------------------------


def test_a_request_in_flight_at_sigterm_is_finished_and_its_event_kept(tmp_path: Any) -> None:
    import signal
    import threading
    import time

    server = Server.start(tmp_path)
    payload = event("in flight")
    body = envelope(payload)
    halves = [body[: len(body) // 2], body[len(body) // 2 :]]
    sent_first = threading.Event()

    def slowly() -> Iterator[bytes]:
        yield halves[0]
        sent_first.set()
        time.sleep(1.5)  # SIGTERM arrives while the rest of the body is on its way
        yield halves[1]

    answers: list[httpx.Response] = []
    client = threading.Thread(target=lambda: answers.append(httpx.post(
        server.url("/api/1/envelope/"), content=slowly(), timeout=30,
        headers={**AUTH, "Content-Length": str(len(body))})))
    client.start()
    assert sent_first.wait(10)
    time.sleep(0.3)
    os.killpg(server.proc.pid, signal.SIGTERM)
    client.join(30)
    server.proc.wait(timeout=30)

    assert answers and answers[0].status_code == 200 and answers[0].json() == {"id": payload["event_id"]}
    assert server.events("server.stopped")
    restarted = Server.start(tmp_path)  # the event was committed before the answer; now it is processed
    try:
        wait_for("the event", lambda: restarted.store.get_event(payload["event_id"]))
    finally:
        restarted.stop()
