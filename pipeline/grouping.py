"""Grouping: which events are the same bug (the fingerprint -> issues) and which issues share one
root cause (the cluster). Also names the fix class, the title and the culprit.

The fingerprint follows how Sentry groups Python events:

- an event's own `fingerprint` array replaces everything, unless one of its entries is
  ``{{ default }}``, which stands for the components below (other ``{{ ... }}`` variables: type,
  error.type, error.value, function, module, transaction, level, logger, message);
- with a stack: every exception type of the chain, plus per exception its in-app frames (module
  short name, function, source line with whitespace collapsed and a trailing comment dropped),
  consecutive identical frames once (recursion), never line numbers; when no frame of the event is
  in-app, all frames (Sentry's system variant); an exception whose stack contributes nothing adds
  its parameterised value;
- without a stack: the exception type and parameterised value; without an exception, the
  message's mined template (Drain3, see log_templates; the SDK's logging template, when it sent
  one, is mined like the lines it formats) or, with no miner, the parameterised template or text.

One deliberate difference from Sentry: the program's launcher does not contribute. A stack's
leading in-app frames that only launch the code below them (the script run as ``__main__``, a
top-level module calling into a package, a file in a folder above the package it calls, or
outside the virtualenv it calls into) are where the crash was caught and reported, not where it
happened; without this rule the same crash logged by a worker script and reported by the SDK of
a web process would be two issues.

The cluster is the root-cause site: the exception type and innermost in-app frame (module,
function, normalised line) of the root cause, which is the escaping exception unless that one was
raised on purpose while handling an earlier one (``raise Wrapper(...) from exc``), then that
earlier one. Issues of one cluster get one fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import PurePosixPath

from pipeline.fix_classes import classify
from pipeline.records import ErrorEvent, ExceptionInfo, Frame, Issue, IssueStatus
from pipeline.sources.in_app import installed_package, normalised

FINGERPRINT_VERSION = "v2"  # bump when the components change; `autofix regroup` moves old stores over
_TITLE_LIMIT = 200

# A message's stable template name (Drain3 cluster), given its parameterised text.
TemplateNamer = Callable[[str], str]

# Order matters: wider shapes first, so a URL's digits are not turned into <int> piecemeal.
_PARAMETERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("<quoted>", re.compile(r"(?<![\w'\"])'[^'\n]{0,200}'(?![\w'])|(?<![\w'\"])\"[^\"\n]{0,200}\"(?![\w\"])")),
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
            r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
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
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?([sdirfgexXoc])")
_PRINTF_MASKS = {"d": "<int>", "i": "<int>", "f": "<float>", "g": "<float>", "e": "<float>", "x": "<hex>"}
_VARIABLE = re.compile(r"^\{\{\s*([\w.]+)\s*\}\}$")


def parameterize(message: str) -> str:
    """The message with its variable parts (quoted values, ids, numbers, dates, addresses, hashes)
    replaced by placeholders, whitespace collapsed."""
    for placeholder, pattern in _PARAMETERS:
        message = pattern.sub(placeholder, message)
    return _SPACE.sub(" ", message).strip()


def fingerprint(event: ErrorEvent, templates: TemplateNamer | None = None) -> str:
    return _digest([FINGERPRINT_VERSION, *components(event, templates)], 32)


def _digest(parts: list[str], length: int) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:length]


def components(event: ErrorEvent, templates: TemplateNamer | None = None) -> list[str]:
    """What the fingerprint hashes, readable (tests and `autofix regroup --explain` show these)."""
    if event.client_fingerprint:
        parts = ["custom"]
        for entry in event.client_fingerprint:
            variable = _VARIABLE.match(entry.strip())
            if variable and variable[1].lower() == "default":
                parts.extend(_default_components(event, templates))
            else:
                parts.append(_variable(event, variable[1].lower()) if variable else entry)
        return parts
    return _default_components(event, templates)


def _variable(event: ErrorEvent, name: str) -> str:
    exc, frame = event.primary, event.crash_frame()
    values = {
        "type": exc.type if exc else "", "error.type": exc.type if exc else "",
        "error.value": exc.value if exc else "", "function": frame.function if frame else "",
        "module": (frame.module or _where(frame)) if frame else "",
        "transaction": event.tags.get("transaction", ""), "level": event.level or "",
        "logger": event.logger or "", "message": event.message or "",
    }
    return values.get(name, "{{ " + name + " }}")


def _default_components(event: ErrorEvent, templates: TemplateNamer | None) -> list[str]:
    if any(exc.frames for exc in event.exceptions):
        app_only = any(f.in_app for exc in event.exceptions for f in exc.frames)
        parts: list[str] = []
        for exc in event.exceptions:
            frame_parts = _frame_components(exc, app_only)
            parts.append(f"type:{exc.qualified_type}")
            parts.extend(frame_parts or [f"value:{parameterize(exc.value)}"])
        return parts
    primary = event.primary
    if primary is not None:
        return [f"type:{primary.qualified_type}", f"value:{parameterize(primary.value)}"]
    if templates is not None and (event.message_template or event.message):
        text = _as_message(event.message_template) if event.message_template else event.message or ""
        return [f"template:{templates(parameterize(text))}"]
    return [f"message:{parameterize(event.message_template or event.message or '')}"]


def _as_message(template: str) -> str:
    """A logging call's %-template as its messages look once parameterised ("%dms" -> "<int>ms"), so
    that the SDK's template and the formatted lines of a log file mine into one template."""
    return _PRINTF.sub(lambda m: _PRINTF_MASKS.get(m[1], "<*>"), template.replace("%%", "%"))


