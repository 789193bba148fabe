"""A stand-in for Sentry's REST API on 127.0.0.1, answering the documented endpoints and shapes.

Served (docs.sentry.io/api): GET /api/0/projects/{org}/{project}/, GET /api/0/organizations/{org}/
issues/ (query, sort, limit, cursor; Link header with rel="previous"/"next", results and cursor as
Sentry writes them), GET /api/0/organizations/{org}/issues/{id}/events/{latest|recommended|oldest}/.
A bearer token other than TOKEN gets 401 {"detail": "Invalid token"}. Every response carries the
X-Sentry-Rate-Limit-* headers; `script` queues responses (429s, 5xx, a spent window) to send before
the normal ones. Each request is recorded for assertions.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).resolve().parent / "data"
TOKEN = "sntrys_test_token"
ORG = "acme"
PROJECT = "shop"
PROJECT_ID = "42"


@dataclass
class Scripted:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    path_contains: str = ""  # only for requests whose path contains this


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    at: float


def api_event(event_id: str, issue_id: str, exc_type: str) -> dict[str, Any]:
    """The recorded API event, re-identified: its own event id, issue and exception type."""
    event = json.loads((DATA / "api_event_chained_from.json").read_text())
    event["eventID"] = event["id"] = event_id
    event["groupID"] = issue_id
    for entry in event["entries"]:
        if entry["type"] == "exception":
            entry["data"]["values"][-1]["type"] = exc_type
    return event


def issue_row(issue_id: str, title: str, status: str = "unresolved") -> dict[str, Any]:
    return {"id": issue_id, "shortId": f"SHOP-{issue_id[-3:]}", "title": title, "culprit": "fixture_app in fetch_order",
            "permalink": f"https://sentry.io/organizations/{ORG}/issues/{issue_id}/", "level": "error",
            "status": status, "statusDetails": {}, "isPublic": False, "platform": "python",
            "project": {"id": PROJECT_ID, "name": "Shop", "slug": PROJECT, "platform": "python"},
            "type": "error", "metadata": {"type": title.split(":")[0]}, "numComments": 0, "assignedTo": None,
            "count": "3", "userCount": 1, "firstSeen": "2026-11-20T10:00:00.000000Z",
            "lastSeen": "2026-11-23T20:43:05.618544Z"}


class FakeSentry:
    def __init__(self) -> None:
        self.issues: list[dict[str, Any]] = []
        self.events: dict[tuple[str, str], dict[str, Any]] = {}  # (issue id, latest|recommended) -> event
        self.script: list[Scripted] = []
        self.seen: list[Seen] = []
        self.limit = 40
        self.remaining = 40
        self._lock = threading.Lock()
        self.url = ""

    def add_issue(self, exc_type: str, *, event_id: str | None = None, recommended: bool = True) -> tuple[str, str]:
        issue_id = str(4_500_000_000 + len(self.issues))
        event_id = event_id or uuid.uuid4().hex
        self.issues.append(issue_row(issue_id, f"{exc_type}: order o-4040 not found"))
        event = api_event(event_id, issue_id, exc_type)
        self.events[(issue_id, "latest")] = event
        if recommended:
            self.events[(issue_id, "recommended")] = event
        return issue_id, event_id

    def requests_to(self, part: str) -> list[Seen]:
        return [s for s in self.seen if part in s.path]

    # --- answering -------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.seen.append(Seen(path, query, headers, time.time()))
            for i, scripted in enumerate(self.script):
                if scripted.path_contains in path:
                    del self.script[i]
                    return scripted.status, {**self._limits(), **scripted.headers}, scripted.body
            if headers.get("authorization") != f"Bearer {TOKEN}":
                return 401, self._limits(), {"detail": "Invalid token"}
            self.remaining = max(self.remaining - 1, 0)
            return self._route(path, query)

    def _limits(self) -> dict[str, str]:
        return {"X-Sentry-Rate-Limit-Limit": str(self.limit), "X-Sentry-Rate-Limit-Remaining": str(self.remaining),
                "X-Sentry-Rate-Limit-Reset": str(int(time.time()) + 60),
                "X-Sentry-Rate-Limit-ConcurrentLimit": "25", "X-Sentry-Rate-Limit-ConcurrentRemaining": "24"}

    def _route(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "0"]:
            return 404, self._limits(), {"detail": "Not found"}
        rest = parts[2:]
        if rest == ["projects", ORG, PROJECT]:
            return 200, self._limits(), {"id": PROJECT_ID, "slug": PROJECT, "name": "Shop", "platform": "python"}
        if rest == ["organizations", ORG, "issues"]:
            return self._issue_page(query)
        if len(rest) == 6 and rest[:3] == ["organizations", ORG, "issues"] and rest[4] == "events":
            event = self.events.get((rest[3], rest[5]))
            if event is None:
                return 404, self._limits(), {"detail": "The requested resource does not exist"}
            return 200, self._limits(), event
        return 404, self._limits(), {"detail": "The requested resource does not exist"}

    def _issue_page(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], Any]:
        if query.get("project") != [PROJECT_ID]:
            return 400, self._limits(), {"detail": "Invalid project"}
        wanted = query.get("query", ["is:unresolved"])[0]
        rows = [r for r in self.issues if wanted != "is:unresolved" or r["status"] == "unresolved"]
        if query.get("sort", ["date"])[0] == "new":
            rows = list(reversed(rows))
        limit = int(query.get("limit", ["100"])[0])
        offset = int(query.get("cursor", ["0:0:0"])[0].split(":")[1])
        page = rows[offset : offset + limit]
        base = f"{self.url}/api/0/organizations/{ORG}/issues/"
        previous, following = f"0:{max(offset - limit, 0)}:1", f"0:{offset + limit}:0"
        link = (f'<{base}?&cursor={previous}>; rel="previous"; results="{str(offset > 0).lower()}"; '
                f'cursor="{previous}", <{base}?&cursor={following}>; rel="next"; '
                f'results="{str(offset + limit < len(rows)).lower()}"; cursor="{following}"')
        return 200, {**self._limits(), "Link": link}, page


def _handler(api: FakeSentry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
            parts = urlsplit(self.path)
            status, headers, body = api.answer(parts.path, parse_qs(parts.query),
                                               {k.lower(): v for k, v in self.headers.items()})
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def running() -> Iterator[FakeSentry]:
    api = FakeSentry()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
