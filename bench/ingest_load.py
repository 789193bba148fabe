"""Ingestion load: how fast `autofix serve` accepts events, next to a no-op endpoint served the same way.

    .venv/bin/python bench/ingest_load.py [--requests 10000] [--webhooks 2000] [--concurrency 64]
                    [--rounds 10] [--encoding gzip|br|identity] [--store-url URL] [--json]

One server process (the app of `autofix serve`, built by create_app and served by
pipeline.web.server.run, plus one route that reads the body and answers, doing nothing else) and
this process as the client, over loopback, with keep-alive connections and a bounded number of
requests. Three endpoints: the no-op, the envelope endpoint (real sentry-sdk events from
examples/events, each with its own event id, compressed like the SDK does) and the integration
webhook (signed error.created deliveries); they take turns for `--rounds` rounds, so that the load
of other processes on a shared machine falls on each alike. The request bodies are built before
the clock starts. Then it waits for the inbox to drain and checks that every accepted event was stored
and grouped. Reports requests/s, latency p50/p99, the server's CPU per request, the envelope/no-op
ratio, and how long the backlog took to drain after the last request.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import hmac
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fastapi import APIRouter, Request, Response

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DSN_KEY = "benchbenchbenchbenchbenchbench00"
SECRET = "bench-client-secret"
_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


# --- the server process ----------------------------------------------------------------------------


async def noop(project_id: str, request: Request) -> Response:
    """The comparison endpoint: reads the body and answers, as the real one does, and nothing else."""
    await request.body()
    return Response(b'{"id":"00000000000000000000000000000000"}', media_type="application/json")


def serve(home: Path, store_url: str | None) -> None:
    from pipeline import logging_setup
    from pipeline.settings import Settings
    from pipeline.web.app import create_app
    from pipeline.web.server import bind, run

    logging_setup.configure(os.environ.get("BENCH_SERVE_LOG", "info"), "json")  # the parent reads server.listening from the log
    settings = Settings(home=home, store_url=store_url, sentry_dsn_keys=DSN_KEY, sentry_client_secret=SECRET,
                        ingest_max_backlog=1_000_000, broker_url=None, repos=[])
    app = create_app(settings)
    # Served the same way as the envelope endpoint: a router of its own, matched where the ingest
    # router is (first); added last, it would pay for matching every other route of the app first.
    noop_router = APIRouter()
    noop_router.add_api_route("/api/{project_id}/noop/", noop, methods=["POST"])
    app.include_router(noop_router)
    routes = app.router.routes
    first_router = next(i for i, r in enumerate(routes) if not hasattr(r, "path"))
    routes.insert(first_router, routes.pop())
    run(app, bind("127.0.0.1", 0))


# --- request bodies --------------------------------------------------------------------------------


def _compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body, compresslevel=6)
    if encoding == "br":
        import brotli

        return bytes(brotli.compress(body, quality=4))  # the SDK's brotli quality
    return body


def envelope_requests(n: int, encoding: str) -> tuple[list[bytes], set[str]]:
    templates = [json.loads(p.read_text()) for p in sorted((ROOT / "examples" / "events").glob("*.json"))]
    requests, ids = [], set()
    for i in range(n):
        event = dict(templates[i % len(templates)])
        event["event_id"] = uuid.uuid4().hex
        ids.add(event["event_id"])
        payload = json.dumps(event).encode()
        body = (json.dumps({"event_id": event["event_id"], "sent_at": "2026-12-01T00:00:00Z",
                            "sdk": {"name": "sentry.python", "version": "2.75.0"}}).encode() + b"\n"
                + json.dumps({"type": "event", "content_type": "application/json", "length": len(payload)}).encode()
                + b"\n" + payload + b"\n")
        body = _compress(body, encoding)
        head = ("POST /api/1/envelope/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"X-Sentry-Auth: Sentry sentry_key={DSN_KEY}, sentry_version=7, sentry_client=sentry.python/2.75.0\r\n"
                "Content-Type: application/x-sentry-envelope\r\n"
                + (f"Content-Encoding: {encoding}\r\n" if encoding != "identity" else "")
                + f"Content-Length: {len(body)}\r\n\r\n")
        requests.append(head.encode() + body)
    return requests, ids


def noop_requests(envelopes: list[bytes]) -> list[bytes]:
    return [r.replace(b"POST /api/1/envelope/", b"POST /api/1/noop/", 1) for r in envelopes]


def webhook_requests(n: int) -> tuple[list[bytes], set[str]]:
    template = json.loads((ROOT / "tests" / "data" / "webhook_error_created.json").read_text())
    requests, ids = [], set()
    for _ in range(n):
        event_id = uuid.uuid4().hex
        ids.add(event_id)
        payload = json.loads(json.dumps(template))
        payload["data"]["error"]["event_id"] = event_id
        body = json.dumps(payload).encode()
        signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        head = ("POST /webhooks/sentry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Request-ID: {uuid.uuid4()}\r\nSentry-Hook-Resource: error\r\n"
                f"Sentry-Hook-Timestamp: {int(time.time())}\r\nSentry-Hook-Signature: {signature}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        requests.append(head.encode() + body)
    return requests, ids


# --- the client ------------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    requests: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float
    statuses: dict[str, int]
    server_cpu_ms_per_request: float
    body_bytes_mean: int
    processed_meanwhile: int = 0  # inbox rows processed by the server while this phase ran


async def _connection(port: int, requests: list[bytes], cursor: list[int], latencies: list[float],
                      statuses: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while cursor[0] < len(requests):
            request = requests[cursor[0]]
            cursor[0] += 1
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            match = _LENGTH.search(head)
            await reader.readexactly(int(match.group(1)) if match else 0)
            latencies.append(time.perf_counter() - started)
            status = head[9:12].decode()
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


@dataclass
class _Tally:
    """One endpoint's requests across the rounds."""

    name: str
    seconds: float = 0.0
    cpu_s: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    bodies: list[int] = field(default_factory=list)
    processed_meanwhile: int = 0

    def phase(self) -> Phase:
        n = len(self.latencies)
        ordered = sorted(self.latencies)
        return Phase(self.name, n, round(self.seconds, 3), round(n / self.seconds, 1),
                     round(statistics.median(ordered) * 1000, 2), round(ordered[min(n - 1, int(n * 0.99))] * 1000, 2),
                     self.statuses, round(self.cpu_s * 1000 / n, 3), int(statistics.mean(self.bodies)),
                     self.processed_meanwhile)


