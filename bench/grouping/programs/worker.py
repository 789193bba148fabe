"""A host's job worker: runs queued grocer jobs and logs each failure's traceback, no Sentry.

    python worker.py LOG_FILE JOBS_JSON

Deployed beside the grocer package on each host (make_set.py installs both under a host-specific
prefix), so the log's tracebacks carry that host's paths.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

from grocer import cart, imports, reports

HANDLERS: dict[str, Callable[[Any], Any]] = {
    "checkout": cart.checkout,
    "shelf-labels": reports.shelf_labels,
    "import-row": imports.import_row,
}

log = logging.getLogger("grocer.worker")


def run(jobs: list[tuple[str, Any]]) -> int:
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


if __name__ == "__main__":
    logging.basicConfig(
        filename=sys.argv[1],
        filemode="w",
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(process)d [%(name)s] %(message)s",
    )
    log.info("worker starting with %d jobs", len(json.loads(sys.argv[2])))
    run(json.loads(sys.argv[2]))
