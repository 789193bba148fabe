"""`autofix serve` with AUTOFIX_BROKER_URL: accepted rows are processed by a real Celery worker
(`process_inbox`), and rows left pending by a broker outage are enqueued again by the sweep.

Redis is AUTOFIX_TEST_BROKER_URL (flushed first), as in test_workers.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from helpers_serve import DSN_KEY, Server, wait_for

from pipeline.records import InboxStatus
from pipeline.settings import Settings

BROKER = os.environ.get("AUTOFIX_TEST_BROKER_URL", "redis://127.0.0.1:6379/7")
AUTH = {"X-Sentry-Auth": f"Sentry sentry_key={DSN_KEY}, sentry_version=7"}


@pytest.fixture
def broker() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(BROKER)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis at {BROKER} is unreachable ({exc}); set AUTOFIX_TEST_BROKER_URL")
    client.flushdb()
    yield client
    client.close()


def start_worker(server: Server) -> tuple[subprocess.Popen[bytes], Path]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    env.update(AUTOFIX_HOME=str(server.root / "home"), AUTOFIX_STORE_URL=server.store_url,
               AUTOFIX_CONFIG=str(server.root / "autofix.toml"), AUTOFIX_BROKER_URL=BROKER)
    log = server.root / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--queues", "ingest", "--concurrency",
                                 "1"], cwd=server.root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    wait_for("the worker", lambda: proc.poll() is not None or " ready." in log.read_text(), timeout=60)
    assert proc.poll() is None, log.read_text()
    return proc, log


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def worker_events(log: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text(errors="replace").splitlines()
            if line.startswith("{") and json.loads(line).get("event") == name]


def send_event(server: Server) -> str:
    event_id = uuid.uuid4().hex
    body = json.dumps({"event_id": event_id, "message": "worker path", "platform": "python"}).encode()
    response = httpx.post(server.url("/api/1/store/"), content=body, headers=AUTH, timeout=30)
    assert response.status_code == 200, response.text
    return event_id


def test_accepted_rows_are_processed_by_a_celery_worker(tmp_path: Path, broker: redis.Redis) -> None:
    server = Server.start(tmp_path, env={"AUTOFIX_BROKER_URL": BROKER})
    proc, log = start_worker(server)
    try:
        ready = httpx.get(server.url("/readyz"), timeout=10)
        assert ready.status_code == 200 and ready.json()["broker"] == "ok"
        event_id = send_event(server)
        wait_for("the worker to store it", lambda: server.store.get_event(event_id), timeout=60)
        (done,) = wait_for("the log line", lambda: worker_events(log, "inbox.processed"), timeout=30)
        assert done["task"] == "workers.tasks.process_inbox"
        assert server.store.inbox_counts() == {InboxStatus.PROCESSED.value: 1}
    finally:
        stop(proc)
        server.stop()


def test_rows_accepted_while_the_broker_was_down_are_swept_to_a_worker(tmp_path: Path, broker: redis.Redis) -> None:
    from workers.app import make_app

    server = Server.start(tmp_path, env={"AUTOFIX_BROKER_URL": "redis://127.0.0.1:1/0"})
    try:
        assert httpx.get(server.url("/readyz"), timeout=10).status_code == 503
        event_ids = [send_event(server) for _ in range(3)]  # still accepted: the inbox is the store
        wait_for("the dispatches to fail", lambda: len(server.events("inbox.dispatch_failed")
                                                       + server.events("inbox.dispatch_skipped")) == 3 or None)
        assert server.store.inbox_backlog() == 3
    finally:
        server.stop()

    # The outage is over: a worker on the broker, and the sweep that the beat would run.
    server.root.joinpath("autofix.toml").write_text("")
    proc, log = start_worker(server)
    client = make_app(lambda: Settings(broker_url=BROKER))
    try:
        swept = client.send_task("workers.tasks.sweep_inbox", args=[0]).get(timeout=60)
        assert len(swept) == 3
        for event_id in event_ids:
            wait_for("the swept row", lambda e=event_id: server.store.get_event(e), timeout=60)
        assert server.store.inbox_backlog() == 0
        assert client.send_task("workers.tasks.sweep_inbox", args=[0]).get(timeout=60) == []
    finally:
        client.close()
        stop(proc)
