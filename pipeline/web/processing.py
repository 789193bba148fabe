"""What happens to inbox rows after the 2xx: processed in this process, or sent to Celery.

- `InProcessProcessor` (the default, no AUTOFIX_BROKER_URL): a thread that reads pending rows from
  the inbox, oldest first, and runs the inbox stage on each. The database is the queue, so rows left
  pending by a crash or a restart are picked up on start; a commit only wakes the thread early. It
  gives way to requests (see the class), so accepting stays fast and a burst's backlog drains when
  the burst ends.
- `CeleryDispatcher` (AUTOFIX_BROKER_URL set): a thread that sends `process_inbox(row_id)` for each
  committed row. A broker that is down loses nothing: the rows stay pending and the sweep task
  (workers.tasks.sweep_inbox) enqueues them again.

Both are started and stopped by the app's lifespan; `notify` is what the inbox writer calls.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from pipeline.errors import TransientError
from pipeline.inbox import InboxContext, process_items
from pipeline.records import InboxStatus
from pipeline.settings import Settings

log = structlog.get_logger(__name__)


class Processing(Protocol):
    def notify(self, ids: list[int]) -> None: ...
    def start(self) -> None: ...
    def stop(self, timeout: float = 30.0) -> None: ...


class InProcessProcessor:
    """Processes pending rows in a thread, giving way to requests.

    Accepting and processing share one GIL. While requests are in flight, or one ended within the
    last 2 ms, the thread waits (polling every POLL_S) and processes only in the gaps between them,
    SMALL_CHUNK rows at a time; once the server is quiet it takes CHUNK rows per transaction. Under
    a burst the backlog therefore grows and drains when the burst ends; under a steady load the gaps
    are many and it keeps up. Without a gap for MAX_WAIT_S it takes a small chunk anyway, and past
    half the backlog bound it stops waiting for gaps, so that the bound (and its 429s) is the last
    resort, not the usual outcome of a long burst.
    """

    CHUNK = 100
    SMALL_CHUNK = 2
    POLL_S = 0.005
    MAX_WAIT_S = 1.0  # with no gap for this long (a slow client, a long burst), take a small bite anyway

    def __init__(self, ctx: InboxContext, *, batch: int = 200, idle_wait_s: float = 2.0) -> None:
        self._ctx = ctx
        self._batch = batch
        self._idle_wait_s = idle_wait_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy: Callable[[], bool] = lambda: False  # requests in flight right now?
        self._recent: Callable[[], bool] = lambda: False  # a request in the last 50 ms?
        self._just_served: Callable[[], bool] = lambda: False  # a request in the last 2 ms?
        self._pressed: Callable[[], bool] = lambda: False  # backlog over half its bound?
        self.processed = 0

    def give_way(self, busy: Callable[[], bool], recent: Callable[[], bool], just_served: Callable[[], bool],
                 pressed: Callable[[], bool]) -> None:
        self._busy, self._recent, self._just_served, self._pressed = busy, recent, just_served, pressed

    def notify(self, ids: list[int]) -> None:
        self._wake.set()

    def _should_wait(self, waiting_since: float) -> bool:
        """While requests are being served (or one ended a moment ago), wait: unless the backlog is
        pressing or the wait has lasted MAX_WAIT_S."""
        if not (self._busy() or self._just_served()):
            return False
        return not self._pressed() and time.monotonic() - waiting_since < self.MAX_WAIT_S

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inbox-processor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the rows in hand and end; rows still pending are processed on the next start."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            try:
                items = self._ctx.inbox.inbox_items(InboxStatus.PENDING, limit=self._batch)
            except TransientError as exc:
                log.warning("inbox.read_failed", error=str(exc))
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if not items:
                self._wake.wait(self._idle_wait_s)
                self._wake.clear()
                continue
            waiting_since = time.monotonic()
            while items and not self._stopping.is_set():
                if self._should_wait(waiting_since):
                    time.sleep(self.POLL_S)
                    continue
                waiting_since = time.monotonic()
                size = self.SMALL_CHUNK if self._recent() else self.CHUNK
                chunk, items = items[:size], items[size:]
                try:
                    process_items(self._ctx, chunk)
                except TransientError as exc:
                    log.warning("inbox.processing_deferred", inbox_id=chunk[0].id, error=str(exc))
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
                    break
                backoff = 1.0
                self.processed += len(chunk)
                time.sleep(0)  # let a request that arrived meanwhile have the GIL first


class CeleryDispatcher:
    COOLDOWN_S = 5.0  # after a failed send, rows are left to the sweep for this long

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._app: Any = None
        self._down_until = 0.0

    def notify(self, ids: list[int]) -> None:
        for item_id in ids:
            self._queue.put(item_id)

    def start(self) -> None:
        from workers.app import make_app  # the edge may know Celery; stages never do

        settings = self._settings
        self._app = make_app(lambda: settings)
        self._thread = threading.Thread(target=self._run, name="inbox-dispatcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while (item_id := self._queue.get()) is not None:
            if time.monotonic() < self._down_until:
                log.warning("inbox.dispatch_skipped", inbox_id=item_id, reason="broker down; the sweep enqueues it")
                continue
            try:
                # No result is awaited, and no retry: a row not sent stays pending for the sweep.
                self._app.send_task("workers.tasks.process_inbox", args=[item_id], retry=False, ignore_result=True)
            except Exception as exc:  # noqa: BLE001 - the row stays pending; the sweep sends it again
                self._down_until = time.monotonic() + self.COOLDOWN_S
                log.warning("inbox.dispatch_failed", inbox_id=item_id, error=str(exc).strip())
