"""Commands over grouping: `autofix regroup`, and the follow mode of `autofix ingest --follow FILE`."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli._app import JsonOpt, app, deps, err, out, print_json


@app.command()
def regroup(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would change; change nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Recompute fingerprints and clusters of every stored event (after a configuration or version
    change), merging and splitting issues without losing events, reviews or candidates."""
    from pipeline.regroup import regroup as run_regroup

    d = deps()
    with d.templates.session(), d.source_lines.session():
        report = run_regroup(d.store, d.in_app, d.templates, d.source_lines, dry_run=dry_run)
    if as_json:
        print_json({"dry_run": dry_run, "events": report.events, "moved": report.moved,
                    "issues_before": report.issues_before, "issues_after": report.issues_after,
                    "merged": report.merged, "split": report.split,
                    "candidates_moved": report.candidates_moved})
        return
    verb = "would move" if dry_run else "moved"
    lines = [f"{report.events} event(s): {verb} {report.moved}; issues {report.issues_before} -> "
             f"{report.issues_after}; {len(report.merged)} merged, {len(report.split)} split, "
             f"{report.candidates_moved} candidate(s) moved"]
    lines += [f"  merged {', '.join(o[:12] for o in olds)} -> {new[:12]}" for new, olds in sorted(report.merged.items())]
    lines += [f"  split {old[:12]} -> {', '.join(n[:12] for n in news)}" for old, news in sorted(report.split.items())]
    for line in lines:
        out().print(line, soft_wrap=True, highlight=False, markup=False)


def follow_file(path: Path, poll_s: float, idle_flush_s: float) -> None:
    """Tail `path` into the store until SIGTERM or SIGINT; print what was read."""
    from pipeline.ingest import ingest_events
    from pipeline.sources.follow import Follower

    d = deps()
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        follower = Follower(path, d.store, lambda events: _sink(d, events, ingest_events),
                            poll_s=poll_s, idle_flush_s=idle_flush_s)
        err().print(f"following {path} (SIGTERM or Ctrl-C stops)", highlight=False, markup=False, soft_wrap=True)
        report = follower.run(stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    out().print(f"followed {path}: {report.events} event(s), {report.tracebacks} traceback(s), "
                f"{report.rotations} rotation(s)", soft_wrap=True, highlight=False, markup=False)


def _sink(d: Any, events: list[Any], ingest: Any) -> None:
    ingest(d.store, events, d.in_app, d.templates, d.source_lines)
