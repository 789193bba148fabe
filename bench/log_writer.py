"""Write a realistic Python log with the logging module: info lines, error lines, and real tracebacks
(three crash sites, one of them a chained exception), rotating it on the way if asked.

    python bench/log_writer.py PATH LINES [--plan 30000:rename,50000:pause,60000:copytruncate]
                               [--status STATUS.json] [--every 25]

Every record carries its sequence number ("job 000123 failed"), so a reader can check that each
traceback and error line was counted exactly once. The plan's steps run when the log has grown
past their line count: `rename` rotates as RotatingFileHandler does (app.log -> app.log.1, then a new
app.log), `copytruncate` as logrotate's copytruncate does (app.log.1 -> app.log.2, app.log copied to
app.log.1, app.log truncated in place while the handler keeps appending), `pause` waits until the
file STATUS.resume-<n> exists (a test stops and restarts its follower meanwhile). The status file
says how far the writer got: lines, tracebacks, error lines, the sequence numbers of both, done.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any


class OrderError(Exception):
    """An order that cannot be processed; raised from the error that made it so."""


def price(order: dict[str, Any]) -> Any:  # the crash sites of the log: typed as loosely as app code
    return order["total"] / order["units"]


def customer_name(order: dict[str, Any]) -> Any:
    return order["customer"]["name"]


def quantity(order: dict[str, Any]) -> int:
    try:
        return int(order["qty"])
    except ValueError as exc:
        raise OrderError(f"order {order['id']} has no usable quantity") from exc


CRASHES = (
    (price, {"total": 10.0, "units": 0}),
    (customer_name, {"customer": None}),
    (quantity, {"id": "o-1", "qty": "two"}),
)


class Writer:
    def __init__(self, path: Path, status: Path | None) -> None:
        self.path, self.status_path = path, status
        self.lines = self.tracebacks = self.errors = self.pauses = 0
        self.traceback_ids: list[int] = []
        self.error_ids: list[int] = []
        self.log = logging.getLogger("shop.jobs")
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        self.handler = self._open()

    def _open(self) -> logging.Handler:
        handler = _CountingHandler(self.path, mode="a", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
        self.log.addHandler(handler)
        return handler

    def record(self, seq: int, every: int) -> None:
        if seq % every == 0:
            crash, payload = CRASHES[(seq // every) % len(CRASHES)]
            try:
                crash(dict(payload))
            except Exception:  # noqa: BLE001 - the point is to log it
                self.log.exception("job %06d failed", seq)
            self.tracebacks += 1
            self.traceback_ids.append(seq)
        elif seq % (every * 8 + 1) == 0:
            self.log.error("job %06d gave up after %d retries", seq, seq % 7 + 1)
            self.errors += 1
            self.error_ids.append(seq)
        else:
            self.log.info("job %06d done in %d ms", seq, seq % 900)
        self.lines = _CountingHandler.lines

    def rotate_rename(self) -> None:
        self.log.removeHandler(self.handler)
        self.handler.close()
        os.replace(self.path, self.path.with_name(self.path.name + ".1"))
        self.handler = self._open()

    def rotate_copytruncate(self) -> None:
        self.handler.flush()
        one, two = self.path.with_name(self.path.name + ".1"), self.path.with_name(self.path.name + ".2")
        if one.exists():
            os.replace(one, two)
        shutil.copyfile(self.path, one)
        os.truncate(self.path, 0)

    def pause(self) -> None:
        self.pauses += 1
        self.write_status(done=False)
        assert self.status_path is not None
        resume = self.status_path.with_name(f"{self.status_path.name}.resume-{self.pauses}")
        while not resume.exists():
            time.sleep(0.05)

    def write_status(self, done: bool) -> None:
        if self.status_path is None:
            return
        status = {"lines": self.lines, "tracebacks": self.tracebacks, "errors": self.errors,
                  "traceback_ids": self.traceback_ids, "error_ids": self.error_ids, "done": done,
                  "pauses": self.pauses}
        tmp = self.status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(status))
        os.replace(tmp, self.status_path)


class _CountingHandler(logging.FileHandler):
    """A FileHandler that counts the lines it writes (a traceback is several), one write per record."""

    lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        _CountingHandler.lines += text.count("\n") + 1
        if self.stream is None:
            self.stream = self._open()
        self.stream.write(text + self.terminator)
        self.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("lines", type=int)
    parser.add_argument("--plan", default="")
    parser.add_argument("--status", type=Path)
    parser.add_argument("--every", type=int, default=25, help="one traceback per this many records")
    args = parser.parse_args()
    plan = sorted((int(at), step) for at, step in (s.split(":") for s in args.plan.split(",") if s))
    writer = Writer(args.path, args.status)
    seq = 0
    while writer.lines < args.lines:
        seq += 1
        writer.record(seq, args.every)
        while plan and writer.lines >= plan[0][0]:
            getattr(writer, {"rename": "rotate_rename", "copytruncate": "rotate_copytruncate",
                             "pause": "pause"}[plan.pop(0)[1]])()
        if seq % 1000 == 0:
            writer.write_status(done=False)
    writer.handler.close()
    writer.write_status(done=True)


if __name__ == "__main__":
    main()
