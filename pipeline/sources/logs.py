"""Python tracebacks found in plain log files -> one ErrorEvent per traceback (source "log").

A traceback may sit behind a log prefix ("2024-05-01 12:00:00,123 ERROR [web] "). The prefix is
taken from the "Traceback (most recent call last):" line and generalised (digit runs match any
digits, so per-line timestamps still match); it is stripped from every following line, or, when
the next line does not carry it (logger.exception writes the traceback bare after its message
line), the traceback is read bare. Chains ("direct cause" / "during handling") join one event,
oldest cause first as Sentry orders them. Exception groups are skipped: their sub-tracebacks
are drawn inside "|" bars that no simple reader should guess at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from pipeline.errors import InvalidInput
from pipeline.records import ErrorEvent, ExceptionInfo, Frame, short_id, utcnow

log = structlog.get_logger(__name__)

HEADER = "Traceback (most recent call last):"
CHAIN_MARKERS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:\.<locals>\.[\w.]+)?)(?::(?: (?P<msg>.*))?)?$")
_CARETS = re.compile(r"^\s*[~^]+[\s~^]*$")
_REPEATED = re.compile(r"^\s*\[Previous line repeated \d+ more times?\]$")
_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})(?:[.,](?P<frac>\d{1,9}))?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
_LIBRARY_MARKERS = ("site-packages/", "dist-packages/", "/lib/python", "<frozen ", "/usr/lib/")
_BINARY_SNIFF = 8192


@dataclass
class _Line:
    text: str
    offset: int  # byte offset of the line in the file


@dataclass
class _Reader:
    """Walks the lines of one traceback, stripping its log prefix."""

    lines: list[_Line]
    pos: int
    prefix: re.Pattern[str] | None  # None: lines are read bare
    frames: list[Frame] = field(default_factory=list)

    def peek(self) -> str | None:
        if self.pos >= len(self.lines):
            return None
        text = self.lines[self.pos].text
        if self.prefix is None:
            return text
        match = self.prefix.match(text)
        return text[match.end() :] if match else None


def parse_log_file(path: Path, *, received_at: datetime | None = None) -> list[ErrorEvent]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot be read: {exc.strerror or exc}") from exc
    return parse_log_text(data, str(path), received_at=received_at)


def parse_log_text(data: bytes, source: str, *, received_at: datetime | None = None) -> list[ErrorEvent]:
    """Every Python traceback in `data`; a log without one gives an empty list."""
    if b"\x00" in data[:_BINARY_SNIFF]:
        raise InvalidInput(source, "holds NUL bytes: binary, not a log file")
    lines, offset = [], 0
    for raw_line in data.splitlines(keepends=True):
        # A stray non-UTF-8 byte should not cost the whole log; it becomes U+FFFD.
        lines.append(_Line(raw_line.decode("utf-8", "replace").rstrip("\r\n"), offset))
        offset += len(raw_line)
    events, i = [], 0
    while i < len(lines):
        start = _header_at(lines[i].text)
        if start is None:
            i += 1
            continue
        event, i = _read_chain(lines, i, start, source, received_at or utcnow())
        if event is not None:
            events.append(event)
    log.debug("log.parsed", source=source, tracebacks=len(events))
    return events


def _header_at(text: str) -> int | None:
    """Where a traceback header starts in the line, unless it belongs to an exception group."""
    at = text.find(HEADER)
    if at < 0:
        return None
    before = text[:at].rstrip()
    if before.endswith(("|", "+", "Exception Group")):
        return None
    return at


def _generalise(prefix: str) -> re.Pattern[str] | None:
    if not prefix:
        return None
    parts = re.split(r"(\d+)", prefix)
    return re.compile("".join(r"\d+" if p.isdigit() else re.escape(p) for p in parts))


def _line_prefix(header_prefix: str, first_line: str) -> re.Pattern[str] | None:
    """The prefix every line of this traceback carries: the longest word-aligned start of the
    header's prefix that, generalised, leaves a frame line when cut from the line after the header.
    A record that formats a traceback into its message carries more on its header line
    ("<runtime prefix> <log prefix> failed: Traceback ...") than on the lines that follow."""
    cuts = sorted(
        {len(header_prefix)} | {j + 1 for j, ch in enumerate(header_prefix) if ch == " "}, reverse=True
    )
    for cut in cuts:
        pattern = _generalise(header_prefix[:cut])
        match = pattern.match(first_line) if pattern else None
        if match and _FRAME.match(first_line[match.end() :]):
            return pattern
    return None  # read bare (also when the traceback is truncated right after its header)


def _read_chain(
    lines: list[_Line], i: int, start: int, source: str, received_at: datetime
) -> tuple[ErrorEvent | None, int]:
    header = lines[i]
    prefix = header.text[:start]
    reader = _Reader(lines, i + 1, _line_prefix(prefix, lines[i + 1].text if i + 1 < len(lines) else ""))
    exceptions: list[ExceptionInfo] = []
    while True:
        exc = _read_one(reader)
        if exc is None:
            log.info("log.traceback_skipped", source=source, offset=header.offset, reason="truncated")
            return None, max(reader.pos, i + 1)
        exceptions.append(exc)
        if not _next_in_chain(reader):
            break
    end = reader.pos
    block = "\n".join(line.text for line in lines[i:end])
    return (
        ErrorEvent(
            id=short_id(source, str(header.offset), block),
            source="log",
            platform="python",
            exceptions=tuple(exceptions),
            received_at=received_at,
            timestamp=_timestamp(prefix) or _timestamp(lines[i - 1].text if i else ""),
            raw={"path": source, "offset": header.offset, "text": block},
        ),
        end,
    )


def _read_one(reader: _Reader) -> ExceptionInfo | None:
    """Frames then the exception line; the reader stands after the header."""
    frames: list[Frame] = []
    while (text := reader.peek()) is not None:
        reader.pos += 1
        if match := _FRAME.match(text):
            filename = match["file"]
            frames.append(
                Frame(
                    function=match["func"] or "<module>",
                    filename=filename,
                    abs_path=filename,
                    lineno=int(match["line"]),
                    in_app=_in_app(filename),
                )
            )
        elif text.startswith("    ") and frames and frames[-1].context_line is None:
            if not _CARETS.match(text):
                frames[-1] = _with_line(frames[-1], text.strip())
        elif text.startswith(" ") or _REPEATED.match(text):
            continue  # carets, multi-line source, "[Previous line repeated ...]"
        elif exc := _EXC_LINE.match(text):
            qualified = exc["type"]
            module, _, name = qualified.rpartition(".")
            return ExceptionInfo(
                type=name, value=exc["msg"] or "", module=module or None, frames=tuple(frames)
            )
        else:
            return None
    return None


def _next_in_chain(reader: _Reader) -> bool:
    """Consume '<blank> marker <blank> Traceback...' if it follows; leave the reader alone if not."""
    pos = reader.pos
    seen_marker = False
    while (text := reader.peek()) is not None:
        stripped = text.strip()
        if not stripped:
            reader.pos += 1
        elif not seen_marker and stripped in CHAIN_MARKERS:
            seen_marker = True
            reader.pos += 1
        elif seen_marker and stripped == HEADER:
            reader.pos += 1
            return True
        else:
            break
    reader.pos = pos
    return False


def _with_line(frame: Frame, line: str) -> Frame:
    return replace(frame, context_line=line)


def _in_app(filename: str) -> bool:
    path = filename.replace("\\", "/")
    return not any(marker in path for marker in _LIBRARY_MARKERS)


def _timestamp(text: str) -> datetime | None:
    match = _TIMESTAMP.search(text)
    if not match:
        return None
    frac = (match["frac"] or "0")[:6].ljust(6, "0")
    tz = match["tz"] or "+00:00"
    tz = "+00:00" if tz == "Z" else tz
    try:
        return datetime.fromisoformat(f"{match['date']}T{match['time']}.{frac}{tz}").astimezone(UTC)
    except ValueError:
        return None
