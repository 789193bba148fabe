"""Pipeline throughput: events/s from webhook to grouped issue with 1, 2 and 4 worker processes.

    .venv/bin/python bench/pipeline_throughput.py [--events 2000] [--workers 1,2,4] [--concurrency 32]
                    [--broker redis://127.0.0.1:6379/14] [--store-url URL] [--json]

For each worker count: a fresh store (a new PostgreSQL schema by default, as deployed; SQLite with
--store-url sqlite:///...), a flushed Redis database, one `autofix serve` process with
ingest_processing = "celery", and N `autofix worker --queues ingest --concurrency 1` processes.
The client posts `--events` Sentry events (the recorded examples, each with an event id of its own)
to /api/1/store/, `--concurrency` at a time, and the clock runs from the first request until every
inbox row is processed (event normalised, scrubbed, grouped and stored). Reported: events/s end to
end, the accept rate of the web process alone, and the load average before and after (the machine
may be shared). Fix attempts are off (budgets.attempt_new_issues = false): this measures ingestion.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DSN_KEY = "benchbenchbenchbenchbenchbench00"
T = TypeVar("T")
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass
class Run:
    workers: int
    events: int
    accept_s: float
    total_s: float
    accepted_per_s: float
    events_per_s: float
    issues: int
    load_before: float
    load_after: float


def fresh_postgres(base: str) -> tuple[str, str]:
    from sqlalchemy import create_engine, make_url, text

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def drop_postgres(base: str, schema: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def start(args: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def wait(what: str, check: Callable[[], T | None], timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def listening_port(log: Path) -> int:
    def port() -> int | None:
        for line in log.read_text().splitlines():
            if '"server.listening"' in line:
                return int(json.loads(line)["port"])
        return None

    return wait("the server", port)


def bodies(n: int) -> list[bytes]:
    templates = [json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "events").glob("*.json"))]
    out = []
    for i in range(n):
        event = dict(templates[i % len(templates)])
        event["event_id"] = uuid.uuid4().hex
        out.append(json.dumps(event).encode())
    return out


async def post_all(url: str, payloads: list[bytes], concurrency: int) -> None:
    headers = {"X-Sentry-Auth": f"Sentry sentry_key={DSN_KEY}, sentry_version=7",
               "Content-Type": "application/json"}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in payloads:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        async def one() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await client.post(url, content=body, headers=headers)
                if response.status_code != 200:
                    raise SystemExit(f"{response.status_code}: {response.text[:200]}")

        await asyncio.gather(*(one() for _ in range(concurrency)))


def run_once(workers: int, events: int, concurrency: int, broker: str, store_url: str | None) -> Run:
    from pipeline.adapters.sql_store import SqlStore

    redis.Redis.from_url(broker).flushdb()
    schema = None
    with tempfile.TemporaryDirectory(prefix="autofix-throughput-") as tmp:
        root = Path(tmp)
        if store_url is None:
            url, schema = fresh_postgres(POSTGRES)
        else:
            url = store_url
        (root / "autofix.toml").write_text(
            f'home = "{root / "home"}"\ningest_processing = "celery"\n'
            "[budgets]\nattempt_new_issues = false\n[schedule]\ntriage_every_s = 86400\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
        env.update(AUTOFIX_CONFIG=str(root / "autofix.toml"), AUTOFIX_STORE_URL=url, AUTOFIX_BROKER_URL=broker,
                   AUTOFIX_SENTRY_DSN_KEYS=DSN_KEY, AUTOFIX_INGEST_MAX_BACKLOG="1000000",
                   AUTOFIX_LOG_LEVEL="warning")
        store = SqlStore(url)
        store.migrate()
        procs = []
        try:
            serve_log = root / "serve.log"
            env_serve = {**env, "AUTOFIX_LOG_LEVEL": "info"}
            procs.append(start(["serve", "--port", "0"], env_serve, serve_log, root))
            port = listening_port(serve_log)
            for i in range(workers):
                log = root / f"worker-{i}.log"
                procs.append(start(["worker", "--queues", "ingest", "--concurrency", "1", "--loglevel", "WARNING"],
                                   env, log, root))
            from pipeline.settings import Settings
            from workers.app import make_app

            control = make_app(lambda: Settings(broker_url=broker))
            wait("the workers", lambda: len(control.control.ping(timeout=1.0)) >= workers)  # not on the clock
            control.close()
            payloads = bodies(events)
            load_before = os.getloadavg()[0]
            started = time.monotonic()
            asyncio.run(post_all(f"http://127.0.0.1:{port}/api/1/store/", payloads, concurrency))
            accepted = time.monotonic() - started
            wait("every row processed", lambda: store.inbox_counts().get("processed", 0) >= events, timeout=1800)
            total = time.monotonic() - started
            load_after = os.getloadavg()[0]
            issues = len(store.list_issues())
        finally:
            for proc in procs:
                stop(proc)
            store.close()
            if schema is not None:
                drop_postgres(POSTGRES, schema)
    return Run(workers, events, round(accepted, 2), round(total, 2), round(events / accepted, 1),
               round(events / total, 1), issues, round(load_before, 2), round(load_after, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--store-url", default=None, help="default: a fresh schema of the local PostgreSQL")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = []
    for n in (int(x) for x in args.workers.split(",")):
        run = run_once(n, args.events, args.concurrency, args.broker, args.store_url)
        print(json.dumps(asdict(run)), file=sys.stderr)
        runs.append(run)
    if args.json:
        print(json.dumps([asdict(r) for r in runs], indent=2))
        return
    print("| worker processes | events | accepted/s (web) | events/s (webhook to grouped issue) | seconds | load before/after |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in runs:
        print(f"| {r.workers} | {r.events} | {r.accepted_per_s} | {r.events_per_s} | {r.total_s} | "
              f"{r.load_before}/{r.load_after} |")


if __name__ == "__main__":
    main()
