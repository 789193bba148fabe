"""The production runtime with real processes: `autofix serve`, Celery workers, beat, on real Redis.

Web to workers (serve stores into the inbox and sends the row's id; the beat's sweep sends what a
broker outage left pending), claims (one running attempt per issue), failures that leave the issue
retryable, and the beat's triage within its budgets. Redis is AUTOFIX_TEST_BROKER_URL, flushed
first, except in the outage test, which runs a redis-server of its own on a free port.
"""

# ruff: noqa: F811 - the fixtures of test_workers are imported, then named as parameters

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from helpers_serve import DSN_KEY, Server
from test_workers import (
    EVENT,
    EXAMPLES,
    TEST_COMMAND,
    Deployment,
    Worker,
    broker,  # noqa: F401 - fixtures
    client,  # noqa: F401
    deployment,  # noqa: F401
    send,
    wait_for,
)

from pipeline.ingest import ingest_paths
from pipeline.records import AttemptStatus, Budgets, CandidateStatus, ClaimRefused, Cost, IssueStatus, utcnow
from pipeline.triage import pick

AUTH = {"X-Sentry-Auth": f"Sentry sentry_key={DSN_KEY}, sentry_version=7"}


def start_worker_on(d: Deployment, queues: str) -> Worker:
    """A worker consuming only `queues` (Deployment.start_worker consumes both)."""
    log = d.root / f"worker-{len(d.workers)}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "worker", "--queues", queues, "--concurrency", "1",
                                 "--loglevel", "INFO"], cwd=d.root, env=d.env(), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    worker = Worker(proc, log)
    d.workers.append(worker)
    wait_for("the worker to be ready", lambda: proc.poll() is not None or " ready." in log.read_text(), 60)
    assert proc.poll() is None, log.read_text()
    return worker


def start_beat(d: Deployment) -> Worker:
    log = d.root / "beat.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "beat", "--loglevel", "INFO"], cwd=d.root,
                                env=d.env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    beat = Worker(proc, log)
    d.workers.append(beat)
    wait_for("the beat", lambda: proc.poll() is not None or "beat: Starting" in log.read_text(), 60)
    assert proc.poll() is None, log.read_text()
    return beat


def post_event(server: Server, payload: dict[str, Any]) -> httpx.Response:
    return httpx.post(server.url("/api/1/store/"), content=json.dumps(payload).encode(), headers=AUTH, timeout=30)


def events_copied(target: Path, name: str, copies: int) -> list[Path]:
    """`copies` files of one recorded event, each with an event id of its own."""
    payload = json.loads((EXAMPLES / "events" / name).read_text())
    paths = []
    for i in range(copies):
        payload["event_id"] = uuid.uuid4().hex
        path = target / f"{i}-{name}"
        path.write_text(json.dumps(payload))
        paths.append(path)
    return paths


def test_events_posted_to_the_web_app_reach_a_candidate_through_the_workers_once_however_often_sent(
    deployment: Deployment,
) -> None:
    deployment.configure(TEST_COMMAND)
    server = Server.start(deployment.root, env={"AUTOFIX_BROKER_URL": deployment.env()["AUTOFIX_BROKER_URL"],
                                                "AUTOFIX_SANDBOX": "bwrap"},
                          config=(deployment.root / "autofix.toml").read_text())
    try:
        workers = [deployment.start_worker(), deployment.start_worker()]
        payload = json.loads(EVENT.read_text())
        assert [post_event(server, payload).status_code for _ in range(5)] == [200] * 5  # one delivery, 5 times

        store = deployment.store()
        (queued,) = wait_for("a candidate awaiting review", lambda: store.list_candidates(CandidateStatus.AWAITING_REVIEW))
        wait_for("every row processed", lambda: store.inbox_backlog() == 0)
        (issue,) = store.list_issues()
        assert issue.count == 1 and len(store.events_for_issue(issue.fingerprint)) == 1
        assert issue.status is IssueStatus.AWAITING_REVIEW and queued.issue_fingerprint == issue.fingerprint
        (attempt,) = store.list_attempts(issue.fingerprint)
        assert (attempt.status, attempt.outcome) == (AttemptStatus.DONE, "verified") and attempt.sandbox_runs > 0
        assert sum(len(w.events("fix.attempted")) for w in workers) == 1
        assert {line["task"] for w in workers for line in w.events("inbox.processed")} == {"workers.tasks.process_inbox"}

        metrics = httpx.get(server.url("/metrics"), timeout=10).text
        assert 'autofix_events_received_total{status="processed"} 5.0' in metrics
        assert 'autofix_attempts_total{outcome="verified",status="done"} 1.0' in metrics
        assert "autofix_fix_latency_seconds_count 1.0" in metrics and 'autofix_queue_depth{queue="fix"} 0.0' in metrics
        store.close()
    finally:
        server.stop()


