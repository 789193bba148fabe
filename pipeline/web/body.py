"""Request bodies, bounded twice: as received (Content-Length and the bytes actually read) and after
undoing Content-Encoding (gzip, deflate, br, identity, or a chain of them), so that a small gzip
bomb is refused after reading at most the decompressed limit, never expanded in memory.

Truncated or corrupt compressed data is a 400; an encoding other than these a 415.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import brotli
from starlette.requests import Request

from pipeline.web.refusal import Refused

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int
    max_decompressed_bytes: int


async def read_body(request: Request, limits: Limits) -> bytes:
    """The request body as received, refused with 413 once it passes max_body_bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise Refused(400, f"Content-Length {declared[:20]!r} is not a byte count")
        if int(declared) > limits.max_body_bytes:
            raise Refused(413, f"body of {declared} bytes is over the limit of {limits.max_body_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_body_bytes:
            raise Refused(413, f"body is over the limit of {limits.max_body_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo each listed encoding, last applied first, never producing more than `limit` bytes."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, zlib.MAX_WBITS | 16, limit, "gzip")
        elif coding == "deflate":
            body = _deflate(body, limit)
        elif coding == "br":
            body = _unbrotli(body, limit)
        else:
            raise Refused(415, f"Content-Encoding {coding!r} is not supported (gzip, deflate, br, identity)")
    if len(body) > limit:
        raise Refused(413, f"body is over the limit of {limit} bytes")
    return body


def _too_large(limit: int) -> Refused:
    return Refused(413, f"decompressed body is over the limit of {limit} bytes")


def _inflate(data: bytes, wbits: int, limit: int, name: str) -> bytes:
    out = bytearray()
    while True:  # a gzip body may be several members back to back
        inflater = zlib.decompressobj(wbits)
        pending = data
        try:
            while pending:
                out += inflater.decompress(pending, limit + 1 - len(out))
                if len(out) > limit:
                    raise _too_large(limit)
                pending = inflater.unconsumed_tail
            out += inflater.flush()
        except zlib.error as exc:
            raise Refused(400, f"{name} body is corrupt: {exc}") from exc
        if len(out) > limit:
            raise _too_large(limit)
        if not inflater.eof:
            raise Refused(400, f"{name} body is truncated")
        data = inflater.unused_data
        if not data.strip(b"\x00"):
            return bytes(out)


def _deflate(data: bytes, limit: int) -> bytes:
    # HTTP's "deflate" is zlib-wrapped; some clients send the raw stream.
    try:
        return _inflate(data, zlib.MAX_WBITS, limit, "deflate")
    except Refused as refused:
        if refused.status == 413:
            raise
        return _inflate(data, -zlib.MAX_WBITS, limit, "deflate")


def _unbrotli(data: bytes, limit: int) -> bytes:
    decompressor = brotli.Decompressor()
    out = bytearray()
    try:
        out += decompressor.process(data, output_buffer_limit=limit + 1)
        while len(out) <= limit and not decompressor.can_accept_more_data():
            more = decompressor.process(b"", output_buffer_limit=limit + 1 - len(out))
            if not more:
                break
            out += more
    except brotli.error as exc:
        raise Refused(400, f"br body is corrupt: {exc}") from exc
    if len(out) > limit:
        raise _too_large(limit)
    if not decompressor.is_finished():
        raise Refused(400, "br body is truncated")
    return bytes(out)
