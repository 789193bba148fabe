"""The Celery layer with real worker processes (`autofix worker`) on the real Redis, not eager mode.

Redis is AUTOFIX_TEST_BROKER_URL (default: database 7 of the local server), flushed before each test.
Like the PostgreSQL tests, these fail when the server cannot be reached, so a broken setup is never
mistaken for a pass.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from pipeline.adapters.sql_store import SqlStore
from pipeline.ingest import ingest_paths
from pipeline.records import AttemptStatus, CandidateStatus, IssueStatus
from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EVENT = EXAMPLES / "events" / "3-profile-without-nickname.json"
BROKER = os.environ.get("AUTOFIX_TEST_BROKER_URL", "redis://127.0.0.1:6379/7")
TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"


def wait_for(what: str, check: Callable[[], Any], timeout: float = 90.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[dict[str, Any]]:
        """The structlog JSON lines the worker wrote (Celery's own lines are plain text)."""
        text = self.log.read_text(errors="replace")
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    def pool_processes(self) -> list[int]:
        found = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        return [int(pid) for pid in found.stdout.split()]

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once, as a lost machine would."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class Deployment:
    """A configured autofix home with its repo and remote; starts workers on it."""

    root: Path
    visibility_timeout_s: int = 3600
    envs: Path | None = None  # a repo-environment cache shared across tests, so attempts stay short
    workers: list[Worker] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def remote(self) -> Path:
        return self.root / "remote.git"

    def configure(self, test_command: str) -> None:
        from pipeline.demo import prepare_repo

        repo, remote = prepare_repo(EXAMPLES, self.root)
        (self.root / "autofix.toml").write_text(
            f'home = "{self.home}"\n\n[[repos]]\nname = "shop"\npath = "{repo}"\nremote_url = "{remote}"\n'
            f"test_command = {json.dumps(test_command)}\n"
            + (f'\n[repo_env]\ncache_dir = "{self.envs}"\n' if self.envs else "")
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
        # bwrap: these tests are about delivery; tests/contract/ covers the docker backend.
        env.update(AUTOFIX_SANDBOX="bwrap", AUTOFIX_HOME=str(self.home), AUTOFIX_CONFIG=str(self.root / "autofix.toml"),
                   AUTOFIX_BROKER_URL=BROKER, AUTOFIX_BROKER_VISIBILITY_TIMEOUT_S=str(self.visibility_timeout_s))
        env.update(self.extra_env)
        return env

    def start_worker(self) -> Worker:
        log = self.root / f"worker-{len(self.workers)}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline", "worker", "--concurrency", "1", "--loglevel", "INFO"],
                cwd=self.root, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: one killpg reaches the pool too
            )
        worker = Worker(proc, log)
        self.workers.append(worker)
        wait_for("the worker to be ready", lambda: proc.poll() is not None or " ready." in log.read_text(), 60)
        assert proc.poll() is None, log.read_text()
        return worker

    def store(self) -> SqlStore:
        self.home.mkdir(parents=True, exist_ok=True)
        return SqlStore(f"sqlite:///{self.home / 'autofix.db'}")


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


@pytest.fixture
def client(broker: redis.Redis) -> Iterator[Any]:
    """A Celery app configured like the workers', for sending tasks and reading their results."""
    from workers.app import make_app

    app = make_app(lambda: Settings(broker_url=BROKER))
    yield app
    app.close()


@pytest.fixture
def deployment(tmp_path: Path, broker: redis.Redis, repo_env_cache: Path) -> Iterator[Deployment]:
    deployment = Deployment(tmp_path, envs=repo_env_cache)
    yield deployment
    for worker in deployment.workers:
        worker.stop()


def send(client: Any, task: str, *args: Any) -> Any:
    return client.send_task(f"workers.tasks.{task}", args=list(args))


