"""The head of a plain-text log record: its timestamp, level, logger and message.

Python's logging lets every application choose its layout, so the common ones are recognised
after any leading timestamps (a container runtime's CRI prefix adds one more):

    2024-05-01 12:00:00,123 ERROR [shop.web] message       %(asctime)s %(levelname)s [%(name)s] ...
    2024-05-01 12:00:00,123 ERROR 4242 [shop.web] message  ... %(process)d ...
    ERROR:shop.web:message                                 logging.basicConfig's default
    2024-05-01 12:00:00,123 - shop.web - ERROR - message   the logging cookbook's
    [2024-05-01 12:00:00 +0000] [4242] [ERROR] message     gunicorn
    [2024-05-01 12:00:00,123] ERROR in views: message      Flask
    2024-05-01 12:00:00 [error    ] message                structlog's ConsoleRenderer
    ERROR:    message                                      uvicorn

A line that matches none of them but starts with a timestamp is a record without a level; any
other line continues the record above it (a multi-line message, a traceback).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property

ERROR_LEVELS = frozenset({"error", "critical"})
_LEVELS = {
    "debug": "debug", "info": "info", "notice": "info", "warn": "warning", "warning": "warning",
    "error": "error", "err": "error", "exception": "error", "critical": "critical", "crit": "critical",
    "fatal": "critical", "alert": "critical", "emerg": "critical",
}
_LEVEL = r"(?:debug|info|notice|warn(?:ing)?|error|err|exception|critical|crit|fatal|alert|emerg)"
_NAME = r"[A-Za-z_][\w.\-]*"
TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:[.,](?P<frac>\d{1,9}))?"
    r"\s?(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
_LEADING_TIMESTAMP = re.compile(r"^\[?" + TIMESTAMP.pattern + r"\]?\s*(?:(?:stdout|stderr) [FP] |-\s+)?")
_LAYOUTS = (  # the common layouts first; each is anchored, so a miss costs little
    re.compile(rf"^(?P<level>{_LEVEL})\s+in\s+(?P<logger>{_NAME}):\s+(?P<msg>.*)$", re.IGNORECASE),
    re.compile(
        rf"^\[?(?P<level>{_LEVEL})\s*\]?:?(?:\s+\d+)?(?:\s+\[(?P<logger>{_NAME})\]:?)?(?:\s+(?P<msg>.*))?$",
        re.IGNORECASE,
    ),
    re.compile(rf"^(?P<level>{_LEVEL}):(?P<logger>{_NAME}):(?P<msg>.*)$", re.IGNORECASE),
    re.compile(rf"^(?P<logger>{_NAME}) - (?P<level>{_LEVEL}) - (?P<msg>.*)$", re.IGNORECASE),
    re.compile(rf"^(?:\[\d+\]\s+)?\[(?P<level>{_LEVEL})\]\s+(?P<msg>.*)$", re.IGNORECASE),
)


@dataclass(frozen=True)
class Record:
    level: str | None  # debug | info | warning | error | critical
    logger: str | None
    message: str
    stamp: re.Match[str] | None = None  # the leading timestamp, turned into a datetime on demand

    @property
    def is_error(self) -> bool:
        return self.level in ERROR_LEVELS

    @cached_property
    def timestamp(self) -> datetime | None:
        return as_datetime(self.stamp) if self.stamp is not None else None


def record(timestamp: datetime | None, level: str | None, logger: str | None, message: str) -> Record:
    """A record whose timestamp is already known (a JSON line's)."""
    made = Record(level, logger, message)
    made.__dict__["timestamp"] = timestamp  # fills the cached property
    return made


def parse_record(text: str) -> Record | None:
    """The record a line starts, or None when the line only continues the one above it."""
    stamp: re.Match[str] | None = None
    rest = text
    while (match := _LEADING_TIMESTAMP.match(rest)) is not None and match.end():
        stamp = stamp or match
        rest = rest[match.end() :]
    for layout in _LAYOUTS:
        found = layout.match(rest)
        if found is None:
            continue
        level = found["level"]
        if stamp is None and level != level.upper() and not rest.startswith("["):
            continue  # "Error: boom" is an exception line, not a record; levelnames are upper case
        logger = found.groupdict().get("logger")
        return Record(_LEVELS[level.lower()], logger, (found["msg"] or "").strip(), stamp)
    if stamp is not None:
        return Record(None, None, rest.strip(), stamp)
    return None


def as_datetime(match: re.Match[str]) -> datetime | None:
    frac = (match["frac"] or "0")[:6].ljust(6, "0")
    tz = match["tz"] or "+00:00"
    tz = "+00:00" if tz == "Z" else tz
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{tz}").astimezone(UTC)
    except ValueError:
        return None


def find_timestamp(text: str) -> datetime | None:
    match = TIMESTAMP.search(text)
    return as_datetime(match) if match else None


def level_name(value: object) -> str | None:
    """A level as JSON logs spell it ("ERROR", "error", 40, "err") -> error; None if unknown."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}.get(value)
    if isinstance(value, str):
        return _LEVELS.get(value.strip().lower())
    return None
