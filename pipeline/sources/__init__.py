"""Sources: turn what arrives (Sentry events, API events, webhooks, envelopes, log files) into
ErrorEvents. `load_path` tells the shapes apart by content; the parsers live in sentry.py and logs.py.

Parsers do not scrub: the ingest stage runs pipeline.scrub.scrub_event on every event before it is
stored, so the one rule about secrets lives in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import InvalidInput
from pipeline.records import ErrorEvent
from pipeline.sources.logs import parse_log_file, parse_log_text, stream_name
from pipeline.sources.sentry import (
    load_json,
    parse_api_event,
    parse_envelope,
    parse_event,
    parse_webhook,
)

__all__ = [
    "load_path",
    "parse_api_event",
    "parse_envelope",
    "parse_event",
    "parse_log_file",
    "parse_log_text",
    "parse_payload",
    "parse_webhook",
]

_EVENT_KEYS = ("exception", "event_id", "message", "logentry")


def load_path(path: Path, *, received_at: datetime | None = None) -> list[ErrorEvent]:
    """The events in one file: event JSON, API event (or a list of them), webhook, envelope, or log.

    A file named *.json must hold a supported JSON shape; it is never read as a log instead.
    """
    source = str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(source, f"cannot be read: {exc.strerror or exc}") from exc
    if path.suffix.lower() == ".json":
        return _from_json(load_json(data, source, "file"), source, received_at)
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            document = None
        if document is not None:
            return _from_json(document, source, received_at)
        if _looks_like_envelope(data):
            return parse_envelope(data, source, received_at=received_at)
    if path.suffix.lower() == ".envelope":
        return parse_envelope(data, source, received_at=received_at)
    return parse_log_text(data, source, received_at=received_at, stream=stream_name(path))


def parse_payload(payload: Any, source: str, *, received_at: datetime | None = None) -> ErrorEvent:
    """One JSON object of any Sentry shape (event, API event, webhook), told apart by its keys."""
    if not isinstance(payload, Mapping):
        raise InvalidInput(source, f"payload is {type(payload).__name__}, expected an object")
    if "entries" in payload or "eventID" in payload:
        return parse_api_event(payload, source, received_at=received_at)
    if "action" in payload and "data" in payload:
        return parse_webhook(payload, source, received_at=received_at)
    if any(key in payload for key in _EVENT_KEYS):
        return parse_event(payload, source, received_at=received_at)
    keys = ", ".join(sorted(str(k) for k in payload)[:8]) or "none"
    raise InvalidInput(
        source, f"unsupported JSON shape: not a Sentry event, API event or webhook (keys: {keys})"
    )


def _from_json(document: Any, source: str, received_at: datetime | None) -> list[ErrorEvent]:
    if isinstance(document, list):
        # GET .../events/?full=true answers with a list of API events.
        return [
            parse_payload(item, f"{source}[{i}]", received_at=received_at) for i, item in enumerate(document)
        ]
    return [parse_payload(document, source, received_at=received_at)]


def _looks_like_envelope(data: bytes) -> bool:
    lines = data.split(b"\n", 2)
    if len(lines) < 2:
        return False
    try:
        header, item = json.loads(lines[0]), json.loads(lines[1])
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return isinstance(header, dict) and isinstance(item, dict) and "type" in item
