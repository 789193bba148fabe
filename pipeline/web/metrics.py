"""Prometheus metrics at /metrics, read at scrape time from the store and the broker.

Nothing is counted in process memory: every figure comes from the database (inbox rows, attempts)
or from Redis (queue lengths), which every web, worker and beat process on every machine shares.
So the numbers are the same whichever web process is scraped, and they are multiprocess-safe
without prometheus-client's PROMETHEUS_MULTIPROC_DIR (Celery's prefork pool would need it for
in-memory counters). Scrape one web process per deployment; the queries are a handful of
aggregates.

    autofix_events_received_total{status}   accepted payloads (inbox rows) by processing status
    autofix_inbox_backlog                   rows accepted, not processed yet
    autofix_queue_depth{queue}              messages waiting in the ingest and fix queues
    autofix_attempts_total{status,outcome}  fix attempts by how they ended (running, done, ...)
    autofix_attempts_running                attempts holding an issue now
    autofix_fix_latency_seconds             histogram of finished attempts' durations
    autofix_sandbox_runs_total              sandbox runs made by attempts
    autofix_attempt_tokens_total, autofix_attempt_cost_usd_total   spend recorded on attempts
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import structlog
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline.errors import AutofixError
from pipeline.web.runtime import Runtime, runtime_of

log = structlog.get_logger(__name__)
router = APIRouter(tags=["metrics"])

LATENCY_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
QUEUES = ("ingest", "fix")
# Kombu's Redis transport keeps each priority level of a queue in a list of its own.
_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")


def histogram(values: Iterable[float], buckets: tuple[float, ...] = LATENCY_BUCKETS) -> tuple[list[tuple[str, float]], float]:
    """Cumulative buckets (with +Inf) and the sum of the values."""
    values = list(values)
    counts = [(str(b), float(sum(1 for v in values if v <= b))) for b in buckets]
    return [*counts, ("+Inf", float(len(values)))], float(sum(values))


def queue_depths(broker_url: str) -> dict[str, int]:
    import redis

    client = redis.Redis.from_url(broker_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        return {q: sum(int(client.llen(q + suffix)) for suffix in _PRIORITY_SUFFIXES) for q in QUEUES}
    finally:
        client.close()


class StoreCollector(Collector):
    """A prometheus-client collector over the runtime's store and broker."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        store = self.runtime.deps.inbox_store
        received = CounterMetricFamily("autofix_events_received", "Accepted payloads (inbox rows) by status.",
                                       labels=["status"])
        for status, n in sorted(store.inbox_counts().items()):
            received.add_metric([status], n)
        yield received
        yield GaugeMetricFamily("autofix_inbox_backlog", "Accepted rows not processed yet.",
                                value=store.inbox_backlog())
        broker = self.runtime.settings.broker_url
        if broker:
            depth = GaugeMetricFamily("autofix_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
            try:
                for name, n in queue_depths(broker).items():
                    depth.add_metric([name], n)
            except Exception as exc:  # noqa: BLE001 - an unreachable broker must not fail the scrape
                log.warning("metrics.broker_unreachable", error=str(exc))
            yield depth
        attempts = CounterMetricFamily("autofix_attempts", "Fix attempts by status and outcome.",
                                       labels=["status", "outcome"])
        runs = running = 0
        for status, outcome, n, _seconds, sandbox_runs in store.attempt_totals():
            attempts.add_metric([status, outcome], n)
            runs += sandbox_runs
            running += n if status == "running" else 0
        yield attempts
        yield GaugeMetricFamily("autofix_attempts_running", "Attempts holding an issue now.", value=running)
        buckets, total = histogram(store.attempt_seconds())
        yield HistogramMetricFamily("autofix_fix_latency_seconds", "Duration of finished fix attempts.",
                                    buckets=buckets, sum_value=total)
        yield CounterMetricFamily("autofix_sandbox_runs", "Sandbox runs made by fix attempts.", value=runs)
        spent_tokens, spent_usd = store.attempt_spend()
        yield CounterMetricFamily("autofix_attempt_tokens", "LLM tokens recorded on attempts.", value=spent_tokens)
        yield CounterMetricFamily("autofix_attempt_cost_usd", "LLM cost recorded on attempts.", value=spent_usd)

    def describe(self) -> list[Metric]:
        return []  # collected only when scraped


def registry_of(runtime: Runtime) -> CollectorRegistry:
    registry: CollectorRegistry | None = getattr(runtime, "_metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StoreCollector(runtime))
        runtime._metrics_registry = registry  # type: ignore[attr-defined]
    return registry


@router.get("/metrics")
def metrics(request: Request) -> Response:  # sync: FastAPI runs it in a worker thread
    runtime = runtime_of(request)
    try:
        body = generate_latest(registry_of(runtime))
    except AutofixError as exc:
        return Response(f"# store unavailable: {exc}\n", status_code=503, media_type="text/plain")
    return Response(body, media_type=CONTENT_TYPE_LATEST)
