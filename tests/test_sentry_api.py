"""The Sentry REST API client, `autofix pull`, and issue webhooks that fetch their event, against a
server of our own on 127.0.0.1 that answers Sentry's documented endpoints and shapes
(tests/fake_sentry_api.py), including Link-header pagination, 401, 429 and the rate-limit headers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_sentry_api import ORG, PROJECT, PROJECT_ID, TOKEN, FakeSentry, Scripted, running
from helpers_serve import CLIENT_SECRET, ROOT, Server, wait_for

from pipeline.adapters.sentry_api import SentryClient
from pipeline.adapters.sql_store import SqlStore
from pipeline.errors import ConfigError, NotFound, SentryUnavailable
from pipeline.inbox import InboxContext
from pipeline.pull import pull_project
from pipeline.records import InboxKind, InboxStatus


@pytest.fixture
def api() -> Iterator[FakeSentry]:
    with running() as fake:
        yield fake


class Sleeps:
    """Records each wait the client asks for, and waits for real (the fake's windows are short)."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(min(seconds, 3))


def client(api: FakeSentry, token: str = TOKEN, **options: Any) -> tuple[SentryClient, Sleeps]:
    sleeps = Sleeps()
    return SentryClient(api.url, ORG, token, sleep=sleeps, backoff_s=0.05, **options), sleeps


# --- listing and events --------------------------------------------------------------------------


def test_unresolved_issues_are_listed_with_query_and_sort_and_followed_across_link_pages(api: FakeSentry) -> None:
    for n in range(5):
        api.add_issue(f"Crash{n}")
    sentry, _ = client(api)

    first = sentry.issues(PROJECT, query="is:unresolved level:error", sort="freq", per_page=2)
    second = sentry.issues(PROJECT, query="is:unresolved", sort="freq", per_page=2, cursor=first.next_cursor)
    third = sentry.issues(PROJECT, query="is:unresolved", sort="freq", per_page=2, cursor=second.next_cursor)

    assert [len(p.issues) for p in (first, second, third)] == [2, 2, 1]
    assert (first.next_cursor, second.next_cursor, third.next_cursor) == ("0:2:0", "0:4:0", None)
    assert [i.title for i in first.issues] == ["Crash0: order o-4040 not found", "Crash1: order o-4040 not found"]
    issue = third.issues[0]
    assert issue.status == "unresolved" and issue.project == PROJECT and issue.count == 3
    assert issue.last_seen is not None and issue.last_seen.year == 2026
    listing = api.requests_to("/issues/")
    assert listing[0].query == {"project": [PROJECT_ID], "query": ["is:unresolved level:error"], "sort": ["freq"],
                                "limit": ["2"]}
    assert [s.query.get("cursor") for s in listing] == [None, ["0:2:0"], ["0:4:0"]]
    assert all(s.headers["authorization"] == f"Bearer {TOKEN}" for s in api.seen)
    assert len(api.requests_to(f"/projects/{ORG}/{PROJECT}/")) == 1  # the project id is looked up once


@pytest.mark.parametrize("which", ["latest", "recommended"])
def test_an_issues_latest_and_recommended_event_are_normalised_into_error_events(api: FakeSentry, which: str) -> None:
    issue_id, event_id = api.add_issue("OrderNotFound")
    sentry, _ = client(api)

    event = sentry.latest_event(issue_id) if which == "latest" else sentry.recommended_event(issue_id)

    assert event.id == event_id and event.source == "sentry-api" and event.sentry_issue_id == issue_id
    assert [e.type for e in event.exceptions] == ["KeyError", "OrderNotFound"]
    crash = event.exceptions[0].frames[-1]
    assert crash.function == "fetch_order" and crash.lineno == 27 and crash.in_app
    assert crash.context_line == "        return ORDERS[order_id]" and crash.vars == {"order_id": "'o-4040'"}
    assert event.release == "shop@1.4.2" and event.tags["order_id"] == "o-1001" and event.project == "1"
    assert api.requests_to(f"/issues/{issue_id}/events/{which}/")


def test_a_missing_event_is_not_found(api: FakeSentry) -> None:
    sentry, _ = client(api)
    with pytest.raises(NotFound):
        sentry.issue_event("999", "recommended")


def test_a_refused_token_is_a_config_error_naming_the_status(api: FakeSentry) -> None:
    sentry, sleeps = client(api, token="wrong")
    with pytest.raises(ConfigError, match=r"refused the token \(401\).*Invalid token"):
        sentry.issues(PROJECT)
    assert len(api.seen) == 1 and sleeps.waits == []  # never retried


# --- rate limits ---------------------------------------------------------------------------------


def test_a_429_is_retried_after_its_retry_after(api: FakeSentry) -> None:
    api.add_issue("Crash")
    api.script = [Scripted(429, {"Retry-After": "1"}, {"detail": "You are attempting to use this endpoint too "
                                                                  "frequently. Limit is 40 requests in 1 seconds"}),
                  Scripted(429, {"Retry-After": "1"}, {"detail": "slow down"})]
    sentry, sleeps = client(api)

    page = sentry.issues("42")
    assert len(page.issues) == 1
    assert sleeps.waits == [1.0, 1.0]
    listing = api.requests_to("/issues/")
    assert len(listing) == 3 and listing[2].at - listing[0].at >= 1.9


def test_a_429_without_retry_after_waits_for_the_rate_limit_reset(api: FakeSentry) -> None:
    reset = int(time.time()) + 2
    api.script = [Scripted(429, {"X-Sentry-Rate-Limit-Remaining": "0", "X-Sentry-Rate-Limit-Reset": str(reset)},
                           {"detail": "rate limited"})]
    sentry, sleeps = client(api)
    sentry.issues("42")
    assert len(sleeps.waits) == 1 and 0 < sleeps.waits[0] <= 2.01
    assert api.seen[-1].at >= reset - 1


def test_a_spent_window_makes_the_next_request_wait_for_the_reset_instead_of_a_429(api: FakeSentry) -> None:
    issue_id, _ = api.add_issue("Crash")
    reset = int(time.time()) + 2
    api.script = [Scripted(200, {"X-Sentry-Rate-Limit-Remaining": "0", "X-Sentry-Rate-Limit-Reset": str(reset)},
                           {"id": PROJECT_ID, "slug": PROJECT})]
    sentry, sleeps = client(api)

    sentry.issues(PROJECT)  # the project lookup spends the window; the listing waits for its reset
    assert len(sleeps.waits) == 1 and 0 < sleeps.waits[0] <= 2.01
    assert api.requests_to("/issues/")[0].at >= reset - 1


def test_rate_limiting_past_the_retries_is_sentry_unavailable(api: FakeSentry) -> None:
    api.script = [Scripted(429, {"Retry-After": "0"}, {"detail": "no"}) for _ in range(3)]
    sentry, _ = client(api, max_attempts=3)
    with pytest.raises(SentryUnavailable, match="gave up after 3 attempts"):
        sentry.issues("42")


def test_server_errors_are_retried_with_backoff(api: FakeSentry) -> None:
    api.add_issue("Crash")
    api.script = [Scripted(502, {}, {"detail": "bad gateway"}), Scripted(503, {}, {"detail": "unavailable"})]
    sentry, sleeps = client(api)
    assert len(sentry.issues("42").issues) == 1
    assert sleeps.waits == [0.05, 0.1]


def test_an_unreachable_api_is_sentry_unavailable() -> None:
    sentry = SentryClient("http://127.0.0.1:9", ORG, TOKEN, sleep=lambda s: None, max_attempts=2)
    with pytest.raises(SentryUnavailable, match="ConnectError"):
        sentry.issues("42")


# --- pulls ---------------------------------------------------------------------------------------


def test_a_pull_stores_each_issues_recommended_event_once_falling_back_to_latest(api: FakeSentry,
                                                                                 tmp_path: Path) -> None:
    ids = [api.add_issue(f"Crash{n}", recommended=n != 1) for n in range(3)]
    store = SqlStore(f"sqlite:///{tmp_path / 'a.db'}")
    ctx = InboxContext(store=store, inbox=store)
    sentry, _ = client(api)

    report = pull_project(sentry, ctx, PROJECT, limit=10)
    again = pull_project(sentry, ctx, PROJECT, limit=10)

    assert report.issues == [issue_id for issue_id, _ in ids]
    assert sorted(report.stored) == sorted(event_id for _, event_id in ids) and report.failed == {}
    assert again.stored == [] and sorted(again.duplicates) == sorted(report.stored)
    assert api.requests_to(f"/issues/{ids[1][0]}/events/latest/")  # no recommended event on that one
    for issue_id, event_id in ids:
        event = store.get_event(event_id)
        assert event is not None
        (issue,) = store.issues_for_sentry_id(issue_id)
        assert issue.fingerprint == event.fingerprint and issue.count == 1 and issue.sentry_status == "unresolved"
    rows = store.inbox_items(limit=100)
    assert {r.kind for r in rows} == {InboxKind.API_EVENT} and len(rows) == 6
    assert all(r.status is InboxStatus.PROCESSED for r in rows)
    store.close()


def cli_env(root: Path, api: FakeSentry, store_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    env.update(AUTOFIX_HOME=str(root / "home"), AUTOFIX_STORE_URL=store_url, AUTOFIX_SENTRY_URL=api.url,
               AUTOFIX_SENTRY_API_TOKEN=TOKEN, AUTOFIX_CONFIG=str(root / "autofix.toml"))
    (root / "autofix.toml").touch()
    return env


def test_autofix_pull_stores_a_projects_issues_and_says_what_it_did(api: FakeSentry, tmp_path: Path) -> None:
    for n in range(4):
        api.add_issue(f"Crash{n}")
    env = cli_env(tmp_path, api, f"sqlite:///{tmp_path / 'a.db'}")
    pulled = subprocess.run([sys.executable, "-m", "pipeline", "pull", f"{ORG}/{PROJECT}", "--limit", "3", "--json"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    report = json.loads(pulled.stdout)
    assert len(report["issues"]) == 3 and len(report["stored"]) == 3 and report["failed"] == {}

    refused = subprocess.run([sys.executable, "-m", "pipeline", "pull", f"{ORG}/{PROJECT}"],
                             env={**env, "AUTOFIX_SENTRY_API_TOKEN": "wrong"}, capture_output=True, text=True,
                             timeout=120)
    assert refused.returncode == 2 and "refused the token (401)" in refused.stderr


# --- one event, three routes ---------------------------------------------------------------------


@pytest.fixture
def served(api: FakeSentry, tmp_path: Path) -> Iterator[Server]:
    server = Server.start(tmp_path / "serve", env={"AUTOFIX_SENTRY_URL": api.url, "AUTOFIX_SENTRY_API_TOKEN": TOKEN,
                                                   "AUTOFIX_SENTRY_ORG": ORG})
    yield server
    server.stop()


def signed_webhook(server: Server, resource: str, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Sentry-Hook-Resource": resource, "Request-ID": str(uuid.uuid4()),
               "Sentry-Hook-Timestamp": str(int(time.time())),
               "Sentry-Hook-Signature": hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).hexdigest()}
    return httpx.post(server.url("/webhooks/sentry"), content=body, headers=headers, timeout=30)


def test_one_event_sent_by_the_sdk_a_webhook_and_a_pull_is_stored_and_counted_once(
    api: FakeSentry, served: Server
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "AUTOFIX_"))}
    sent = subprocess.run([sys.executable, str(ROOT / "tests" / "data" / "sdk_sender.py"), served.dsn, "handled",
                           "gzip", "three-routes"], env=env, capture_output=True, text=True, timeout=60)
    assert sent.returncode == 0, sent.stderr
    (issue,) = wait_for("the SDK's event", lambda: [i for i in served.store.list_issues()])
    (event,) = served.store.events_for_issue(issue.fingerprint)
    assert issue.count == 1 and issue.sentry_issue_id is None

    sentry_id, _ = api.add_issue("KeyError", event_id=event.id)
    webhook = {"action": "created", "installation": {"uuid": "u"},
               "data": {"error": {**event.raw, "issue_id": sentry_id, "project": 1}}}
    assert signed_webhook(served, "error", webhook).status_code == 200
    served.drained()
    env.update(AUTOFIX_HOME=str(served.root / "home"), AUTOFIX_STORE_URL=served.store_url,
               AUTOFIX_SENTRY_URL=api.url, AUTOFIX_SENTRY_API_TOKEN=TOKEN,
               AUTOFIX_CONFIG=str(served.root / "autofix.toml"))
    pulled = subprocess.run([sys.executable, "-m", "pipeline", "pull", f"{ORG}/{PROJECT}", "--json"], env=env,
                            capture_output=True, text=True, timeout=120)
    assert pulled.returncode == 0, pulled.stderr
    assert json.loads(pulled.stdout)["duplicates"] == [event.id]

    (after,) = served.store.list_issues()
    assert after.count == 1 and len(served.store.events_for_issue(after.fingerprint)) == 1
    assert after.sentry_issue_id == sentry_id and after.sentry_status == "unresolved"
    outcomes = [i.outcome for i in served.store.inbox_items(limit=100)]
    assert outcomes.count("stored 1 event(s), 0 duplicate(s)") == 1
    assert outcomes.count("stored 0 event(s), 1 duplicate(s)") == 2


def test_an_issue_webhook_for_an_unknown_issue_fetches_its_latest_event(api: FakeSentry, served: Server) -> None:
    sentry_id, event_id = api.add_issue("OrderNotFound")
    payload = {"action": "created", "installation": {"uuid": "u"},
               "data": {"issue": {"id": sentry_id, "status": "unresolved", "title": "OrderNotFound",
                                  "project": {"id": PROJECT_ID, "slug": PROJECT}}}}
    response = signed_webhook(served, "issue", payload)
    assert response.status_code == 200
    item = wait_for("processing", lambda: (i := served.store.inbox_item(response.json()["inbox_id"]))
                    and i.status is not InboxStatus.PENDING and i)
    assert item.status is InboxStatus.PROCESSED, item.error
    assert "latest event fetched as inbox" in (item.outcome or "") and "1 issue(s) updated" in (item.outcome or "")
    event = served.store.get_event(event_id)
    assert event is not None and event.sentry_issue_id == sentry_id
    (issue,) = served.store.issues_for_sentry_id(sentry_id)
    assert issue.sentry_status == "unresolved" and issue.project == PROJECT
    assert api.requests_to(f"/issues/{sentry_id}/events/latest/")
