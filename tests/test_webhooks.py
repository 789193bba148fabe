"""Sentry's webhooks against a running `autofix serve`: each resource with a correct, a wrong and a
missing signature, stale timestamps, replayed Request-IDs, non-ASCII bodies; service hooks and the
legacy plugin; issue states kept in step, and a resolved Sentry issue no longer attempted.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from helpers_serve import CLIENT_SECRET, LEGACY_TOKEN, SERVICE_HOOK_SECRET, Server, wait_for

from pipeline.records import InboxStatus
from pipeline.settings import Settings
from pipeline.triage import pick
from pipeline.web.app import create_app

DATA = Path(__file__).resolve().parent / "data"


def sign(body: bytes, secret: str = CLIENT_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def hook_headers(body: bytes, resource: str, *, signature: str | None = "sign", timestamp: float | None = None,
                 request_id: str | None = None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Sentry-Hook-Resource": resource,
               "Request-ID": request_id or str(uuid.uuid4()),
               "Sentry-Hook-Timestamp": str(int(time.time() if timestamp is None else timestamp))}
    if signature == "sign":
        headers["Sentry-Hook-Signature"] = sign(body)
    elif signature is not None:
        headers["Sentry-Hook-Signature"] = signature
    return headers


def error_webhook(resource: str = "error", **changes: Any) -> tuple[dict[str, Any], str]:
    """A recorded error.created / event_alert.triggered payload with a fresh event id."""
    name = "webhook_error_created.json" if resource == "error" else "webhook_event_alert.json"
    payload = json.loads((DATA / name).read_text())
    inner = payload["data"]["error" if resource == "error" else "event"]
    inner["event_id"] = uuid.uuid4().hex
    inner.update(changes)
    return payload, inner["event_id"]


def issue_webhook(action: str, sentry_id: str, status: str) -> dict[str, Any]:
    return {
        "action": action, "actor": {"id": "sentry", "name": "Sentry", "type": "application"},
        "installation": {"uuid": "7a485448-a9e2-4c85-8a3c-4f44175783c9"},
        "data": {"issue": {"id": sentry_id, "shortId": "SHOP-9", "title": "OrderNotFound: order o-4040 not found",
                           "culprit": "fixture_app in fetch_order", "status": status, "statusDetails": {},
                           "project": {"id": "1", "name": "shop", "slug": "shop", "platform": "python"},
                           "count": "3", "firstSeen": "2026-11-23T20:43:05Z", "lastSeen": "2026-11-23T20:43:05Z"}},
    }


INSTALLATION = {"action": "created", "actor": {"id": 1, "name": "Ada", "type": "user"},
                "data": {"installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de", "status": "installed",
                                          "app": {"uuid": "b1", "slug": "autofix"},
                                          "organization": {"slug": "acme"}}},
                "installation": {"uuid": "a8e5d37a-696c-4c54-adb5-b3f28d64c7de"}}


def payload_for(resource: str) -> tuple[dict[str, Any], str | None]:
    if resource in ("error", "event_alert"):
        return error_webhook(resource)
    if resource == "issue":
        return issue_webhook("created", str(uuid.uuid4().int % 10**10), "unresolved"), None
    return copy.deepcopy(INSTALLATION), None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server.start(tmp_path_factory.mktemp("hooks"))
    yield server
    server.stop()


def deliver(server: Server, body: bytes, headers: dict[str, Any], path: str = "/webhooks/sentry") -> httpx.Response:
    return httpx.post(server.url(path), content=body, headers=headers, timeout=30)


def rows_with(server: Server, request_id: str) -> list[Any]:
    return [i for i in server.store.inbox_items(limit=100_000) if i.request_id == request_id]


def processed(server: Server, inbox_id: int) -> Any:
    return wait_for("the item to be processed", lambda: (i := server.store.inbox_item(inbox_id))
                    and i.status is not InboxStatus.PENDING and i)


# --- signatures ----------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["error", "event_alert", "issue", "installation"])
def test_a_correctly_signed_delivery_of_each_resource_is_stored_and_processed(server: Server, resource: str) -> None:
    payload, event_id = payload_for(resource)
    body = json.dumps(payload).encode()
    headers = hook_headers(body, resource)

    response = deliver(server, body, headers)
    assert response.status_code == 200 and response.json()["received"] is True
    item = processed(server, response.json()["inbox_id"])
    assert item.status is InboxStatus.PROCESSED, item.error
    assert item.request_id == headers["Request-ID"]
    if event_id:
        stored = server.store.get_event(event_id)
        assert stored is not None and stored.source == "sentry-webhook" and stored.sentry_issue_id == "4504082601"
        issue = server.store.get_issue(stored.fingerprint or "")
        assert issue is not None and issue.sentry_issue_id == "4504082601"
    elif resource == "issue":
        assert "not configured" in (item.outcome or "")  # no API: the event is not fetched
    else:
        assert item.outcome == "installation created: recorded"


@pytest.mark.parametrize("resource", ["error", "event_alert", "issue", "installation", "metric_alert"])
@pytest.mark.parametrize("signature", ["wrong", "missing", "other-secret", "not-hex-\u00fc"])
def test_a_delivery_with_a_wrong_or_missing_signature_is_refused_and_stores_nothing(
    server: Server, resource: str, signature: str
) -> None:
    payload, event_id = payload_for(resource) if resource != "metric_alert" else ({"action": "critical"}, None)
    body = json.dumps(payload).encode()
    given = {"wrong": sign(body + b" "), "missing": None, "other-secret": sign(body, "not-the-secret"),
             "not-hex-\u00fc": "\u00fc" * 64}[signature]
    headers = hook_headers(body, resource, signature=given)

    response = deliver(server, body, {k: v.encode() for k, v in headers.items()})  # UTF-8 bytes on the wire
    assert response.status_code == 401
    assert "Sentry-Hook-Signature is missing or does not match the body" in response.json()["detail"]
    assert rows_with(server, headers["Request-ID"]) == []
    if event_id:
        assert server.store.get_event(event_id) is None


def test_a_body_changed_after_signing_is_refused(server: Server) -> None:
    payload, event_id = error_webhook()
    body = json.dumps(payload).encode()
    headers = hook_headers(body, "error")
    tampered = body.replace(b"OrderNotFound", b"OrderNotFounD")
    assert deliver(server, tampered, headers).status_code == 401
    assert server.store.get_event(event_id) is None


def test_an_unknown_resource_is_answered_logged_and_dropped(server: Server) -> None:
    body = json.dumps({"action": "critical", "data": {"metric_alert": {"id": "1"}}}).encode()
    headers = hook_headers(body, "metric_alert")
    response = deliver(server, body, headers)
    assert response.status_code == 200 and response.json() == {"received": False, "ignored": "metric_alert"}
    assert rows_with(server, headers["Request-ID"]) == []
    wait_for("the log line", lambda: [e for e in server.events("webhook.ignored") if e["resource"] == "metric_alert"])


# --- timestamps and replays ----------------------------------------------------------------------


@pytest.mark.parametrize(("timestamp", "reason"), [
    (-361, "outside the 300 s window"),  # seconds from now, when the test runs
    (400, "outside the 300 s window"),
    ("yesterday", "is not a Unix time"),
    ("nan", "outside the 300 s window"),
    (None, "has no timestamp header"),
])
def test_a_stale_future_or_missing_timestamp_is_refused(server: Server, timestamp: Any, reason: str) -> None:
    payload, event_id = error_webhook()
    body = json.dumps(payload).encode()
    headers = hook_headers(body, "error")
    if timestamp is None:
        del headers["Sentry-Hook-Timestamp"]
    else:
        headers["Sentry-Hook-Timestamp"] = timestamp if isinstance(timestamp, str) else str(int(time.time() + timestamp))
    response = deliver(server, body, headers)
    assert response.status_code == 401 and reason in response.json()["detail"]
    assert server.store.get_event(event_id) is None


def test_a_replayed_request_id_is_answered_without_storing_anything_again(server: Server) -> None:
    payload, event_id = error_webhook()
    body = json.dumps(payload).encode()
    headers = hook_headers(body, "error")

    first = deliver(server, body, headers)
    again = deliver(server, body, headers)
    assert first.status_code == 200 and first.json()["received"] is True
    assert again.status_code == 200 and again.json() == {"received": False, "duplicate": True}
    assert len(rows_with(server, headers["Request-ID"])) == 1
    processed(server, first.json()["inbox_id"])
    stored = server.store.get_event(event_id)
    assert stored is not None
    issue = server.store.get_issue(stored.fingerprint or "")
    assert issue is not None and len(server.store.events_for_issue(issue.fingerprint, 1000)) == issue.count


@pytest.mark.parametrize("ascii_only", [False, True], ids=["utf-8", "escaped"])
def test_non_ascii_text_is_verified_over_the_bytes_and_stored_intact(server: Server, ascii_only: bool) -> None:
    text = "Zahlung für Jürgen fehlgeschlagen \u2014 \u652f\u4ed8\u5931\u8d25 \U0001f6ab"
    payload, event_id = error_webhook()
    payload["data"]["error"]["exception"]["values"][-1]["value"] = text
    payload["data"]["error"]["tags"] = [["kunde", "M\u00fcller"]]
    body = json.dumps(payload, ensure_ascii=ascii_only).encode()

    response = deliver(server, body, hook_headers(body, "error"))
    assert response.status_code == 200
    processed(server, response.json()["inbox_id"])
    stored = server.store.get_event(event_id)
    assert stored is not None
    assert stored.exceptions[-1].value == text and stored.tags["kunde"] == "M\u00fcller"


# --- malformed but signed -------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "changes", "status", "reason"), [
    (b"not json", {}, 400, "body is not JSON"),
    (b"[1, 2]", {}, 400, "expected an object"),
    (b'{"action": "created", "data": {}}', {}, 400, "error webhook has no data.error object"),
    (b'{"action": "created", "data": {"error": {"platform": "python"}}}', {}, 400, "none of exception"),
    (b'{"action": "created", "data": {"issue": {}}}', {"Sentry-Hook-Resource": "issue"}, 400,
     "no data.issue object with an id"),
    (b'{"action": "created"}', {"Content-Type": "text/plain"}, 400, "is not application/json"),
    (b'{"action": "created"}', {"Sentry-Hook-Resource": ""}, 400, "no Sentry-Hook-Resource header"),
])
def test_a_signed_but_malformed_delivery_is_refused_with_its_reason(
    server: Server, body: bytes, changes: dict[str, str], status: int, reason: str
) -> None:
    headers = {**hook_headers(body, "error"), **changes}
    response = deliver(server, body, headers)
    assert response.status_code == status and reason in response.json()["detail"]
    assert rows_with(server, headers["Request-ID"]) == []


# --- issue state ---------------------------------------------------------------------------------


def test_issue_webhooks_keep_the_state_in_step_and_a_resolved_issue_is_not_attempted(server: Server) -> None:
    sentry_id = str(uuid.uuid4().int % 10**10)
    payload, event_id = error_webhook(issue_id=sentry_id)
    for exc in payload["data"]["error"]["exception"]["values"]:  # its own issue and its own cluster
        exc["type"] = f"Crash{sentry_id}"
    body = json.dumps(payload).encode()
    processed(server, deliver(server, body, hook_headers(body, "error")).json()["inbox_id"])
    stored = server.store.get_event(event_id)
    assert stored is not None
    fingerprint = stored.fingerprint or ""

    def change(action: str, status: str) -> str:
        body = json.dumps(issue_webhook(action, sentry_id, status)).encode()
        response = deliver(server, body, hook_headers(body, "issue"))
        assert response.status_code == 200
        item = processed(server, response.json()["inbox_id"])
        assert item.status is InboxStatus.PROCESSED, item.error
        return item.outcome or ""

    assert "1 issue(s) updated" in change("resolved", "resolved")
    issue = server.store.get_issue(fingerprint)
    assert issue is not None and issue.sentry_status == "resolved" and issue.sentry_issue_id == sentry_id
    assert fingerprint not in [i.fingerprint for i in pick(server.store, 1000)]

    change("unresolved", "unresolved")
    issue = server.store.get_issue(fingerprint)
    assert issue is not None and issue.sentry_status == "unresolved"
    assert fingerprint in [i.fingerprint for i in pick(server.store, 1000)]

    change("archived", "ignored")
    change("assigned", "ignored")
    issue = server.store.get_issue(fingerprint)
    assert issue is not None and issue.sentry_status == "ignored"


# --- service hooks and the legacy plugin ---------------------------------------------------------


def service_hook_event() -> tuple[dict[str, Any], str]:
    event = json.loads((DATA / "api_event_chained_from.json").read_text())
    event["eventID"] = event["id"] = uuid.uuid4().hex
    return {"project": {"slug": "shop", "name": "Shop"},
            "group": {"id": "4504082601", "shortId": "SHOP-1", "status": "unresolved"},
            "event": event}, event["eventID"]


def service_headers(body: bytes, secret: str = SERVICE_HOOK_SECRET, age: float = 0) -> dict[str, str]:
    return {"Content-Type": "application/json", "X-ServiceHook-Timestamp": str(int(time.time() - age)),
            "X-ServiceHook-GUID": "4b2ccd1b2a7c4c4d9c2b", "X-ServiceHook-Signature": sign(body, secret)}


def test_a_service_hook_event_is_stored_with_its_sentry_issue(server: Server) -> None:
    payload, event_id = service_hook_event()
    body = json.dumps(payload).encode()
    response = deliver(server, body, service_headers(body), "/webhooks/sentry/service-hook")
    assert response.status_code == 200
    item = processed(server, response.json()["inbox_id"])
    assert item.status is InboxStatus.PROCESSED, item.error
    stored = server.store.get_event(event_id)
    assert stored is not None and stored.sentry_issue_id == "4504082601" and stored.project == "shop"
    assert [e.type for e in stored.exceptions] == ["KeyError", "OrderNotFound"]


def test_a_service_hook_issue_created_is_processed(server: Server) -> None:
    payload = issue_webhook("issue.created", "77001", "unresolved")
    body = json.dumps(payload).encode()
    response = deliver(server, body, service_headers(body), "/webhooks/sentry/service-hook")
    item = processed(server, response.json()["inbox_id"])
    assert item.status is InboxStatus.PROCESSED and "Sentry issue 77001 created" in (item.outcome or "")


@pytest.mark.parametrize(("secret", "age", "reason"), [
    ("wrong-secret", 0, "X-ServiceHook-Signature is missing or does not match"),
    (SERVICE_HOOK_SECRET, 3600, "outside the 300 s window"),
    (CLIENT_SECRET, 0, "X-ServiceHook-Signature is missing or does not match"),  # the other secret
])
def test_a_service_hook_with_a_wrong_signature_or_stale_timestamp_is_refused(
    server: Server, secret: str, age: float, reason: str
) -> None:
    payload, event_id = service_hook_event()
    body = json.dumps(payload).encode()
    response = deliver(server, body, service_headers(body, secret, age), "/webhooks/sentry/service-hook")
    assert response.status_code == 401 and reason in response.json()["detail"]
    assert server.store.get_event(event_id) is None


def legacy_payload() -> tuple[dict[str, Any], str]:
    event = json.loads((DATA / "event_chained_from.json").read_text())
    event["event_id"] = uuid.uuid4().hex
    event["tags"] = [["order_id", "o-1001"], ["level", "error"]]
    return {"id": "4504082601", "project": "shop", "project_name": "Shop", "project_slug": "shop",
            "logger": None, "level": "error", "culprit": "fixture_app in fetch_order",
            "message": "order o-4040 not found", "url": "https://sentry.io/organizations/acme/issues/4504082601/",
            "triggering_rules": ["every error"], "event": {**event, "id": event["event_id"]}}, event["event_id"]


def test_the_legacy_plugin_with_the_right_token_is_stored_and_its_token_never_logged(server: Server) -> None:
    payload, event_id = legacy_payload()
    response = httpx.post(server.url(f"/webhooks/sentry/legacy/{LEGACY_TOKEN}"), json=payload, timeout=30)
    assert response.status_code == 200
    item = processed(server, response.json()["inbox_id"])
    assert item.status is InboxStatus.PROCESSED, item.error
    stored = server.store.get_event(event_id)
    assert stored is not None and stored.sentry_issue_id == "4504082601" and stored.tags["order_id"] == "o-1001"
    wait_for("the access log line", lambda: [e for e in server.events("request.served")
                                             if e["path"] == "/webhooks/sentry/legacy/[Filtered]"])
    assert LEGACY_TOKEN not in server.log_path.read_text()


@pytest.mark.parametrize("token", ["wrong-token", LEGACY_TOKEN + "x", "legacy-token-12\u00e9"])
def test_the_legacy_plugin_with_a_wrong_token_is_refused(server: Server, token: str) -> None:
    payload, event_id = legacy_payload()
    response = httpx.post(server.url(f"/webhooks/sentry/legacy/{token}"), json=payload, timeout=30)
    assert response.status_code == 401
    assert server.store.get_event(event_id) is None


# --- unconfigured secrets ------------------------------------------------------------------------


def test_without_secrets_every_webhook_is_refused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, store_url=f"sqlite:///{tmp_path / 'a.db'}", sentry_client_secret=None,
                        sentry_service_hook_secret=None, sentry_legacy_token=None)
    payload, _ = error_webhook()
    body = json.dumps(payload).encode()
    with TestClient(create_app(settings)) as client:
        answers = [
            client.post("/webhooks/sentry", content=body, headers=hook_headers(body, "error")),
            client.post("/webhooks/sentry/service-hook", content=body, headers=service_headers(body)),
            client.post("/webhooks/sentry/legacy/anything", content=body, headers={"Content-Type": "application/json"}),
        ]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert ["is not set" in a.json()["detail"] for a in answers] == [True, True, True]
