"""Grouping: which events are the same bug. Owns the fingerprint, the fix class, title and culprit.

The fingerprint follows Sentry's idea for stack traces: the exception types of the chain plus, per
exception, its in-app frames (module or normalised path, function, source line with whitespace
collapsed). Line numbers never enter it, so an unrelated edit above the crash keeps the group; the
source line does, so two different crashes in one function stay apart. Without a stack it falls
back to the type plus the parameterised message, and last to the parameterised message alone.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import PurePosixPath

from pipeline.records import ErrorEvent, ExceptionInfo, Frame, Issue, IssueStatus

FINGERPRINT_VERSION = "v1"  # bump when the components change, so old and new groups never collide
_TITLE_LIMIT = 200

# Order matters: wider shapes first, so a URL's digits are not turned into <int> piecemeal.
_PARAMETERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("<url>", re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)),
    ("<email>", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    (
        "<uuid>",
        re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.IGNORECASE),
    ),
    (
        "<datetime>",
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
        ),
    ),
    ("<time>", re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b")),
    ("<ip>", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")),
    (
        "<hex>",
        re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.IGNORECASE),
    ),
    # A unit may follow ("30s", "2.5ms"); a letter before the digits makes a name ("utf8", "v2").
    ("<float>", re.compile(r"(?<![\w.])-?\d+\.\d+(?![\d.])")),
    ("<int>", re.compile(r"(?<![\w.])-?\d+(?![\d.])")),
)
_SPACE = re.compile(r"\s+")
_LIBRARY_PREFIX = re.compile(r"^.*?/(?:site-packages|dist-packages)/")


def parameterize(message: str) -> str:
    """The message with its variable parts (ids, numbers, dates, addresses) replaced by placeholders.

    Quoted strings are kept: in KeyError: 'user_id' versus KeyError: 'email' the quoted part names
    the bug, while a number inside it ('o-4040') is still replaced.
    """
    for placeholder, pattern in _PARAMETERS:
        message = pattern.sub(placeholder, message)
    return _SPACE.sub(" ", message).strip()


def fingerprint(event: ErrorEvent) -> str:
    digest = hashlib.sha256("\n".join([FINGERPRINT_VERSION, *_components(event)]).encode())
    return digest.hexdigest()[:32]


def _components(event: ErrorEvent) -> list[str]:
    if any(exc.frames for exc in event.exceptions):
        parts = []
        for exc in event.exceptions:
            parts.append(f"type:{exc.qualified_type}")
            parts.extend(_frame_components(exc))
        return parts
    primary = event.primary
    if primary is not None:
        return [f"type:{primary.qualified_type}", f"message:{parameterize(primary.value)}"]
    return [f"message:{parameterize(event.message_template or event.message or '')}"]


def _frame_components(exc: ExceptionInfo) -> list[str]:
    frames = [f for f in exc.frames if f.in_app] or list(exc.frames)
    parts: list[str] = []
    for frame in frames:
        part = f"frame:{_where(frame)}|{frame.function}|{_SPACE.sub(' ', frame.context_line or '').strip()}"
        if not parts or parts[-1] != part:  # deep recursion repeats one frame; count it once
            parts.append(part)
    return parts


def _where(frame: Frame) -> str:
    """The frame's module short name: 'orders' for shop.orders and for /srv/app/shop/orders.py.

    Only the last component is kept so that a Sentry event (which carries module names) and a log
    traceback (which carries file paths, under whatever prefix the host installs to) of the same
    crash group together; the function and source line keep same-named modules apart.
    """
    if frame.module:
        return frame.module.rsplit(".", 1)[-1]
    path = PurePosixPath(_LIBRARY_PREFIX.sub("", frame.filename.replace("\\", "/")))
    return path.parent.name if path.stem == "__init__" else path.stem


_NONE = "'NoneType' object"
_FIX_CLASSES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("AttributeError", (f"{_NONE} has no attribute",), "AttributeError:NoneType"),
    ("TypeError", (f"{_NONE} is not subscriptable",), "TypeError:NoneType-subscript"),
    (
        "TypeError",
        (
            f"{_NONE} is not iterable",
            "argument of type 'NoneType' is not iterable",
            "cannot unpack non-iterable NoneType object",
        ),
        "TypeError:NoneType-iterable",
    ),
    ("TypeError", (f"{_NONE} is not callable",), "TypeError:NoneType-callable"),
    (
        "TypeError",
        (
            "unsupported operand type",
            "can only concatenate",
            "not supported between instances of",
            "bad operand type for",
        ),
        "TypeError:unsupported-operand",
    ),
)
_PLAIN_CLASSES = {"ModuleNotFoundError": "ImportError"}


def fix_class(event: ErrorEvent) -> str:
    """A stable name for the kind of fix the escaping exception calls for."""
    exc = event.primary
    if exc is None:
        return "Message"
    for exc_type, phrases, name in _FIX_CLASSES:
        if exc.type == exc_type and any(phrase in exc.value for phrase in phrases):
            return name
    return _PLAIN_CLASSES.get(exc.type, exc.type)


def title(event: ErrorEvent) -> str:
    exc = event.primary
    if exc is not None:
        text = f"{exc.type}: {exc.value}" if exc.value else exc.type
    else:
        text = event.message or "<unlabeled event>"
    first = text.strip().splitlines()[0] if text.strip() else "<unlabeled event>"
    return first if len(first) <= _TITLE_LIMIT else first[: _TITLE_LIMIT - 1] + "…"


def culprit(event: ErrorEvent) -> str:
    """Where it broke, as Sentry shows it for Python: module.function of the crash frame."""
    frame = event.crash_frame()
    if frame is None:
        return event.tags.get("transaction", "")
    if frame.module:
        return f"{frame.module}.{frame.function}"
    return f"{_where(frame)} in {frame.function}"


def group(event: ErrorEvent) -> tuple[ErrorEvent, Issue]:
    """The event with its fingerprint set, and a new Issue for it (the store merges counts)."""
    fp = fingerprint(event)
    seen = event.timestamp or event.received_at
    issue = Issue(
        fingerprint=fp,
        title=title(event),
        culprit=culprit(event),
        fix_class=fix_class(event),
        first_seen=seen,
        last_seen=seen,
        count=1,
        status=IssueStatus.NEW,
        project=event.project,
        latest_event_id=event.id,
    )
    return replace(event, fingerprint=fp), issue