def _frame_components(exc: ExceptionInfo, app_only: bool) -> list[str]:
    frames = without_launchers([f for f in exc.frames if f.in_app]) if app_only else list(exc.frames)
    parts: list[str] = []
    for frame in frames:
        part = f"frame:{_where(frame)}|{_function(frame)}|{code(frame.context_line)}"
        if not parts or parts[-1] != part:  # deep recursion repeats one frame; count it once
            parts.append(part)
    return parts


def code(line: str | None) -> str:
    """A source line as it enters a fingerprint: a trailing comment dropped, whitespace collapsed."""
    return _SPACE.sub(" ", _without_comment(line or "")).strip()


def _without_comment(line: str) -> str:
    quote: str | None = None
    escaped = False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def frame_key(frame: Frame) -> str:
    """Where a frame is, as the fingerprint sees it plus its line number (source_lines' key)."""
    return f"{_where(frame)}|{_function(frame)}|{frame.lineno}"


def _function(frame: Frame) -> str:
    return frame.function.rsplit(".", 1)[-1]  # a qualified name (Class.method) and a bare one agree


def _where(frame: Frame) -> str:
    """The frame's module short name: 'orders' for shop.orders and for /srv/app/shop/orders.py.

    Only the last component is kept so that a Sentry event (which carries module names) and a log
    traceback (which carries file paths, under whatever prefix the host installs to) of the same
    crash group together; the function and source line keep same-named modules apart.
    """
    if frame.module:
        return frame.module.rsplit(".", 1)[-1]
    path = PurePosixPath(normalised(frame.filename))
    return path.parent.name if path.stem == "__init__" else path.stem


# --- launchers -----------------------------------------------------------------------------------


def without_launchers(frames: list[Frame]) -> list[Frame]:
    """The in-app frames less the leading ones that only launch the code below them."""
    start = 0
    while start < len(frames) - 1:
        callee = next((f for f in frames[start + 1 :] if _file(f) != _file(frames[start])), None)
        if callee is None or not _launches(frames[start], callee):
            break
        start += 1
    return frames[start:]


def _file(frame: Frame) -> str:
    return normalised(frame.abs_path or frame.filename)


def _launches(caller: Frame, callee: Frame) -> bool:
    if caller.module == "__main__":
        return True
    if caller.module and callee.module:
        top = callee.module.split(".", 1)[0]
        return "." not in caller.module and "." in callee.module and caller.module != top
    caller_path, callee_path = _file(caller), _file(callee)
    if installed_package(callee_path) is not None and installed_package(caller_path) is None:
        return True  # a script outside the virtualenv that runs the package installed in it
    here = str(PurePosixPath(caller_path).parent)
    there = str(PurePosixPath(callee_path).parent)
    here = "" if here == "." else here
    return there != here and (there.startswith(here.rstrip("/") + "/") if here else not there.startswith("/"))


# --- clusters ------------------------------------------------------------------------------------


def root_cause(event: ErrorEvent) -> ExceptionInfo | None:
    """The escaping exception, or, while it was raised on purpose from an earlier one, that one."""
    chain = event.exceptions
    i = len(chain) - 1
    while i > 0 and _raised_here(chain[i]):
        i -= 1
    return chain[i] if chain else None


def _raised_here(exc: ExceptionInfo) -> bool:
    frame = _site(exc)
    return frame is not None and code(frame.context_line).startswith("raise ")


def _site(exc: ExceptionInfo) -> Frame | None:
    in_app = [f for f in exc.frames if f.in_app]
    frames = in_app or list(exc.frames)
    return frames[-1] if frames else None


def crash_site(event: ErrorEvent) -> str | None:
    """The root cause's type and innermost in-app frame, readable; None without a stack."""
    exc = root_cause(event)
    frame = _site(exc) if exc is not None else None
    if exc is None or frame is None:
        return None
    return f"{exc.qualified_type} at {_where(frame)}.{_function(frame)}: {code(frame.context_line)}"


def cluster_id(event: ErrorEvent, fingerprint_: str | None = None) -> str:
    """The root-cause cluster; an event without a stack is a cluster of its own issue."""
    site = crash_site(event)
    if site is None:
        return _digest(["cluster", FINGERPRINT_VERSION, "issue", fingerprint_ or fingerprint(event)], 16)
    return _digest(["cluster", FINGERPRINT_VERSION, site], 16)


# --- the issue's labels ----------------------------------------------------------------------------


def fix_class(event: ErrorEvent) -> str:
    """The fix class (pipeline/fix_classes.py) of the event's escaping exception."""
    return classify(event).value


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
        return event.logger or event.tags.get("transaction", "")
    if frame.module:
        return f"{frame.module}.{frame.function}"
    return f"{_where(frame)} in {frame.function}"


def group(event: ErrorEvent, templates: TemplateNamer | None = None) -> tuple[ErrorEvent, Issue]:
    """The event with its fingerprint set, and a new Issue for it (the store merges counts)."""
    fp = fingerprint(event, templates)
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
        cluster_id=cluster_id(event, fp),
    )
    return replace(event, fingerprint=fp), issue
