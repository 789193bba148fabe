"""How fast log files are read: lines/s and tracebacks/s, parsing alone and ingesting into a store.

    .venv/bin/python bench/log_ingest.py [--lines 100000] [--store URL] [--json]

Writes a log of LINES lines with the real logging module (bench/log_writer.py: info lines, error
lines, three kinds of real traceback), then measures three things on it:

- parse: pipeline.sources.logs.scan_log over the whole file (tracebacks, records, error lines);
- ingest: parse, mark, scrub, group and store every event (pipeline.ingest, as `autofix ingest`),
  into a fresh SQLite file in a temporary AUTOFIX_HOME unless --store names another store;
- follow: the follower (pipeline.sources.follow) catching up on the same file from its start.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pipeline.adapters.sql_store import SqlStore
from pipeline.ingest import ingest_events
from pipeline.log_templates import Templates
from pipeline.records import ErrorEvent
from pipeline.source_lines import SourceLines
from pipeline.sources.follow import Follower
from pipeline.sources.in_app import InAppRules
from pipeline.sources.logs import scan_log


def write_log(path: Path, lines: int) -> dict[str, Any]:
    status = path.with_suffix(".status.json")
    subprocess.run([sys.executable, str(HERE / "log_writer.py"), str(path), str(lines), "--status", str(status)],
                   check=True, timeout=600)
    written: dict[str, Any] = json.loads(status.read_text())
    return written


def measure(lines: int, store_url: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="log-ingest-") as tmp:
        work = Path(tmp)
        log = work / "app.log"
        written = write_log(log, lines)
        data = log.read_bytes()

        started = time.perf_counter()
        scan = scan_log(data, str(log))
        parse_s = time.perf_counter() - started

        def fresh_store(name: str) -> SqlStore:
            return SqlStore(store_url or f"sqlite:///{work / name}")

        store = fresh_store("ingest.db")
        store.migrate()
        started = time.perf_counter()
        report = ingest_events(store, scan_log(log.read_bytes(), str(log)).events, InAppRules(),
                               Templates(work / "ingest-home"), SourceLines(work / "ingest-home"))
        ingest_s = time.perf_counter() - started
        store.close()

        follow_store = fresh_store("follow.db")
        follow_store.migrate()
        templates, source_lines = Templates(work / "follow-home"), SourceLines(work / "follow-home")
        def record(events: list[ErrorEvent]) -> None:
            ingest_events(follow_store, events, InAppRules(), templates, source_lines)

        follower = Follower(log, follow_store, record, poll_s=0.05, idle_flush_s=0.2)
        stop = threading.Event()
        started = time.perf_counter()
        thread = threading.Thread(target=follower.run, args=(stop,))
        thread.start()
        expected = written["tracebacks"] + written["errors"]
        while follower.report.events < expected and thread.is_alive():
            time.sleep(0.02)
        follow_s = time.perf_counter() - started
        stop.set()
        thread.join()
        follow_store.close()

    tracebacks = sum(1 for e in scan.events if e.exceptions)
    return {
        "lines": written["lines"], "bytes": len(data), "tracebacks": tracebacks,
        "error_lines": len(scan.events) - tracebacks, "written_tracebacks": written["tracebacks"],
        "stored": len(report.stored), "followed": follower.report.events,
        "parse": _rates(written["lines"], tracebacks, parse_s),
        "ingest": _rates(written["lines"], tracebacks, ingest_s),
        "follow": _rates(written["lines"], tracebacks, follow_s),
    }


def _rates(lines: int, tracebacks: int, seconds: float) -> dict[str, float]:
    return {"seconds": round(seconds, 3), "lines_per_s": round(lines / seconds), "tracebacks_per_s": round(tracebacks / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description="Log ingest rate: lines/s and tracebacks/s.")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--store", help="SQLAlchemy URL of an empty store (default: a fresh SQLite file)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = measure(args.lines, args.store)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{result['lines']} lines, {result['bytes'] / 1e6:.1f} MB, {result['tracebacks']} tracebacks, "
          f"{result['error_lines']} error lines (written: {result['written_tracebacks']} tracebacks); "
          f"stored {result['stored']}, followed {result['followed']}")
    print("| step | seconds | lines/s | tracebacks/s |\n| --- | --- | --- | --- |")
    for step in ("parse", "ingest", "follow"):
        r = result[step]
        print(f"| {step} | {r['seconds']} | {r['lines_per_s']:,} | {r['tracebacks_per_s']:,} |")


if __name__ == "__main__":
    main()
