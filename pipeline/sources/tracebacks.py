"""Reading Python's printed tracebacks ("Traceback (most recent call last):" ...) into exception chains.

A traceback may sit behind a log prefix ("2024-05-01 12:00:00,123 ERROR [web] "). The prefix is
taken from the header line and generalised (digit runs match any digits, so per-line timestamps
still match); it is stripped from every following line, or, when the next line does not carry it
(logger.exception writes the traceback bare after its message line), the traceback is read bare.
Chains ("direct cause" / "during handling") join one chain, oldest cause first as Sentry orders
them. Exception groups are skipped: their sub-tracebacks are drawn inside "|" bars that no simple
reader should guess at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from pipeline.records import ExceptionInfo, Frame
from pipeline.sources.in_app import guess_in_app

HEADER = "Traceback (most recent call last):"
CHAIN_MARKERS = (
    "The above exception was the direct cause of the following exception:",
    "During handling of the above exception, another exception occurred:",
)
_FRAME = re.compile(r'^  File "(?P<file>[^"]+)", line (?P<line>\d+)(?:, in (?P<func>.+))?$')
_EXC_LINE = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:\.<locals>\.[\w.]+)?)(?::(?: (?P<msg>.*))?)?$")
_CARETS = re.compile(r"^\s*[~^]+[\s~^]*$")
_REPEATED = re.compile(r"^\s*\[Previous line repeated \d+ more times?\]$")


@dataclass
class Line:
    text: str
    offset: int  # byte offset of the line in its file


@dataclass(frozen=True)
class Chain:
    """One traceback read from `lines[start:end]`; `prefix` is what its header line carried before it."""

    exceptions: tuple[ExceptionInfo, ...]
    start: int
    end: int
    prefix: str


class Incomplete(Exception):
    """The lines ran out before the traceback's exception line: more may still be written."""


@dataclass
class _Reader:
    """Walks the lines of one traceback, stripping its log prefix."""

    lines: list[Line]
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

    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.lines)


def header_at(text: str) -> int | None:
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


def read_chain(lines: list[Line], i: int, start: int) -> Chain | None:
    """The traceback whose header is at `lines[i][start:]`; None when it is malformed (skipped).

    Raises Incomplete when the lines end before the chain's last exception line.
    """
    prefix = lines[i].text[:start]
    following = lines[i + 1].text if i + 1 < len(lines) else ""
    reader = _Reader(lines, i + 1, _line_prefix(prefix, following))
    exceptions: list[ExceptionInfo] = []
    while True:
        exc = _read_one(reader)
        if exc is None:
            if reader.at_end:
                raise Incomplete
            return None
        exceptions.append(exc)
        if not _next_in_chain(reader):
            break
    return Chain(tuple(exceptions), i, reader.pos, prefix)


def parse_traceback_text(text: str) -> tuple[ExceptionInfo, ...] | None:
    """The chain in a traceback printed as one string (a JSON log's "exception" field)."""
    lines = [Line(t, 0) for t in text.splitlines()]
    for i, line in enumerate(lines):
        start = header_at(line.text)
        if start is not None:
            try:
                chain = read_chain(lines, i, start)
            except Incomplete:
                return None
            return chain.exceptions if chain is not None else None
    return None


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
                    in_app=guess_in_app(filename),
                )
            )
        elif text.startswith("    ") and frames and frames[-1].context_line is None:
            if not _CARETS.match(text):
                frames[-1] = replace(frames[-1], context_line=text.strip())
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
    if seen_marker and reader.at_end:
        raise Incomplete  # the marker came; the next traceback is still being written
    reader.pos = pos
    return False
