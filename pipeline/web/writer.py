"""The inbox writer: one thread that inserts accepted payloads in batches, one commit per batch.

Requests hand their item to `submit` and await the returned future. Submits are gathered on the
event loop and handed to the thread once per loop iteration (one queue put and one thread wake-up
for all the requests the loop ran in that iteration, not one each: the wake-ups, and the GIL
hand-overs they cause, cost more than the inserts). The thread takes everything queued (up to
`max_batch`), inserts it in one transaction and resolves the futures with the new row ids (None: a
replayed Request-ID), all of a batch in one callback on the event loop, so a batch wakes the loop
once. Nothing is answered before its row is committed, and a commit's fsync is paid once per batch
instead of once per request: under load the batch grows by itself.
SQLite allows one writer at a time anyway; on PostgreSQL the batch saves round trips and commits.

The writer also keeps the backlog count (pending rows) the endpoints compare with their bound,
refreshed from the database at most every `backlog_refresh_s`, in this thread, off the event loop.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from pipeline.errors import StoreUnavailable, TransientError
from pipeline.ports import Inbox
from pipeline.records import InboxItem

log = structlog.get_logger(__name__)

Committed = Callable[[list[int]], None]


@dataclass
class _Job:
    item: InboxItem
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[int | None]


def _settle(outcomes: list[tuple[asyncio.Future[int | None], int | None | BaseException]]) -> None:
    """Runs on the event loop: hand each waiting request its row id (or the error)."""
    for future, outcome in outcomes:
        if future.done():  # the request was cancelled (client gone); its row is stored all the same
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


_STOP = object()
_REFRESH = object()


class InboxWriter:
    def __init__(
        self, inbox: Inbox, *, on_committed: Committed = lambda ids: None, max_batch: int = 512,
        backlog_refresh_s: float = 0.5, linger_s: float = 0.001,
    ) -> None:
        self._inbox = inbox
        self._on_committed = on_committed
        self._max_batch = max_batch
        self._refresh_s = backlog_refresh_s
        self._linger_s = linger_s
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._backlog = 0
        self._refreshed_at = 0.0
        self._refresh_queued = False
        # Each counter has one writer (submits: the event loop; resolved: this thread), so neither
        # loses an update; their difference is what is queued, not yet committed.
        self._submitted = 0
        self._resolved = 0
        self._last_submit = 0.0
        self._gathered: list[_Job] = []  # submits of this loop iteration, not yet handed over
        self._flush_scheduled = False

    # --- the request side ------------------------------------------------------------------------

    def submit(self, item: InboxItem) -> asyncio.Future[int | None]:
        """Queue the item for the next batch; call from the event loop and await the result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int | None] = loop.create_future()
        if self._closed:
            future.set_exception(StoreUnavailable("the server is shutting down"))
            return future
        self._submitted += 1
        self._last_submit = time.monotonic()
        self._gathered.append(_Job(item, loop, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._hand_over)
        return future

    def _hand_over(self) -> None:
        """On the event loop, after the requests of this iteration: one put for all their items."""
        self._flush_scheduled = False
        jobs, self._gathered = self._gathered, []
        if jobs:
            self._queue.put(jobs)

    def backlog(self) -> int:
        """Pending rows as last counted, plus those queued here since; a refresh is requested when
        the count is stale (it runs in the writer thread)."""
        if time.monotonic() - self._refreshed_at > self._refresh_s and not self._refresh_queued:
            self._refresh_queued = True
            self._queue.put(_REFRESH)
        return self._backlog + self._submitted - self._resolved

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit everything submitted so far, then end the thread; later submits fail at once."""
        self._closed = True
        if self._gathered:  # called from the loop's thread, after the last request: hand them over
            self._hand_over()
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)

    # --- the writer thread -----------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Job] = []
            refresh = False
            message = self._queue.get()
            lingered = False
            while True:
                if message is _STOP:
                    stopping = True
                elif message is _REFRESH:
                    refresh = True
                else:
                    assert isinstance(message, list)
                    batch.extend(message)
                if len(batch) >= self._max_batch:
                    break
                try:
                    message = self._queue.get_nowait()
                except queue.Empty:
                    if lingered or stopping or not batch or time.monotonic() - self._last_submit > self._linger_s:
                        break
                    # Requests are arriving (one was submitted a moment ago): waiting as long for the
                    # next lets it share this commit and its fsync.
                    lingered = True
                    try:
                        message = self._queue.get(timeout=self._linger_s)
                    except queue.Empty:
                        break
            if batch:
                self._write(batch)
            if refresh:
                self._refresh()

    def _write(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            ids = self._inbox.add_to_inbox([job.item for job in batch])
        except TransientError as exc:
            self._resolve(batch, exc)
            return
        except Exception as exc:  # noqa: BLE001 - one bad item must not refuse the whole batch
            if len(batch) == 1:
                log.exception("inbox.insert_failed")
                self._resolve(batch, exc)
                return
            for job in batch:
                self._write([job])
            return
        self._backlog += sum(1 for new_id in ids if new_id is not None)
        self._resolved += len(batch)
        self._hand_back(batch, list(ids))
        log.debug("inbox.batch_committed", items=len(batch), ms=round((time.perf_counter() - started) * 1000, 2))
        committed = [new_id for new_id in ids if new_id is not None]
        if committed:
            self._on_committed(committed)

    def _resolve(self, batch: list[_Job], exc: BaseException) -> None:
        self._resolved += len(batch)
        self._hand_back(batch, [exc] * len(batch))

    @staticmethod
    def _hand_back(batch: list[_Job], outcomes: list[int | None | BaseException]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[int | None], int | None | BaseException]]] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job.future, outcome))
        for loop, settled in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle, settled)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    def _refresh(self) -> None:
        self._refresh_queued = False
        try:
            self._backlog = self._inbox.inbox_backlog()
        except TransientError as exc:
            log.warning("inbox.backlog_unknown", error=str(exc))
        self._refreshed_at = time.monotonic()