@pytest.mark.slow
def test_two_workers_given_the_same_issue_at_once_make_one_attempt_and_one_candidate(
    deployment: Deployment, client: Any
) -> None:
    deployment.configure(f"sleep 2; {TEST_COMMAND}")  # the attempts surely overlap
    store = deployment.store()
    (fingerprint,) = ingest_paths(store, [EVENT]).issues
    workers = [deployment.start_worker(), deployment.start_worker()]

    results = [send(client, "attempt_fix", fingerprint) for _ in range(2)]
    outcomes = sorted(r.get(timeout=120) for r in results)

    assert outcomes == ["another attempt of this issue is running", "verified"]
    assert len(store.list_attempts(fingerprint)) == 1
    assert len(store.list_candidates(CandidateStatus.AWAITING_REVIEW, fingerprint)) == 1
    assert sorted(len(w.events("fix.attempted")) for w in workers) == [0, 1]
    store.close()


@pytest.mark.slow
def test_an_unexpected_exception_fails_the_attempt_leaves_the_issue_retryable_and_a_later_run_fixes_it(
    deployment: Deployment, client: Any
) -> None:
    deployment.configure(TEST_COMMAND)
    with (deployment.root / "autofix.toml").open("a") as toml:
        toml.write("\n[budgets]\nretry_backoff_s = 2\nattempt_new_issues = false\n")
    store = deployment.store()
    (fingerprint,) = ingest_paths(store, [EVENT]).issues
    deployment.home.joinpath("worktrees").write_text("not a folder")  # mkdir fails: FileExistsError
    deployment.start_worker()

    first = send(client, "attempt_fix", fingerprint)
    first.get(timeout=60, propagate=False)

    assert first.state == "FAILURE" and "FileExistsError" in first.traceback
    (failed,) = store.list_attempts(fingerprint)
    assert failed.status is AttemptStatus.FAILED and (failed.error or "").startswith("FileExistsError")
    assert failed.retry_after is not None and failed.finished_at is not None
    issue = store.get_issue(fingerprint)
    assert issue is not None and issue.status is IssueStatus.TRIAGED  # never left in fixing
    assert send(client, "attempt_fix", fingerprint).get(timeout=30).startswith("backing off until")

    deployment.home.joinpath("worktrees").unlink()  # the cause goes away
    wait_for("the backoff to pass", lambda: utcnow() > failed.retry_after, timeout=30)  # type: ignore[operator]
    started = send(client, "run_triage", 5).get(timeout=30)
    assert started["started"] == [fingerprint]
    wait_for("the fix", lambda: store.list_candidates(CandidateStatus.AWAITING_REVIEW, fingerprint))
    ended = wait_for("the attempt to end", lambda: [a.status for a in store.list_attempts(fingerprint)
                                                    if a.status is not AttemptStatus.RUNNING][1:])
    assert ended == [AttemptStatus.DONE]
    store.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    def __init__(self, root: Path) -> None:
        self.port = _free_port()
        self.root = root
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.root)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = redis.Redis.from_url(self.url)

        def up() -> bool:
            try:
                return bool(probe.ping())
            except redis.ConnectionError:
                return False

        wait_for("redis-server", up, timeout=30, every=0.05)
        probe.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
