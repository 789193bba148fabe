"""An OpenAI-compatible chat-completions server of our own on 127.0.0.1, for the LLM fixer's tests.

It answers POST /v1/chat/completions with scripted replies, in order (each cut at the request's stop
sequences, as OpenAI does), and records every request's JSON body. A reply is a string (the assistant's content, with a usage block as OpenAI sends it),
`Status(code)` (that HTTP status with an OpenAI-style error body) or `Stall(seconds)` (answers only
after that long, for client timeouts). When the script runs out, the last reply repeats.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Status:
    code: int


@dataclass(frozen=True)
class Stall:
    seconds: float
    then: str = "too late"


Reply = str | Status | Stall


class FakeLLM:
    def __init__(self, script: Sequence[Reply], prompt_tokens: int = 900, completion_tokens: int = 100) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self._lock = threading.Lock()
        self.base_url = ""

    def next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            self.requests.append(body)
            index = min(len(self.requests) - 1, len(self.script) - 1)
            return self.script[index]

    def user_texts(self, request: int) -> str:
        """Every user message of the n-th request (0-based), joined: what the model was told."""
        return "\n".join(m["content"] for m in self.requests[request]["messages"] if m["role"] == "user")

    def all_text(self, request: int) -> str:
        return "\n".join(m["content"] for m in self.requests[request]["messages"])


def _handler(fake: FakeLLM) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

        def _send(self, code: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                pass

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": f"no route {self.path}", "type": "invalid_request_error"}})
                return
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
            reply = fake.next_reply(body)
            if isinstance(reply, Status):
                self._send(reply.code, {"error": {"message": f"scripted {reply.code}", "type": "server_error"}})
                return
            if isinstance(reply, Stall):
                time.sleep(reply.seconds)
                reply = reply.then
            finish = "stop"
            for stop in body.get("stop") or []:  # as OpenAI does: the text ends before a stop sequence
                if stop in reply:
                    reply = reply[:reply.index(stop)]
            self._send(200, {
                "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", "fake"),
                "choices": [{"index": 0, "finish_reason": finish,
                             "message": {"role": "assistant", "content": reply}}],
                "usage": {"prompt_tokens": fake.prompt_tokens, "completion_tokens": fake.completion_tokens,
                          "total_tokens": fake.prompt_tokens + fake.completion_tokens},
            })

    return Handler


@contextmanager
def serve(fake: FakeLLM) -> Iterator[FakeLLM]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
