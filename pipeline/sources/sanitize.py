"""What a received payload may carry that must be repaired, not refused, before it is parsed.

Two things, as Sentry's own normaliser (Relay) treats them:

- NUL characters. JSON allows "\\u0000" in strings, PostgreSQL allows NUL in neither text nor jsonb.
  Every NUL in a key or a string becomes U+FFFD (the replacement character), so the text stays
  visibly altered rather than silently shortened.
- Absurd timestamps. A client's clock is not something its user can fix per event, so a timestamp
  that is not a time, is out of range, lies more than a minute in the future, or before 2000 is
  dropped (the event then counts as seen when it was received) instead of failing the event.

`repair` returns the repaired document and notes saying what was changed, for the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.sources._fields import parse_timestamp

REPLACEMENT = "\ufffd"
FUTURE_DRIFT = timedelta(seconds=60)  # Relay's allowance for a client clock running ahead
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# Where the timestamps of an event live, per payload shape (SDK event, webhook inner event, API event).
TIMESTAMP_KEYS = ("timestamp", "datetime", "received", "dateCreated", "dateReceived")


def strip_nul(value: Any) -> tuple[Any, int]:
    """`value` with every NUL in its strings and keys replaced; and how many strings had one."""
    if isinstance(value, str):
        return (value.replace("\x00", REPLACEMENT), 1) if "\x00" in value else (value, 0)
    if isinstance(value, Mapping):
        changed = 0
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and "\x00" in key:
                key, changed = key.replace("\x00", REPLACEMENT), changed + 1
            out[key], n = strip_nul(item)
            changed += n
        return out, changed
    if isinstance(value, list):
        items = [strip_nul(item) for item in value]
        return [item for item, _ in items], sum(n for _, n in items)
    return value, 0


def fix_timestamps(event: dict[str, Any], received_at: datetime, where: str = "event") -> list[str]:
    """Drop the event's timestamps that no clock could have produced; notes for each one dropped."""
    notes = []
    for key in TIMESTAMP_KEYS:
        value = event.get(key)
        if value is None:
            continue
        why = _absurd(value, received_at)
        if why:
            del event[key]
            notes.append(f"{where}.{key} {str(value)[:40]!r} {why}: dropped")
    return notes


def _absurd(value: Any, received_at: datetime) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None  # a wrong type is the parser's to report
    try:
        when = parse_timestamp(value)
    except ValueError as exc:
        return str(exc)
    if when > received_at + FUTURE_DRIFT:
        return "is in the future"
    if when < EARLIEST:
        return "is before 2000"
    return None


def event_objects(document: Any, paths: tuple[tuple[str, ...], ...]) -> list[tuple[str, dict[str, Any]]]:
    """The objects at `paths` inside the document (e.g. ("data", "error")), those that are objects."""
    found = []
    for path in paths:
        node: Any = document
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            found.append((".".join(path) or "event", node))
    return found


def repair(document: Any, paths: tuple[tuple[str, ...], ...], received_at: datetime, *,
           nul: bool = True) -> tuple[Any, list[str]]:
    """NULs replaced everywhere (unless `nul` is False: the caller knows there is none, e.g. the
    JSON text holds no \\u0000), absurd timestamps dropped from the event objects at `paths`."""
    clean, nul_strings = strip_nul(document) if nul else (document, 0)
    notes = [f"{nul_strings} string(s) held NUL characters: replaced by U+FFFD"] if nul_strings else []
    for where, event in event_objects(clean, paths):
        notes.extend(fix_timestamps(event, received_at, where))
    return clean, notes
