"""Follow a growing log file (`autofix ingest --follow`): read what is appended as it is written,
survive rotation, and resume after a restart without reading a record twice or losing one.

The read position is a LogCursor in the store: the offset consumed so far in one generation of the
file, named by device, inode and a hash of its first line. Only complete records are consumed
(logs.scan_log with final=False); a record still being written is read again on the next poll,
and one left incomplete for `idle_flush_s` is taken as it is.

Rotation, while running or while stopped:

- rename (logrotate's default, RotatingFileHandler): the path now names another file. The old one
  is read to its end (while it keeps growing, for `rotate_grace_s`: a writer reopens late), found
  again by its inode after a restart, then the new file from its start.
- copytruncate: the same file shrinks below the offset, or its first line changes. What lay between
  the offset and the truncation is in the copy (a sibling with the old first line), read from the
  offset, then the file from its start.

Whatever is read twice on these paths (after a crash between storing events and saving the cursor,
or from a rotated copy) carries the same event ids and is dropped by the store, so every record is
counted once.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import structlog

from pipeline.ports import Store
from pipeline.records import ErrorEvent, LogCursor
from pipeline.sources.logs import head_complete, head_of, scan_log, stream_name

log = structlog.get_logger(__name__)

Sink = Callable[[list[ErrorEvent]], None]
_CHUNK = 1 << 20
_COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".zip")


@dataclass
class FollowReport:
    events: int = 0
    tracebacks: int = 0
    bytes: int = 0
    rotations: int = 0
    files: list[str] = field(default_factory=list)  # rotated files read to their end


@dataclass
class _Open:
    file: BinaryIO
    device: int
    inode: int
    offset: int
    head: str | None  # None until the file's first line is complete
    grew_at: float  # monotonic time of the last read that found new bytes


class Follower:
    """Tails one log file into `sink`, keeping its cursor in `store`."""

    def __init__(self, path: Path, store: Store, sink: Sink, *, poll_s: float = 0.25,
                 idle_flush_s: float = 2.0, rotate_grace_s: float = 1.0) -> None:
        self.path = path.absolute()
        self.key = str(self.path)
        self.stream = stream_name(self.path)
        self.store, self.sink = store, sink
        self.poll_s, self.idle_flush_s, self.rotate_grace_s = poll_s, idle_flush_s, rotate_grace_s
        self.report = FollowReport()
        self._current: _Open | None = None
        self._moved_at: float | None = None  # when the path was first seen naming another file

    def run(self, stop: threading.Event) -> FollowReport:
        """Follow until `stop` is set; the cursor is saved after every batch and when stopping."""
        log.info("follow.started", path=self.key)
        try:
            while not stop.is_set():
                if not self.step():
                    stop.wait(self.poll_s)
        finally:
            if self._current is not None:
                self._save(self._current)
                self._current.file.close()
            log.info("follow.stopped", path=self.key, events=self.report.events, rotations=self.report.rotations)
        return self.report

    def step(self) -> bool:
        """One poll: True when it read something (call again at once), False when idle."""
        if self._current is None:
            self._current = self._resume()
            return self._current is not None
        current = self._current
        if self._read(current, final=False):
            return True
        return self._check(current)

    # --- reading -----------------------------------------------------------------------------------

    def _read(self, current: _Open, final: bool, idle: bool = False) -> bool:
        """Scan from the cursor to the end of the file; True when the cursor moved. `idle`: the
        file has been quiet, so take what is complete (a traceback without its exception line is
        not); `final`: the file will not grow again, so take everything."""
        if current.head is None:
            start = os.pread(current.file.fileno(), 512, 0)
            if not head_complete(start):
                return False  # event ids hash the first line: wait until it is whole
            current.head = head_of(start)
        moved = False
        while True:
            data = os.pread(current.file.fileno(), _CHUNK, current.offset)
            if not data:
                return moved
            scan = scan_log(data, self.key, stream=self.stream, head=current.head, base_offset=current.offset,
                            final=(final or idle) and len(data) < _CHUNK, strict=False, hold_incomplete=idle)
            if scan.consumed == 0:
                if len(data) >= _CHUNK:  # one record longer than a chunk: take it as it is
                    scan = scan_log(data, self.key, stream=self.stream, head=current.head,
                                    base_offset=current.offset, final=True, strict=False)
                else:
                    return moved
            self._deliver(scan.events)
            current.offset += scan.consumed
            current.grew_at = time.monotonic()
            self.report.bytes += scan.consumed
            self._save(current)
            moved = True

    def _deliver(self, events: list[ErrorEvent]) -> None:
        if events:
            self.sink(events)
            self.report.events += len(events)
            self.report.tracebacks += sum(1 for e in events if e.exceptions)

    def _drain(self, file: BinaryIO, offset: int, head: str | None, label: str) -> None:
        """Read a rotated file from `offset` to its end, taking its last record as complete."""
        if head is None:
            head = head_of(os.pread(file.fileno(), 512, 0))
        rotated = _Open(file, 0, 0, offset, head, time.monotonic())
        while self._read_rotated(rotated):
            pass
        self.report.files.append(label)

    def _read_rotated(self, rotated: _Open) -> bool:
        data = os.pread(rotated.file.fileno(), _CHUNK, rotated.offset)
        if not data:
            return False
        scan = scan_log(data, self.key, stream=self.stream, head=rotated.head, base_offset=rotated.offset,
                        final=len(data) < _CHUNK, strict=False)
        if scan.consumed == 0:
            scan = scan_log(data, self.key, stream=self.stream, head=rotated.head,
                            base_offset=rotated.offset, final=True, strict=False)
        self._deliver(scan.events)
        rotated.offset += scan.consumed
        self.report.bytes += scan.consumed
        return scan.consumed > 0

    # --- rotation ----------------------------------------------------------------------------------

    def _check(self, current: _Open) -> bool:
        """At the end of the file: has it been rotated? Or is an incomplete record due for a flush?"""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None  # renamed away, the new one not created yet
        if st is None or (st.st_dev, st.st_ino) != (current.device, current.inode):
            return self._renamed(current)
        self._moved_at = None
        if st.st_size < current.offset or self._head_changed(current):
            self._truncated(current)
            return True
        if st.st_size > current.offset and time.monotonic() - current.grew_at >= self.idle_flush_s:
            return self._read(current, final=False, idle=True)  # take what a pause has left complete
        return False

    def _head_changed(self, current: _Open) -> bool:
        if current.head is None or current.offset == 0:
            return False
        start = os.pread(current.file.fileno(), 512, 0)
        return head_complete(start) and head_of(start) != current.head

    def _renamed(self, current: _Open) -> bool:
        now = time.monotonic()
        self._moved_at = self._moved_at or now
        if now - max(self._moved_at, current.grew_at) < self.rotate_grace_s or not self.path.exists():
            return False  # the writer may still append to the old file; the new one may not exist yet
        self._read(current, final=True)
        log.info("follow.rotated", path=self.key, how="rename", offset=current.offset)
        self.report.rotations += 1
        self.report.files.append(f"{self.key} (inode {current.inode})")
        current.file.close()
        self._current = self._open_fresh()
        self._moved_at = None
        return True

    def _truncated(self, current: _Open) -> None:
        """Copytruncate: finish the generation from its copy, then start the file again from 0."""
        copy = self._sibling(lambda p: _head_of_path(p) == current.head and p.stat().st_size >= current.offset)
        if copy is not None:
            with open(copy, "rb") as file:
                self._drain(file, current.offset, current.head, str(copy))
        else:
            log.warning("follow.copy_not_found", path=self.key, offset=current.offset)
        log.info("follow.rotated", path=self.key, how="copytruncate", offset=current.offset)
        self.report.rotations += 1
        current.offset, current.head, current.grew_at = 0, None, time.monotonic()
        self._save(current)

    # --- starting --------------------------------------------------------------------------------

    def _resume(self) -> _Open | None:
        """Open the file where the stored cursor says, catching up on rotations missed meanwhile."""
        if not self.path.exists():
            return None
        cursor = self.store.get_log_cursor(self.key)
        fresh = self._open_fresh()
        if fresh is None or cursor is None or cursor.offset == 0:
            return fresh
        st = os.fstat(fresh.file.fileno())
        start = os.pread(fresh.file.fileno(), 512, 0)
        same_file = (st.st_dev, st.st_ino) == (cursor.device, cursor.inode)
        if same_file and st.st_size >= cursor.offset and head_of(start) == cursor.head:
            fresh.offset, fresh.head = cursor.offset, cursor.head
            log.info("follow.resumed", path=self.key, offset=cursor.offset)
            return fresh
        self.report.rotations += 1
        if same_file:  # truncated in place while we were stopped
            copy = self._sibling(lambda p: _head_of_path(p) == cursor.head)
        else:  # renamed while we were stopped: the old generation still has its inode
            copy = self._sibling(lambda p: (p.stat().st_dev, p.stat().st_ino) == (cursor.device, cursor.inode))
        if copy is None:
            log.warning("follow.rotated_file_missing", path=self.key, offset=cursor.offset)
        else:
            with open(copy, "rb") as file:
                self._drain(file, cursor.offset, cursor.head, str(copy))
            self._catch_up(copy)
        return fresh

    def _catch_up(self, old: Path) -> None:
        """Generations rotated out after the one we were reading, oldest first, read whole."""
        newer = sorted((p for p in self._siblings() if p != old and p.stat().st_mtime >= old.stat().st_mtime),
                       key=lambda p: p.stat().st_mtime)
        for path in newer:
            with open(path, "rb") as file:
                self._drain(file, 0, None, str(path))

    def _open_fresh(self) -> _Open | None:
        try:
            file = open(self.path, "rb")  # held open across polls: a renamed file is still read
        except FileNotFoundError:
            return None
        st = os.fstat(file.fileno())
        return _Open(file, st.st_dev, st.st_ino, 0, None, time.monotonic())

    def _siblings(self) -> list[Path]:
        name = self.path.name
        return sorted(p for p in self.path.parent.iterdir()
                      if p.name.startswith(name) and p.name != name and not p.name.endswith(_COMPRESSED)
                      and p.is_file())

    def _sibling(self, wanted: Callable[[Path], bool]) -> Path | None:
        found = [p for p in self._siblings() if _safe(wanted, p)]
        return max(found, key=lambda p: p.stat().st_mtime) if found else None

    def _save(self, current: _Open) -> None:
        self.store.save_log_cursor(LogCursor(self.key, current.offset, current.head or "",
                                             current.device, current.inode))


def _head_of_path(path: Path) -> str:
    with open(path, "rb") as file:
        return head_of(file.read(512))


def _safe(wanted: Callable[[Path], bool], path: Path) -> bool:
    try:
        return wanted(path)
    except OSError:
        return False  # rotated away again while we looked