def run_slice(tally: _Tally, port: int, pid: int, requests: list[bytes], concurrency: int) -> None:
    cursor = [0]

    async def drive() -> None:
        await asyncio.gather(*(_connection(port, requests, cursor, tally.latencies, tally.statuses)
                               for _ in range(concurrency)))

    cpu_before = _cpu_s(pid)
    started = time.perf_counter()
    asyncio.run(drive())
    tally.seconds += time.perf_counter() - started
    tally.cpu_s += _cpu_s(pid) - cpu_before
    tally.bodies.extend(len(r.split(b"\r\n\r\n", 1)[1]) for r in requests)


def slices(requests: list[bytes], rounds: int) -> list[list[bytes]]:
    size = -(-len(requests) // rounds)
    return [requests[i : i + size] for i in range(0, len(requests), size)]


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Report:
    store: str
    encoding: str
    concurrency: int
    phases: list[Phase] = field(default_factory=list)
    envelope_vs_noop: float = 0.0
    accepted_events: int = 0
    stored_events: int = 0
    issues: int = 0
    failed_items: int = 0
    backlog_at_end: int = 0  # rows still pending when the last request was answered
    drained_after_s: float = 0.0
    drain_per_second: float = 0.0  # how fast that backlog was processed
    machine: str = ""
    load_average: str = ""  # the machine is shared: the 1-minute load average before and after


def start_server(home: Path, store_url: str | None, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    args = [sys.executable, __file__, "serve", "--home", str(home)] + (["--store-url", store_url] if store_url else [])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if '"server.started"' in line:
                port = next(json.loads(x)["port"] for x in log.read_text().splitlines() if '"server.listening"' in x)
                return proc, int(port)
        if proc.poll() is not None:
            raise SystemExit(f"the server exited:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    raise SystemExit("the server did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", default="load", choices=["load", "serve"])
    parser.add_argument("--home", type=Path)
    parser.add_argument("--store-url")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--webhooks", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10, help="turns the endpoints take, interleaved")
    parser.add_argument("--encoding", choices=["gzip", "br", "identity"], default="gzip")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.mode == "serve":
        serve(args.home, args.store_url)
        return 0


    from pipeline import logging_setup
    from pipeline.adapters.sql_store import SqlStore

    logging_setup.configure("warning")  # stderr: with --json, stdout holds only the report
    work = Path(tempfile.mkdtemp(prefix="autofix-ingest-load-"))
    home = work / "home"
    store_url = args.store_url or f"sqlite:///{home / 'autofix.db'}"
    envelopes, envelope_ids = envelope_requests(args.requests, args.encoding)
    noops = noop_requests(envelopes)
    webhooks, webhook_ids = webhook_requests(args.webhooks)
    proc, port = start_server(home, args.store_url, work / "serve.log")
    report = Report(store=store_url.split(":", 1)[0], encoding=args.encoding, concurrency=args.concurrency,
                    machine=f"{os.cpu_count()} cores, {sys.platform}, Python {sys.version.split()[0]}")
    store = SqlStore(store_url)
    load_before = os.getloadavg()[0]
    try:
        run_slice(_Tally("warm-up"), port, proc.pid, noops[:500], args.concurrency)
        # The machine is shared: the endpoints take turns, round after round, so that a change in
        # the load of others falls on all of them alike.
        tallies = {name: _Tally(name) for name in ("no-op", "envelope", "webhook")}
        parts = {"no-op": slices(noops, args.rounds), "envelope": slices(envelopes, args.rounds),
                 "webhook": slices(webhooks, args.rounds) if webhooks else []}
        for round_ in range(args.rounds):
            for name, tally in tallies.items():
                if round_ < len(parts[name]):
                    before = store.inbox_counts().get("processed", 0)
                    run_slice(tally, port, proc.pid, parts[name][round_], args.concurrency)
                    tally.processed_meanwhile += store.inbox_counts().get("processed", 0) - before
        report.phases = [t.phase() for t in tallies.values() if t.latencies]
        last_accept = time.monotonic()
        report.backlog_at_end = store.inbox_backlog()
        while store.inbox_backlog() > 0:
            time.sleep(0.1)
        drained = time.monotonic()
        report.drained_after_s = round(drained - last_accept, 2)
        accepted = [p.statuses.get("200", 0) for p in report.phases if p.name in ("envelope", "webhook")]
        report.accepted_events = sum(accepted)
        report.drain_per_second = round(report.backlog_at_end / max(drained - last_accept, 1e-9), 1)
        issues = store.list_issues()
        report.issues = len(issues)
        report.stored_events = sum(i.count for i in issues)
        report.failed_items = store.inbox_counts().get("failed", 0)
        noop, envelope = report.phases[0], report.phases[1]
        report.envelope_vs_noop = round(envelope.per_second / noop.per_second, 3)
        report.load_average = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
        expected = len(envelope_ids | webhook_ids)
        missing = expected - report.stored_events
    finally:
        store.close()
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print(markdown(report))
    if missing or report.failed_items:
        print(f"NOT ALL PROCESSED: {missing} event(s) missing, {report.failed_items} failed item(s)", file=sys.stderr)
        return 1
    return 0


def markdown(report: Report) -> str:
    lines = [f"store {report.store}, bodies {report.encoding}, {report.concurrency} connections, {report.machine}, "
             f"load average {report.load_average}",
             "", "| endpoint | requests | req/s | p50 ms | p99 ms | server CPU ms/req | mean body bytes | statuses "
                 "| processed meanwhile |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in report.phases:
        lines.append(f"| {p.name} | {p.requests} | {p.per_second:.0f} | {p.p50_ms} | {p.p99_ms} | "
                     f"{p.server_cpu_ms_per_request} | {p.body_bytes_mean} | {p.statuses} | {p.processed_meanwhile} |")
    lines += ["", f"envelope / no-op: {report.envelope_vs_noop:.2f}; accepted {report.accepted_events} events, "
                  f"stored {report.stored_events} in {report.issues} issues, {report.failed_items} failed; "
                  f"{report.backlog_at_end} still pending after the last request, drained "
                  f"{report.drained_after_s} s later ({report.drain_per_second:.0f} events/s)"]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
