"""Sentry's webhooks: the integration platform, project service hooks, and the legacy plugin.

- POST /webhooks/sentry: `Sentry-Hook-Signature` is the hex HMAC-SHA256 of the raw body keyed with
  AUTOFIX_SENTRY_CLIENT_SECRET; missing or wrong is a 401 and nothing is stored. The timestamp header
  is not signed, so a delivery whose `Sentry-Hook-Timestamp` is further than webhook_window_s from
  now is refused too, and a `Request-ID` already stored is answered 200 without storing anything
  (Sentry retries deliveries). Resources `issue`, `error`, `event_alert` and `installation` are
  stored; any other resource is answered 200, logged, and dropped.
- POST /webhooks/sentry/service-hook: the same rule with `X-ServiceHook-Signature`,
  `X-ServiceHook-Timestamp` and AUTOFIX_SENTRY_SERVICE_HOOK_SECRET.
- POST /webhooks/sentry/legacy/{token}: the WebHooks plugin signs nothing; the secret is the token
  in the URL path (AUTOFIX_SENTRY_LEGACY_TOKEN), compared in constant time.

Since the timestamp and Request-ID are not signed, replay protection is partial: a replayed event
is still stored once (events are kept once per event id), and an issue state replayed inside the
window is set again, never toggled.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import APIRouter, Request, Response
from pydantic import SecretStr

from pipeline.errors import InvalidInput, StoreUnavailable
from pipeline.inbox import EVENT_RESOURCES, RECORDED_RESOURCES, RESOURCE
from pipeline.records import InboxItem, InboxKind, utcnow
from pipeline.sources.envelope import check_event, strict_json
from pipeline.web.body import read_body
from pipeline.web.ingest import check_backlog
from pipeline.web.refusal import Refused
from pipeline.web.runtime import Runtime, runtime_of
from pipeline.web.sentry_auth import signature_matches

log = structlog.get_logger(__name__)
router = APIRouter(tags=["webhooks"])

STORED_RESOURCES = EVENT_RESOURCES | RECORDED_RESOURCES | {"issue"}


def _json_body(raw: bytes, request: Request) -> Mapping[str, Any]:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        raise Refused(400, f"content type {content_type or '(none)'!r} is not application/json")
    if request.headers.get("content-encoding", "identity").strip().lower() != "identity":
        raise Refused(415, "webhook bodies are signed as sent: Content-Encoding is not accepted")
    try:
        document = strict_json(raw)
    except ValueError as exc:
        raise Refused(400, f"body is not JSON: {exc}") from exc
    if not isinstance(document, Mapping):
        raise Refused(400, f"body is a JSON {type(document).__name__}, expected an object")
    return document


def _verify(raw: bytes, secret: SecretStr | None, setting: str, signature: str | None,
            timestamp: str | None, window_s: int, header: str) -> None:
    if secret is None:
        raise Refused(401, f"signed webhooks are refused: {setting} is not set")
    if not signature_matches(raw, secret.get_secret_value(), signature):
        raise Refused(401, f"{header} is missing or does not match the body")
    if timestamp is None:
        raise Refused(401, "the delivery has no timestamp header")
    try:
        sent = float(timestamp)
    except ValueError:
        raise Refused(401, f"timestamp {timestamp[:30]!r} is not a Unix time") from None
    age = time.time() - sent
    if not abs(age) <= window_s:  # also refuses NaN
        raise Refused(401, f"the delivery is {age:.0f} s old, outside the {window_s} s window")


async def _store(runtime: Runtime, item: InboxItem) -> int | None:
    try:
        return await runtime.writer.submit(item)
    except StoreUnavailable as exc:
        raise Refused(503, f"the inbox is unavailable: {exc}", {"Retry-After": "10"}) from exc


def _answer(inbox_id: int | None, **extra: Any) -> Response:
    body = {"received": True, "inbox_id": inbox_id, **extra} if inbox_id else {"received": False, **extra}
    return Response(json.dumps(body), media_type="application/json")


def _inner_event(document: Mapping[str, Any], resource: str) -> str | None:
    """The event id of an error / event_alert delivery; 400 unless it carries an event."""
    key = "error" if resource == "error" else "event"
    data = document.get("data")
    inner = data.get(key) if isinstance(data, Mapping) else None
    if not isinstance(inner, Mapping):
        raise Refused(400, f"{resource} webhook has no data.{key} object")
    try:
        return check_event(inner, "webhook", f"data.{key}")
    except InvalidInput as exc:
        raise Refused(400, exc.reason) from exc


def _issue_shape(document: Mapping[str, Any]) -> None:
    data = document.get("data")
    issue = data.get("issue") if isinstance(data, Mapping) else None
    if not isinstance(issue, Mapping) or issue.get("id") in (None, ""):
        raise Refused(400, "issue webhook has no data.issue object with an id")


def _clean(value: str | None) -> str | None:
    return value.replace("\x00", "")[:255] if value is not None else None


@router.post("/webhooks/sentry")
async def integration_webhook(request: Request) -> Response:
    """An integration-platform delivery (internal or public integration)."""
    runtime = runtime_of(request)
    settings = runtime.settings
    check_backlog(runtime)
    raw = await read_body(request, runtime.limits)
    headers = request.headers
    _verify(raw, settings.sentry_client_secret, "AUTOFIX_SENTRY_CLIENT_SECRET",
            headers.get("sentry-hook-signature"), headers.get("sentry-hook-timestamp"),
            settings.webhook_window_s, "Sentry-Hook-Signature")
    document = _json_body(raw, request)
    resource = (headers.get("sentry-hook-resource") or "").strip()
    if not resource:
        raise Refused(400, "the delivery has no Sentry-Hook-Resource header")
    if resource not in STORED_RESOURCES:
        log.info("webhook.ignored", resource=_clean(resource), action=str(document.get("action"))[:40])
        return _answer(None, ignored=_clean(resource))
    event_id = _inner_event(document, resource) if resource in EVENT_RESOURCES else None
    if resource == "issue":
        _issue_shape(document)
    request_id = _clean(headers.get("request-id"))
    item = InboxItem(
        kind=InboxKind.WEBHOOK, body=raw, received_at=utcnow(), request_id=request_id, event_id=event_id,
        headers={RESOURCE: resource, "request-id": request_id or "",
                 "sentry-hook-timestamp": _clean(headers.get("sentry-hook-timestamp")) or ""},
    )
    inbox_id = await _store(runtime, item)
    if inbox_id is None:
        log.info("webhook.replay_dropped", request_id=request_id, resource=resource)
        return _answer(None, duplicate=True)
    return _answer(inbox_id)


@router.post("/webhooks/sentry/service-hook")
async def service_hook(request: Request) -> Response:
    """A project service hook delivery (event.created, event.alert, issue.created)."""
    runtime = runtime_of(request)
    settings = runtime.settings
    check_backlog(runtime)
    raw = await read_body(request, runtime.limits)
    headers = request.headers
    _verify(raw, settings.sentry_service_hook_secret, "AUTOFIX_SENTRY_SERVICE_HOOK_SECRET",
            headers.get("x-servicehook-signature"), headers.get("x-servicehook-timestamp"),
            settings.webhook_window_s, "X-ServiceHook-Signature")
    document = _json_body(raw, request)
    if not (isinstance(document.get("event"), Mapping) or isinstance(document.get("data"), Mapping)):
        raise Refused(400, "service hook has neither an 'event' nor a 'data' object")
    item = InboxItem(kind=InboxKind.SERVICE_HOOK, body=raw, received_at=utcnow(),
                     headers={"x-servicehook-guid": _clean(headers.get("x-servicehook-guid")) or ""})
    return _answer(await _store(runtime, item))


@router.post("/webhooks/sentry/legacy/{token}")
async def legacy_webhook(token: str, request: Request) -> Response:
    """The legacy WebHooks plugin: unsigned; the URL's last part is the shared token."""
    runtime = runtime_of(request)
    expected = runtime.settings.sentry_legacy_token
    if expected is None:
        raise Refused(401, "legacy webhooks are refused: AUTOFIX_SENTRY_LEGACY_TOKEN is not set")
    if not hmac.compare_digest(expected.get_secret_value().encode(), token.encode("utf-8", "replace")):
        raise Refused(401, "the token in the URL is wrong")
    check_backlog(runtime)
    raw = await read_body(request, runtime.limits)
    document = _json_body(raw, request)
    event = document.get("event")
    if not isinstance(event, Mapping):
        raise Refused(400, "legacy webhook has no 'event' object")
    try:
        event_id = check_event(event, "legacy webhook", "event")
    except InvalidInput as exc:
        raise Refused(400, exc.reason) from exc
    item = InboxItem(kind=InboxKind.LEGACY_WEBHOOK, body=raw, received_at=utcnow(), event_id=event_id)
    return _answer(await _store(runtime, item))
