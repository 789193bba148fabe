"""Commands that run the production processes: worker and beat (Celery)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pipeline.cli._app import app, settings


def _exec_celery(*args: str) -> None:
    """Replace this process with `celery -A workers.app ...` (signals then reach Celery directly)."""
    import os

    from workers.app import require_broker

    require_broker(settings())  # a clear error here rather than a traceback from Celery
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", *args])


@app.command()
def worker(
    queues: Annotated[str, typer.Option(metavar="NAMES", help="Comma-separated queues to consume: ingest, fix.")] = "ingest,fix",
    concurrency: Annotated[int | None, typer.Option(metavar="N", help="Worker processes (default: one per CPU).")] = None,
    loglevel: Annotated[str, typer.Option(metavar="LEVEL", help="Celery's own log level.")] = "INFO",
) -> None:
    """Run a Celery worker (needs AUTOFIX_BROKER_URL, a Redis URL)."""
    extra = ["--concurrency", str(concurrency)] if concurrency else []
    _exec_celery("worker", "--queues", queues, "--loglevel", loglevel, *extra)


@app.command()
def beat(loglevel: Annotated[str, typer.Option(metavar="LEVEL", help="Celery's own log level.")] = "INFO") -> None:
    """Run the scheduler: periodic triage and pull-request sync (needs AUTOFIX_BROKER_URL)."""
    settings().home.mkdir(parents=True, exist_ok=True)  # beat keeps its schedule file there
    _exec_celery("beat", "--loglevel", loglevel)


