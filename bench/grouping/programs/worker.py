"""A host's job worker: runs queued grocer jobs and logs each failure, no Sentry.

    python worker.py LOG_FILE JOBS_JSON [FORMAT]

FORMAT is how the host logs: `plain` (the logging module's text lines, the default), `structlog`
(structlog's JSONRenderer with format_exc_info: the traceback as text in "exception"),
`structlog-dict` (structlog's dict_tracebacks: the traceback as a list of frames),
`json-logger` (python-json-logger: the traceback as text in "exc_info"). structlog renders the
grocer modules' own logging calls too (ProcessorFormatter), as an application configured for
JSON logs does. make_set.py installs the worker and the grocer package under a host-specific
prefix, so the log's tracebacks carry that host's paths.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from grocer import cart, imports, payments, reports, stock

HANDLERS: dict[str, Callable[[Any], Any]] = {
    "checkout": cart.checkout,
    "shelf-labels": reports.shelf_labels,
    "import-row": imports.import_row,
    "reserve-stock": stock.reserve,
    "settle-payment": payments.settle,
}


def run(jobs: list[tuple[str, Any]], log: Any) -> int:
    failed = 0
    for name, payload in jobs:
        try:
            HANDLERS[name](payload)
        except Exception:  # noqa: BLE001 - a worker logs whatever escapes and takes the next job
            log.exception("job %s failed", name)
            failed += 1
        else:
            log.info("job %s done", name)
    return failed


def plain(path: str) -> Any:
    logging.basicConfig(
        filename=path,
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(process)d [%(name)s] %(message)s",
    )
    return logging.getLogger("grocer.worker")


def json_logger(path: str) -> Any:
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(handlers=[handler], level=logging.INFO)
    return logging.getLogger("grocer.worker")


def structured(path: str, dict_tracebacks: bool) -> Any:
    import structlog

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared = [structlog.stdlib.add_log_level, structlog.stdlib.add_logger_name, timestamper]
    exceptions = structlog.processors.dict_tracebacks if dict_tracebacks else structlog.processors.format_exc_info
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, exceptions,
                    structlog.processors.JSONRenderer()],
    ))
    logging.basicConfig(handlers=[handler], level=logging.INFO)
    structlog.configure(
        processors=[*shared, structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    return structlog.stdlib.get_logger("grocer.worker")


FORMATS: dict[str, Callable[[str], Any]] = {
    "plain": plain,
    "json-logger": json_logger,
    "structlog": lambda path: structured(path, dict_tracebacks=False),
    "structlog-dict": lambda path: structured(path, dict_tracebacks=True),
}

if __name__ == "__main__":
    jobs = json.loads(sys.argv[2])
    log = FORMATS[sys.argv[3] if len(sys.argv) > 3 else "plain"](sys.argv[1])
    log.info("worker starting with %d jobs", len(jobs))
    run(jobs, log)
