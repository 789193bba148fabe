"""The real sentry-sdk, in processes of its own, sending to a running `autofix serve` over loopback.

Each sender runs tests/data/sdk_sender.py (or the example shop's scenarios) with its DSN pointing at
the server; the events must arrive stored and grouped, with their frames and scrubbed locals, and
the shop's must then be fixed by `autofix triage` like ingested files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers_serve import ROOT, Server, wait_for

from pipeline.records import CandidateStatus, ErrorEvent, InboxStatus

SENDER = ROOT / "tests" / "data" / "sdk_sender.py"
SHOP_SENDER = ROOT / "tests" / "data" / "sdk_shop.py"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server.start(tmp_path_factory.mktemp("serve"))
    yield server
    assert server.stop() in (0, -15)  # uvicorn re-raises the SIGTERM once it has shut down
    assert server.events("server.stopped"), "the server did not shut down cleanly"


def send(server: Server, scenario: str, compression: str, tag: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "AUTOFIX_"))}
    env.update(SENDER_DB_PASSWORD="hunter2-db-password", SENDER_API_TOKEN="tok_live_1234567890")
    return subprocess.run([sys.executable, str(SENDER), server.dsn, scenario, compression, tag],
                          env=env, capture_output=True, text=True, timeout=60)


def events_tagged(server: Server, tag: str) -> list[ErrorEvent]:
    return [e for issue in server.store.list_issues() for e in server.store.events_for_issue(issue.fingerprint)
            if e.tags.get("scenario") == tag]


@pytest.mark.parametrize("compression", ["br", "gzip", "none"])
def test_an_uncaught_chained_exception_arrives_stored_with_its_chain_frames_and_scrubbed_locals(
    server: Server, compression: str
) -> None:
    sent = send(server, "chained", compression, f"chained-{compression}")
    assert sent.returncode == 1 and "PaymentDeclined" in sent.stderr  # it escaped, the SDK reported it

    (event,) = wait_for("the event", lambda: events_tagged(server, f"chained-{compression}"))
    assert [e.type for e in event.exceptions] == ["KeyError", "PaymentDeclined"]
    crash = event.exceptions[0].frames[-1]
    assert crash.function == "charge" and crash.in_app and crash.context_line and 'card["number"]' in crash.context_line
    assert crash.vars["password"] == "[Filtered:secret]" and crash.vars["api_token"] == "[Filtered:secret]"
    assert "hunter2" not in json.dumps(event.raw) and "tok_live" not in json.dumps(event.raw)
    assert event.source == "sentry-envelope" and event.project == "1"
    issue = server.store.get_issue(event.fingerprint or "")
    assert issue is not None and issue.fix_class == "raised" and issue.title.startswith("PaymentDeclined")


def test_the_same_crash_sent_with_each_compression_is_one_issue_counted_once_per_event(server: Server) -> None:
    for compression in ("br", "gzip", "none"):
        assert send(server, "chained", compression, "same-crash").returncode == 1

    events = wait_for("three events", lambda: (found := events_tagged(server, "same-crash")) and len(found) == 3
                      and found)
    assert len({e.id for e in events}) == 3
    (fingerprint,) = {e.fingerprint for e in events}
    issue = server.store.get_issue(fingerprint or "")
    assert issue is not None and issue.count == len(server.store.events_for_issue(issue.fingerprint, 100)) >= 3


def test_a_logged_error_and_a_logged_exception_arrive_as_two_issues(server: Server) -> None:
    sent = send(server, "logged", "gzip", "logged")
    assert sent.returncode == 0, sent.stderr

    events = wait_for("both events", lambda: (found := events_tagged(server, "logged")) and len(found) == 2 and found)
    message = next(e for e in events if not e.exceptions)
    assert message.message == "stock for SKU-9 timed out after 30 s"
    assert message.message_template == "stock for %s timed out after %d s"
    logged = next(e for e in events if e.exceptions)
    assert [e.type for e in logged.exceptions] == ["KeyError", "PaymentDeclined"]
    assert logged.exceptions[-1].frames and logged.exceptions[-1].frames[-1].function == "checkout"
    assert len({e.fingerprint for e in events}) == 2


def test_a_handled_capture_exception_arrives_with_its_frame_locals(server: Server) -> None:
    assert send(server, "handled", "br", "handled").returncode == 0

    (event,) = wait_for("the event", lambda: events_tagged(server, "handled"))
    (exc,) = event.exceptions
    assert exc.type == "KeyError" and exc.mechanism == "generic"
    frame = exc.frames[-1]
    assert frame.function == "charge" and frame.vars["card"] == {} and frame.vars["amount"] == "7"
    assert frame.vars["password"] == "[Filtered:secret]"


def test_sessions_and_client_reports_are_answered_but_not_stored(server: Server) -> None:
    before = server.store.inbox_counts()
    assert send(server, "message", "none", "message").returncode == 0
    wait_for("the message event", lambda: events_tagged(server, "message"))
    server.drained()
    after = server.store.inbox_counts()
    assert sum(after.values()) - sum(before.values()) == 1  # only the event's envelope became a row
    assert after.get(InboxStatus.FAILED.value, 0) == before.get(InboxStatus.FAILED.value, 0)


@pytest.mark.slow
def test_the_shops_crashes_sent_by_the_sdk_are_fixed_by_triage_like_ingested_files(tmp_path: Path) -> None:
    from pipeline.demo import TEST_COMMAND, prepare_repo

    repo, remote = prepare_repo(ROOT / "examples", tmp_path)
    config = (f'in_app_packages = ["shop"]\n\n[[repos]]\nname = "shop"\npath = "{repo}"\n'
              f'remote_url = "{remote}"\ntest_command = "{TEST_COMMAND}"\nsentry_projects = ["1"]\n')
    server = Server.start(tmp_path / "serve", config=config)
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "AUTOFIX_"))}
        sent = subprocess.run([sys.executable, str(SHOP_SENDER), server.dsn], env=env, capture_output=True,
                              text=True, timeout=120)
        assert sent.returncode == 0, sent.stderr
        issues = wait_for("four issues", lambda: (found := server.store.list_issues()) and len(found) == 4 and found)
        assert sorted(i.count for i in issues) == [1, 1, 1, 2]  # two customers hit the coupon bug
        server.drained()

        triage_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
        triage_env.update(AUTOFIX_HOME=str(server.root / "home"), AUTOFIX_STORE_URL=server.store_url,
                          AUTOFIX_CONFIG=str(server.root / "autofix.toml"))
        triaged = subprocess.run([sys.executable, "-m", "pipeline", "triage", "--json"], cwd=tmp_path,
                                 env=triage_env, capture_output=True, text=True, timeout=600)
        assert triaged.returncode == 0, triaged.stderr
        outcomes = json.loads(triaged.stdout)["outcomes"]
        assert sorted(o["status"] for o in outcomes.values()) == ["verified"] * 4
        queued = server.store.list_candidates(CandidateStatus.AWAITING_REVIEW)
        assert {c.issue_fingerprint for c in queued} == {i.fingerprint for i in issues}
    finally:
        server.stop()
