"""The app factory: `create_app(settings)` builds the one ASGI app `autofix serve` runs.

Shape, for whoever adds the review UI, the JSON API or /metrics:

    app = create_app(settings)            # or create_app(settings, deps=Deps(settings))
    app.state.runtime                     # Runtime: settings, deps (store, sandbox...), the inbox writer
    runtime_of(request)                   # the same, from inside a route (pipeline/web/runtime.py)
    app.include_router(review.router)     # each feature is a router module of its own

The lifespan starts the inbox writer and the processing (in-process thread, or the Celery
dispatcher when AUTOFIX_BROKER_URL is set) and, on shutdown, after uvicorn has finished the requests
in flight, commits what was accepted and stops them. Every request is logged once
(`request.served`), with secrets in paths redacted and no query strings.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI

from pipeline.errors import InvalidInput
from pipeline.settings import Settings
from pipeline.web import health, ingest, metrics, review_pages, webhooks
from pipeline.web.refusal import Refused, on_invalid_input, on_refused
from pipeline.web.runtime import Runtime, build_runtime
from pipeline.wiring import Deps

log = structlog.get_logger(__name__)

def create_app(settings: Settings, *, deps: Deps | None = None) -> FastAPI:
    runtime = build_runtime(settings, deps)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(title="autofix", lifespan=lifespan, openapi_url="/openapi.json", docs_url=None,
                  redoc_url=None)
    app.state.runtime = runtime
    app.add_exception_handler(Refused, on_refused)
    app.add_exception_handler(InvalidInput, on_invalid_input)
    app.include_router(ingest.router)  # first: the routes hit most often are matched first
    app.include_router(webhooks.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    review_pages.install(app, runtime)  # the review UI and the JSON API (/login, /queue, /candidates, /v1)
    app.add_middleware(AccessLog, runtime=runtime)
    return app


# --- access log ----------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_REDACTED_PREFIXES = ("/webhooks/sentry/legacy/",)  # the path's last part is a secret token


def loggable_path(path: str) -> str:
    for prefix in _REDACTED_PREFIXES:
        if path.startswith(prefix):
            return prefix + "[Filtered]"
    return path


class AccessLog:
    """Plain ASGI middleware: one structured line per request, after its response is sent."""

    def __init__(self, app: ASGIApp, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        runtime = self.runtime
        runtime.last_request_at = started
        runtime.in_flight += 1
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            runtime.in_flight -= 1
            runtime.last_request_at = time.monotonic()
            client = scope.get("client")
            log.info("request.served", method=scope["method"], path=loggable_path(scope["path"]),
                     status=status, ms=round((time.monotonic() - started) * 1000, 2),
                     client=client[0] if client else None)