def test_webhooks_arriving_while_redis_is_down_get_2xx_and_are_processed_exactly_once_when_it_is_back(
    tmp_path: Path, own_redis: RedisServer, repo_env_cache: Path
) -> None:
    d = Deployment(tmp_path, envs=repo_env_cache, extra_env={"AUTOFIX_BROKER_URL": own_redis.url})
    config = f'home = "{d.home}"\n\n[schedule]\nsweep_every_s = 1\nsweep_after_s = 1\ntriage_every_s = 3600\n'
    (tmp_path / "autofix.toml").write_text(config)
    server = Server.start(tmp_path, env={"AUTOFIX_BROKER_URL": own_redis.url}, config=config)
    try:
        d.start_worker()
        start_beat(d)

        def webhook() -> int:
            body = {"event_id": uuid.uuid4().hex, "message": "outage", "platform": "python"}
            return post_event(server, body).status_code

        statuses = [webhook() for _ in range(5)]
        own_redis.stop()
        statuses += [webhook() for _ in range(10)]  # the broker is down: still accepted
        own_redis.start()  # back, empty: the messages it held are gone
        statuses += [webhook() for _ in range(5)]
        assert statuses == [200] * 20

        store = d.store()
        wait_for("every row processed", lambda: store.inbox_counts() == {"processed": 20}, timeout=120)
        items = store.inbox_items(limit=100)
        assert [item.attempts for item in items] == [1] * 20  # each processed once
        (issue,) = store.list_issues()
        assert issue.count == 20 and len(store.events_for_issue(issue.fingerprint, limit=100)) == 20
        store.close()
    finally:
        server.stop()
        for process in d.workers:
            process.stop()


def triage_runs(workers: list[Worker]) -> list[dict[str, Any]]:
    return [line for w in workers for line in w.events("triage.started")]


@pytest.mark.slow
def test_the_beats_triage_starts_the_top_k_within_the_concurrency_bound_and_the_daily_budget(
    deployment: Deployment,
) -> None:
    deployment.configure(f"sleep 3; {TEST_COMMAND}")  # attempts last long enough for a few triage runs
    with (deployment.root / "autofix.toml").open("a") as toml:
        toml.write("\n[budgets]\nmax_concurrent_attempts = 2\ndaily_tokens = 1000\nattempt_new_issues = false\n"
                   "\n[schedule]\ntriage_every_s = 1\ntriage_top_k = 2\nsweep_every_s = 3600\n")
    store = deployment.store()
    spend = deployment.root / "spend.json"
    spend.write_text(json.dumps({"event_id": uuid.uuid4().hex, "message": "an LLM attempt", "platform": "python"}))
    paths = (events_copied(deployment.root, "3-profile-without-nickname.json", 3)
             + events_copied(deployment.root, "4-summary-of-empty-draft.json", 2)
             + events_copied(deployment.root, "5-summary-of-gift-card-order.json", 1))
    ingest_paths(store, [*paths, spend])
    ranked = [issue.fingerprint for issue in pick(store, 10)]
    assert len(ranked) == 3  # the message issue is never picked
    # As deployed: triage runs on an ingest worker, never queued behind the attempts it started.
    workers = [start_worker_on(deployment, "ingest"), start_worker_on(deployment, "fix"),
               start_worker_on(deployment, "fix")]
    beat = start_beat(deployment)

    bound = wait_for("a run held back by the concurrency bound", lambda: [
        r for r in triage_runs(workers) if "running, the most at once" in (r["stopped"] or "")])
    first = next(r for r in triage_runs(workers) if r["started"])
    assert first["started"] == ranked[:2]  # the top K, best first
    assert bound[0]["started"] == []
    beat.stop()
    wait_for("the two attempts to end", lambda: len(store.list_attempts(status=AttemptStatus.DONE)) == 2,
             timeout=120)
    assert {a.issue_fingerprint for a in store.list_attempts()} == set(ranked[:2])

    # Today's spend reaches the budget, as an LLM attempt records it on its attempt.
    (message,) = [i for i in store.list_issues() if i.fingerprint not in ranked]
    spent = store.claim_attempt(message.fingerprint, deployment_budgets())
    assert not isinstance(spent, ClaimRefused)
    store.finish_attempt(spent.id, AttemptStatus.DONE, IssueStatus.UNFIXABLE, outcome="no_fix",
                         cost=Cost(tokens=1000, usd=0.5))
    runs_before = len(triage_runs(workers))
    start_beat(deployment)
    stopped = wait_for("runs stopped by the budget", lambda: [
        r for r in triage_runs(workers)[runs_before:] if "token budget is spent" in (r["stopped"] or "")])
    assert stopped and all(r["started"] == [] for r in triage_runs(workers)[runs_before:])
    assert store.list_attempts(ranked[2]) == []
    store.close()


def deployment_budgets() -> Budgets:
    return Budgets(max_concurrent=2, max_per_issue=5, daily_tokens=1000)