def test_fix_tasks_are_routed_to_the_fix_queue_and_the_rest_to_ingest(client: Any) -> None:
    route = client.amqp.router.route
    assert route({}, "workers.tasks.attempt_fix")["queue"].name == "fix"
    assert route({}, "workers.tasks.publish_candidate")["queue"].name == "fix"
    assert route({}, "workers.tasks.ingest_event")["queue"].name == "ingest"
    assert route({}, "workers.tasks.run_triage")["queue"].name == "ingest"


def test_the_worker_command_without_a_broker_url_says_how_to_set_it(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    result = subprocess.run([sys.executable, "-m", "pipeline", "worker"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "AUTOFIX_BROKER_URL is not set" in result.stderr


def test_a_chosen_sandbox_that_cannot_run_fails_the_attempt_without_retries_and_leaves_the_issue_retryable(
    deployment: Deployment, client: Any
) -> None:
    deployment.configure(TEST_COMMAND)
    deployment.extra_env = {"AUTOFIX_SANDBOX": "docker", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    worker = deployment.start_worker()
    ingested = send(client, "ingest_event", json.loads(EVENT.read_text()), EVENT.name).get(timeout=30)
    (fingerprint,) = ingested["enqueued"]  # its attempt_fix runs and fails
    store = deployment.store()
    (failed,) = wait_for("the failed attempt", lambda: store.list_attempts(fingerprint, AttemptStatus.FAILED))

    assert "no container engine answers" in (failed.error or "") and failed.retry_after is not None
    issue = store.get_issue(fingerprint)
    assert issue is not None and issue.status is IssueStatus.TRIAGED  # not unfixable: not the issue's fault
    again = send(client, "attempt_fix", fingerprint).get(timeout=30)
    assert again.startswith("backing off until")
    store.close()
    assert "Retry in" not in worker.log.read_text()  # permanent: no retry installs a container engine


@pytest.mark.slow
def test_a_recorded_event_is_fixed_and_published_once_however_often_its_tasks_are_delivered(
    deployment: Deployment, client: Any
) -> None:
    deployment.configure(TEST_COMMAND)
    worker = deployment.start_worker()
    payload = json.loads(EVENT.read_text())

    ingested = send(client, "ingest_event", payload, EVENT.name).get(timeout=30)
    assert len(ingested["stored"]) == 1 and ingested["duplicates"] == []
    (fingerprint,) = ingested["enqueued"]
    store = deployment.store()
    queued = wait_for("a candidate awaiting review",
                      lambda: store.list_candidates(CandidateStatus.AWAITING_REVIEW, fingerprint))
    before = {c.id: c.created_at for c in store.list_candidates(issue_fingerprint=fingerprint)}

    again = [send(client, "attempt_fix", fingerprint) for _ in range(2)]
    assert [r.get(timeout=30) for r in again] == [f"{len(queued)} candidate(s) already awaiting review"] * 2
    assert {c.id: c.created_at for c in store.list_candidates(issue_fingerprint=fingerprint)} == before
    assert len(worker.events("fix.attempted")) == 1

    duplicate = send(client, "ingest_event", payload, EVENT.name).get(timeout=30)
    assert duplicate == {"stored": [], "duplicates": ingested["stored"], "enqueued": []}
    issue = store.get_issue(fingerprint)
    assert issue is not None and issue.count == 1
    assert len(store.events_for_issue(fingerprint)) == 1
    assert send(client, "run_triage", 10).get(timeout=30)["started"] == []  # an issue under review is not re-attempted

    candidate_id = queued[0].id
    published = send(client, "publish_candidate", candidate_id, "tester").get(timeout=60)
    pr = store.get_pull_request(candidate_id)
    assert pr is not None and pr.branch == published["branch"] and pr.state == "open"
    heads = subprocess.run(["git", "ls-remote", "--heads", str(deployment.remote)], capture_output=True,
                           text=True, check=True).stdout
    assert f"{pr.commit_sha}\trefs/heads/{pr.branch}" in heads.splitlines()
    assert send(client, "publish_candidate", candidate_id, "tester").get(timeout=60) == published

    assert send(client, "sync_pull_requests").get(timeout=60) == {}  # still open
    subprocess.run(["git", "update-ref", "refs/heads/main", pr.commit_sha], cwd=deployment.remote, check=True)
    assert send(client, "sync_pull_requests").get(timeout=60) == {candidate_id: "merged"}
    merged = store.get_pull_request(candidate_id)
    assert merged is not None and merged.state == "merged"
    issue = store.get_issue(fingerprint)
    assert issue is not None and issue.status is IssueStatus.MERGED
    store.close()


@pytest.mark.slow
def test_a_fix_cut_off_by_a_killed_worker_is_redelivered_to_the_next_worker_and_completes_once(
    deployment: Deployment, client: Any, broker: redis.Redis
) -> None:
    # The repo's tests sleep, so the attempt is surely still running when the worker is killed; the
    # visibility timeout is short enough to wait out, and longer than the whole attempt.
    deployment.visibility_timeout_s = 15
    deployment.configure(f"sleep 2; {TEST_COMMAND}")
    store = deployment.store()
    (fingerprint,) = ingest_paths(store, [EVENT]).issues
    first = deployment.start_worker()

    result = send(client, "attempt_fix", fingerprint)
    wait_for("the attempt to start", lambda: (i := store.get_issue(fingerprint)) and i.status is IssueStatus.FIXING,
             timeout=30, every=0.1)
    first.kill()
    issue = store.get_issue(fingerprint)
    assert issue is not None and issue.status is IssueStatus.FIXING
    assert store.list_candidates(issue_fingerprint=fingerprint) == []  # cut off before saving anything
    assert broker.hlen("unacked") == 1  # delivered, never acknowledged

    second = deployment.start_worker()
    assert result.get(timeout=60) == "verified"
    candidates = store.list_candidates(issue_fingerprint=fingerprint)
    assert [c.status for c in candidates].count(CandidateStatus.AWAITING_REVIEW) == 1
    issue = store.get_issue(fingerprint)
    assert issue is not None and issue.status is IssueStatus.AWAITING_REVIEW
    assert first.events("fix.attempted") == []
    (attempted,) = second.events("fix.attempted")
    assert attempted["task_id"] == result.id and attempted["redelivered"] is True
    # Acknowledged and gone: nothing is left for a later sweep to deliver a third time. Celery
    # stores the result before it acknowledges, so the acknowledgement may land just after get().
    wait_for("the acknowledgement", lambda: broker.hlen("unacked") == 0, timeout=30)
    assert broker.llen("fix") == 0
    store.close()


@pytest.mark.slow
def test_a_fix_whose_pool_process_dies_is_requeued_by_its_own_worker_and_completes_once(
    deployment: Deployment, client: Any, broker: redis.Redis
) -> None:
    # The visibility timeout stays at an hour: only task_reject_on_worker_lost can bring this task back.
    deployment.configure(f"sleep 2; {TEST_COMMAND}")
    store = deployment.store()
    (fingerprint,) = ingest_paths(store, [EVENT]).issues
    worker = deployment.start_worker()

    result = send(client, "attempt_fix", fingerprint)
    wait_for("the attempt to start", lambda: (i := store.get_issue(fingerprint)) and i.status is IssueStatus.FIXING,
             timeout=30, every=0.1)
    (pool_process,) = worker.pool_processes()
    os.kill(pool_process, signal.SIGKILL)
    assert result.get(timeout=60) == "verified"

    candidates = store.list_candidates(issue_fingerprint=fingerprint)
    assert [c.status for c in candidates].count(CandidateStatus.AWAITING_REVIEW) == 1
    (attempted,) = worker.events("fix.attempted")
    assert attempted["task_id"] == result.id and attempted["redelivered"] is True
    assert worker.pool_processes() != [pool_process]  # the worker replaced the process it lost
    wait_for("the acknowledgement", lambda: broker.hlen("unacked") == 0, timeout=30)
    assert broker.llen("fix") == 0
    store.close()
