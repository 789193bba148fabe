"""Source lines remembered from events that carried them, for frames that arrive without one.

The fingerprint counts each frame's source line, but not every source sends it: structlog's
dict_tracebacks (its recommended JSON setup) logs each frame's file, line number and function only.
Every event that carries source lines teaches which line sits at (module short name, function,
line number); a frame without one gets that line when exactly one line was ever seen there. Two
releases with different code at the same place make the place ambiguous, and then nothing is
filled in: such a frame keeps no line, and its event groups only with others like it.

The memory lives in AUTOFIX_HOME/source-lines.json; `session()` locks, reloads and saves it like
the template miner's state. `autofix regroup` first learns from every stored event, so what it
fills in does not depend on the order events arrived in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from pipeline.file_lock import exclusive
from pipeline.grouping import code, frame_key
from pipeline.records import ErrorEvent, ExceptionInfo, Frame

STATE_FILE = "source-lines.json"
_AMBIGUOUS = ""  # stored for a place where two different lines were seen


class SourceLines:
    """Learns and fills in source lines; state in `home`, or in memory when `home` is None."""

    def __init__(self, home: Path | None = None) -> None:
        self._path = home / STATE_FILE if home is not None else None
        self._lines: dict[str, str] = self._load()
        self._dirty = False

    def learn(self, event: ErrorEvent) -> None:
        for exc in event.exceptions:
            for frame in exc.frames:
                line = code(frame.context_line)
                if not line or frame.lineno is None:
                    continue
                key = frame_key(frame)
                known = self._lines.get(key)
                if known is None:
                    self._lines[key], self._dirty = line, True
                elif known not in (line, _AMBIGUOUS):
                    self._lines[key], self._dirty = _AMBIGUOUS, True

    def fill(self, event: ErrorEvent) -> ErrorEvent:
        """The event with the lines of its line-less frames filled in where they are known."""
        if all(f.context_line or f.lineno is None for exc in event.exceptions for f in exc.frames):
            return event
        return replace(event, exceptions=tuple(self._fill_stack(exc) for exc in event.exceptions))

    def _fill_stack(self, exc: ExceptionInfo) -> ExceptionInfo:
        return replace(exc, frames=tuple(self._fill_frame(f) for f in exc.frames))

    def _fill_frame(self, frame: Frame) -> Frame:
        if frame.context_line or frame.lineno is None:
            return frame
        line = self._lines.get(frame_key(frame))
        return replace(frame, context_line=line) if line else frame

    @contextmanager
    def session(self) -> Iterator[SourceLines]:
        if self._path is None:
            yield self
            return
        with exclusive(self._path.with_suffix(".lock")):
            for key, line in self._load().items():  # what another process learned meanwhile
                mine = self._lines.setdefault(key, line)
                if mine != line:
                    self._lines[key], self._dirty = _AMBIGUOUS, True
            yield self
            self.save()

    def save(self) -> None:
        if self._path is None or not self._dirty:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._lines, sort_keys=True))
        os.replace(tmp, self._path)
        self._dirty = False

    def _load(self) -> dict[str, str]:
        if self._path is None:
            return {}
        try:
            stored = json.loads(self._path.read_text())
        except FileNotFoundError:
            return {}
        return {str(k): str(v) for k, v in stored.items()}
