"""What the routes share at run time: settings, dependencies, the inbox writer and the processing.

`build_runtime(settings)` chooses the processing (settings.ingest_processing): the Celery dispatcher
(production: each committed row's id goes to the ingest queue), or an in-process thread (the
default without AUTOFIX_BROKER_URL). Routes reach the runtime through `runtime_of(request)`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from fastapi import Request

from pipeline.inbox import InboxContext
from pipeline.settings import Settings
from pipeline.web.body import Limits
from pipeline.web.processing import CeleryDispatcher, InProcessProcessor, Processing
from pipeline.web.writer import InboxWriter
from pipeline.wiring import Deps

log = structlog.get_logger(__name__)

RECENT_S = 0.05  # a request within this long: the next one is probably near
JUST_S = 0.002  # a request within this long: the server is not idle yet


@dataclass
class Runtime:
    """What the routes share: settings, dependencies, the inbox writer and the processing."""

    settings: Settings
    deps: Deps
    writer: InboxWriter
    processing: Processing
    limits: Limits
    last_request_at: float = 0.0
    in_flight: int = 0  # requests being served; only the event loop changes it

    def busy(self) -> bool:
        return self.in_flight > 0

    def recently_busy(self) -> bool:
        return time.monotonic() - self.last_request_at < RECENT_S

    def just_served(self) -> bool:
        return time.monotonic() - self.last_request_at < JUST_S

    def backlog_pressed(self) -> bool:
        return self.writer.backlog() > self.settings.ingest_max_backlog // 2

    def start(self) -> None:
        self.deps.inbox_store.ping()  # migrates on first use; StoreUnavailable stops the start here
        self.writer.start()
        self.processing.start()
        log.info("server.started", processing=type(self.processing).__name__,
                 store=self.settings.resolved_store_url.split(":", 1)[0])

    def stop(self) -> None:
        self.writer.stop()  # commits what was accepted; new submits fail
        self.processing.stop()
        log.info("server.stopped")


def runtime_of(request: Request) -> Runtime:
    runtime = request.app.state.runtime
    assert isinstance(runtime, Runtime)
    return runtime


def build_runtime(settings: Settings, deps: Deps | None = None) -> Runtime:
    deps = deps or Deps(settings)
    processing: Processing
    if settings.processing_mode == "celery":
        processing = CeleryDispatcher(settings)
    else:
        ctx = InboxContext(
            store=deps.processing_store, inbox=deps.processing_store,
            in_app_packages=tuple(settings.in_app_packages), retention=settings.inbox_retention,
            sentry_api=lambda: deps.sentry_api,
        )
        processing = InProcessProcessor(ctx)
    writer = InboxWriter(deps.inbox_store, on_committed=processing.notify)
    limits = Limits(settings.ingest_max_body_bytes, settings.ingest_max_decompressed_bytes)
    runtime = Runtime(settings, deps, writer, processing, limits)
    if isinstance(processing, InProcessProcessor):
        processing.give_way(runtime.busy, runtime.recently_busy, runtime.just_served, runtime.backlog_pressed)
    return runtime
