"""Refusals: the non-2xx answers of the ingestion endpoints, in the shape Sentry's Relay uses.

A refusal is raised anywhere below a route and becomes `{"detail": reason, "causes": [...]}` with its
status (400 bad input, 401 bad or missing authentication, 403 unknown key, 413 too large, 415 not an
accepted encoding, 429 backlog full with Retry-After, 503 store unavailable). Bad input never gives a
500: malformed payloads raise InvalidInput, which the app answers as a 400 with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import JSONResponse

from pipeline.errors import InvalidInput


class Refused(Exception):
    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def refusal_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "causes": []}, status_code=status, headers=dict(headers or {}))


async def on_refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Refused)
    return refusal_response(exc.status, exc.detail, exc.headers)


async def on_invalid_input(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return refusal_response(400, exc.reason.replace("\x00", "\ufffd"))
