"""Liveness and readiness: /healthz (the process answers) and /readyz (it can do its work).

/readyz checks the store (a query) and, when AUTOFIX_BROKER_URL is set, the broker (a Redis PING),
and reports the inbox backlog; 503 when either dependency is down, so a load balancer stops sending
events to an instance that would refuse them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from pipeline.errors import AutofixError
from pipeline.web.runtime import runtime_of

router = APIRouter(tags=["health"])

BROKER_TIMEOUT_S = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _broker(url: str) -> str:
    import redis  # the broker is Redis (workers/app.py); only readiness talks to it directly

    client = redis.Redis.from_url(url, socket_connect_timeout=BROKER_TIMEOUT_S, socket_timeout=BROKER_TIMEOUT_S)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"error: {exc}"
    finally:
        client.close()
    return "ok"


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:  # sync: FastAPI runs it in a worker thread
    runtime = runtime_of(request)
    checks: dict[str, Any] = {}
    try:
        runtime.deps.inbox_store.ping()
        checks["store"] = "ok"
        checks["backlog"] = runtime.deps.inbox_store.inbox_backlog()
    except AutofixError as exc:
        checks["store"] = f"error: {exc}"
    broker_url = runtime.settings.broker_url
    checks["broker"] = _broker(broker_url) if broker_url else "not configured (in-process)"
    ready = checks["store"] == "ok" and not str(checks["broker"]).startswith("error")
    return JSONResponse({"status": "ready" if ready else "not ready", **checks}, status_code=200 if ready else 503)
