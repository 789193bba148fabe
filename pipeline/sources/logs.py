"""Log files -> ErrorEvents (source "log"): every Python traceback, every JSON record that carries an
exception, and every error-level line that carries none.

Lines are read in order. A JSON object line is a record of its own (json_logs). A traceback
(tracebacks) takes the timestamp, level, logger and message of its log record: the prefix of its
header line when the record formats the traceback into its message, else the record line above it
(logger.exception writes the traceback bare under its message). An error-level line (log_records)
that no traceback follows is a message event; grouping names it by its mined template.

Event ids hash the stream (the file's folder and name without a rotation suffix: app.log.1 is
app.log), a hash of the file's first line (its generation: a file rotated away and a new one begun
differ), the byte offset and the text, so the same traceback read again, from the rotated copy or
after a restart, has the same id and is stored once.

`scan_log` also reads a file that is still being written: with ``final=False`` it stops before a
record that may not be complete (a partial line, a traceback whose exception line or chain has not
arrived, an error line that a traceback may still follow) and says how many bytes it consumed.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

import structlog

from pipeline.errors import InvalidInput
from pipeline.records import ErrorEvent, short_id, utcnow
from pipeline.sources.json_logs import JsonRecord, load_record, read_record
from pipeline.sources.log_records import Record, find_timestamp, parse_record
from pipeline.sources.tracebacks import Chain, Incomplete, Line, header_at, read_chain

log = structlog.get_logger(__name__)

_BINARY_SNIFF = 8192
_HEAD_BYTES = 512
_PENDING_LINES = 100  # a record line further above than this is not a traceback's message line
_ROTATION_SUFFIX = re.compile(
    r"(?:\.\d+|-\d{8}(?:\d{2,6})?|\.\d{4}-\d{2}-\d{2}(?:[_T.-]\d{2}(?:[-:]\d{2}){0,2})?"
    r"|\.old|\.gz|\.bz2|\.xz|\.zst)+$"
)


@dataclass(frozen=True)
class LogScan:
    events: list[ErrorEvent]
    consumed: int  # bytes of the data read to the end of a complete record; the rest comes again
    lines: int  # complete lines read


def parse_log_file(path: Path, *, received_at: datetime | None = None) -> list[ErrorEvent]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot be read: {exc.strerror or exc}") from exc
    return parse_log_text(data, str(path), received_at=received_at, stream=stream_name(path))


def parse_log_text(
    data: bytes, source: str, *, received_at: datetime | None = None, stream: str | None = None
) -> list[ErrorEvent]:
    """Every event in a whole log; a log without a traceback or error line gives an empty list."""
    return scan_log(data, source, received_at=received_at, stream=stream).events


def stream_name(path: Path | str) -> str:
    """The file a log stream is written to, whatever rotation renamed it to (app.log.1 -> app.log)."""
    pure = PurePosixPath(str(Path(path).resolve()) if isinstance(path, Path) else path.replace("\\", "/"))
    name = _ROTATION_SUFFIX.sub("", pure.name) or pure.name
    return str(pure.with_name(name))


def head_of(data: bytes) -> str:
    """The generation of a file: a hash of its first line (at most 512 bytes)."""
    first = data[:_HEAD_BYTES].split(b"\n", 1)[0]
    return hashlib.sha256(first).hexdigest()[:16]


def head_complete(data: bytes) -> bool:
    """Whether `data` (a file's start) holds its whole first line, so that head_of is final."""
    return b"\n" in data[:_HEAD_BYTES] or len(data) >= _HEAD_BYTES


@dataclass
class _Scan:
    source: str
    stream: str
    head: str
    received_at: datetime
    events: list[ErrorEvent] = field(default_factory=list)
    pending: tuple[int, Record] | None = None  # the last record line, a traceback may follow it


def scan_log(
    data: bytes,
    source: str,
    *,
    received_at: datetime | None = None,
    stream: str | None = None,
    head: str | None = None,
    base_offset: int = 0,
    final: bool = True,
    strict: bool = True,
    hold_incomplete: bool = False,
) -> LogScan:
    """The events in `data`, which starts at byte `base_offset` of the file (whose first-line hash
    is `head`). With `final`, everything is read; without, see the module docstring; with both
    `final` and `hold_incomplete` (a follower whose file has been quiet a while), everything but a
    traceback still missing its exception line. `strict` refuses NUL bytes near the start (a binary
    file); a follower drops them instead (a file truncated under a writer that does not append is
    padded with them)."""
    if strict and b"\x00" in data[:_BINARY_SNIFF]:
        raise InvalidInput(source, "holds NUL bytes: binary, not a log file")
    end = len(data) if final else data.rfind(b"\n") + 1
    lines = _split(data[:end], base_offset)
    scan = _Scan(source, stream or source, head or head_of(data), received_at or utcnow())
    hold = _scan_lines(scan, lines, final, hold_incomplete)
    consumed = end if hold is None else lines[hold].offset - base_offset
    read = len(lines) if hold is None else hold
    log.debug("log.scanned", source=source, events=len(scan.events), lines=read, final=final)
    return LogScan(scan.events, consumed, read)


def _split(data: bytes, base_offset: int) -> list[Line]:
    lines, offset = [], base_offset
    for raw_line in data.splitlines(keepends=True):
        # A stray non-UTF-8 byte should not cost the whole log; it becomes U+FFFD.
        text = raw_line.decode("utf-8", "replace").rstrip("\r\n")
        lines.append(Line(text.replace("\x00", "") if "\x00" in text else text, offset))
        offset += len(raw_line)
    return lines


def _scan_lines(scan: _Scan, lines: list[Line], final: bool, hold_incomplete: bool = False) -> int | None:
    """Read `lines` into scan.events; the index to hold back from when not final, else None."""
    i = 0
    while i < len(lines):
        text = lines[i].text
        if text.startswith("{") and (obj := load_record(text)) is not None:
            _flush_pending(scan, lines)
            _add(scan, _json_event(scan, lines[i], read_record(obj)))
            i += 1
            continue
        start = header_at(text)
        if start is not None:
            try:
                chain = read_chain(lines, i, start)
            except Incomplete:
                if not final or hold_incomplete:
                    return _hold_from(scan, lines, i, text[:start])
                chain = None
            if chain is None:
                log.info("log.traceback_skipped", source=scan.source, offset=lines[i].offset,
                         reason="truncated or malformed")
                _flush_pending(scan, lines)
                i += 1
                continue
            if not final and all(not line.text.strip() for line in lines[chain.end :]):
                return _hold_from(scan, lines, i, chain.prefix)  # a chained exception may still follow
            record = _record_of(scan, chain.prefix)
            if scan.pending is not None and record is not scan.pending[1]:
                _flush_pending(scan, lines)
            scan.events.append(_traceback_event(scan, lines, chain, record))
            scan.pending = None
            i = chain.end
            continue
        if (record := parse_record(text)) is not None:
            _flush_pending(scan, lines)
            scan.pending = (i, record)
        elif scan.pending is not None and i - scan.pending[0] > _PENDING_LINES:
            _flush_pending(scan, lines)
        i += 1
    if scan.pending is not None and not final:
        return scan.pending[0]  # whether a traceback follows it is not known yet
    _flush_pending(scan, lines)
    return None


def _hold_from(scan: _Scan, lines: list[Line], i: int, prefix: str) -> int:
    """Where to read again from: the traceback's header, or the record line above it that it uses
    (a record line it does not use is done with: an error one becomes its message event now)."""
    if scan.pending is not None and scan.pending[0] < i and _record_of(scan, prefix) is scan.pending[1]:
        return scan.pending[0]
    _flush_pending(scan, lines)
    return i


def _flush_pending(scan: _Scan, lines: list[Line]) -> None:
    """The pending record had no traceback: an error-level one is a message event."""
    if scan.pending is not None:
        index, record = scan.pending
        scan.pending = None
        if record.is_error and record.message:
            scan.events.append(_message_event(scan, lines[index], record))


def _add(scan: _Scan, event: ErrorEvent | None) -> None:
    if event is not None:
        scan.events.append(event)


def _event_id(scan: _Scan, offset: int, text: str) -> str:
    return short_id(scan.stream, scan.head, str(offset), text)


def _traceback_event(scan: _Scan, lines: list[Line], chain: Chain, record: Record | None) -> ErrorEvent:
    block = "\n".join(line.text for line in lines[chain.start : chain.end])
    header = lines[chain.start]
    raw: dict[str, object] = {"path": scan.source, "offset": header.offset, "text": block}
    if scan.pending is not None and record is scan.pending[1]:
        raw["record"] = lines[scan.pending[0]].text
    return ErrorEvent(
        id=_event_id(scan, header.offset, block),
        source="log",
        platform="python",
        exceptions=chain.exceptions,
        received_at=scan.received_at,
        timestamp=(record.timestamp if record else None) or find_timestamp(chain.prefix),
        message=(record.message.rstrip(": ") or None) if record else None,
        level=record.level if record else None,
        logger=record.logger if record else None,
        raw=raw,
    )


def _record_of(scan: _Scan, prefix: str) -> Record | None:
    """The log record a traceback belongs to: its header line's, else the record line above it."""
    own = parse_record(prefix) if prefix.strip() else None
    if own is not None and (own.level or own.message):
        return own
    if scan.pending is not None:
        return scan.pending[1]
    return own


def _message_event(scan: _Scan, line: Line, record: Record) -> ErrorEvent:
    return ErrorEvent(
        id=_event_id(scan, line.offset, line.text),
        source="log",
        platform="python",
        exceptions=(),
        received_at=scan.received_at,
        timestamp=record.timestamp,
        message=record.message,
        level=record.level,
        logger=record.logger,
        raw={"path": scan.source, "offset": line.offset, "text": line.text},
    )


def _json_event(scan: _Scan, line: Line, parsed: JsonRecord) -> ErrorEvent | None:
    record = parsed.record
    if not parsed.exceptions and not (record.is_error and record.message):
        return None
    return ErrorEvent(
        id=_event_id(scan, line.offset, line.text),
        source="log",
        platform="python",
        exceptions=parsed.exceptions,
        received_at=scan.received_at,
        timestamp=record.timestamp,
        message=record.message or None,
        level=record.level,
        logger=record.logger,
        raw={"path": scan.source, "offset": line.offset, "text": line.text},
    )
