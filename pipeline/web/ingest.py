"""The endpoints sentry-sdk posts to when its DSN points at autofix: /api/{project_id}/envelope/ and
/api/{project_id}/store/.

The accept path is kept lean, since it is what an app's error rate hits: check the backlog bound,
authenticate the DSN key, read the body within its limit, undo its encoding within the decompressed
limit, check the framing and that event items are JSON events (sources/envelope.py), hand the
decoded body to the inbox writer and answer once it is committed. Everything else (parsing into an
ErrorEvent, scrubbing, grouping) runs later, off this path. Answers follow Relay: 200 {"id": ...},
400 with a reason, 401 without credentials, 403 for an unknown key, 413 over a size limit, 429 with
Retry-After when the inbox backlog is over its bound.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from pipeline.errors import StoreUnavailable
from pipeline.records import InboxItem, InboxKind, utcnow
from pipeline.sources.envelope import Accepted, accept_envelope, accept_event
from pipeline.web.body import decode, read_body
from pipeline.web.refusal import Refused
from pipeline.web.runtime import Runtime, runtime_of
from pipeline.web.sentry_auth import check_key, header_auth, sdk_auth

router = APIRouter(tags=["ingest"])

_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def check_backlog(runtime: Runtime) -> None:
    backlog = runtime.writer.backlog()
    if backlog >= runtime.settings.ingest_max_backlog:
        retry = str(runtime.settings.ingest_retry_after_s)
        raise Refused(429, f"the inbox holds {backlog} unprocessed payloads; retry later",
                      {"Retry-After": retry, "X-Sentry-Rate-Limits": f"{retry}::organization:backlog"})


def _project(project_id: str) -> str:
    if not project_id.isdigit() or len(project_id) > 20:
        raise Refused(400, f"bad project path parameter {project_id[:40]!r}: expected a numeric project id")
    return project_id


def _content_type_ok(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in _FORM_TYPES:
        raise Refused(400, f"content type {content_type} is not accepted here: send the event as JSON "
                      "or an envelope")


async def _accept(request: Request, project_id: str, kind: InboxKind) -> Response:
    runtime = runtime_of(request)
    project = _project(project_id)
    check_backlog(runtime)
    _content_type_ok(request)
    # The raw query string: building request.url for it would cost more than the rest of the checks.
    query = request.scope.get("query_string", b"").decode("latin-1")
    auth = header_auth(request.headers, query)  # else the envelope header's dsn, below
    if auth is not None:
        check_key(auth, runtime.settings.dsn_keys)
    raw = await read_body(request, runtime.limits)
    if not raw:
        raise Refused(400, "empty body")
    body = decode(raw, request.headers.get("content-encoding"), runtime.limits.max_decompressed_bytes)
    accepted: Accepted = accept_envelope(body) if kind is InboxKind.ENVELOPE else accept_event(body)
    if auth is None:
        auth = sdk_auth(request.headers, "", accepted.dsn)
        check_key(auth, runtime.settings.dsn_keys)
    event_id = accepted.event_id or (uuid.uuid4().hex if accepted.events else None)
    if accepted.events:
        headers = {"content-encoding": request.headers.get("content-encoding", "identity")}
        if auth.client:
            headers["sentry-client"] = auth.client.replace("\x00", "")
        item = InboxItem(kind=kind, body=body, received_at=utcnow(), project=project, headers=headers,
                         event_id=event_id)
        try:
            await runtime.writer.submit(item)
        except StoreUnavailable as exc:
            raise Refused(503, f"the inbox is unavailable: {exc}", {"Retry-After": "10"}) from exc
    # The id is 32 hex digits (normalize_event_id) or a fresh uuid4: nothing in it needs escaping.
    return Response(b'{"id":"%s"}' % event_id.encode() if event_id else b"{}", media_type="application/json")


@router.post("/api/{project_id}/envelope/")
async def envelope(project_id: str, request: Request) -> Response:
    """An envelope from an SDK; its event items are kept, transactions and sessions skipped."""
    return await _accept(request, project_id, InboxKind.ENVELOPE)


@router.post("/api/{project_id}/store/")
async def store(project_id: str, request: Request) -> Response:
    """One event JSON from an SDK (the endpoint before envelopes)."""
    return await _accept(request, project_id, InboxKind.STORE)
