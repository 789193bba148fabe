"""GZipMiddleware crashed on a response start message that omits the optional `headers` key."""

import asyncio
import gzip

from starlette.middleware.gzip import GZipMiddleware

BODY = b"hello world " * 100


async def app(scope, receive, send):
    # ASGI makes "headers" optional in http.response.start (default: empty)
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": BODY})


async def call(asgi_app):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"accept-encoding", b"gzip")],
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await asgi_app(scope, receive, send)
    return sent


def main() -> None:
    sent = asyncio.run(call(GZipMiddleware(app, minimum_size=10)))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = dict(start["headers"])
    assert start["status"] == 200
    assert headers[b"content-encoding"] == b"gzip", headers
    assert gzip.decompress(body) == BODY


if __name__ == "__main__":
    main()
