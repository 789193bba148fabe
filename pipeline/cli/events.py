"""Commands over stored events and issues: ingest, issues, triage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli._app import JsonOpt, app, deps, out, print_json
from pipeline.render import issue_json, outcome_json


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Event JSON, envelope, webhook payload or log file.")],
    follow: Annotated[bool, typer.Option("--follow", help="Tail one growing log file until SIGTERM; survives "
                                         "rotation and resumes where it stopped.")] = False,
    poll: Annotated[float, typer.Option(help="With --follow: seconds between polls at the end.")] = 0.25,
    idle_flush: Annotated[float, typer.Option(help="With --follow: seconds before a record left incomplete "
                                              "is taken as it is.")] = 2.0,
) -> None:
    """Parse, scrub, group and store every event of every file. A bad file stores nothing and exits 2."""
    from pipeline.ingest import ingest_events, parse_paths

    if follow:
        from pipeline.cli.grouping import follow_file

        if len(paths) != 1:
            raise typer.BadParameter("--follow takes exactly one log file", param_hint="PATHS")
        follow_file(paths[0], poll, idle_flush)
        return
    for path in paths:
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="PATHS")
    events = parse_paths(paths)
    d = deps()
    report = ingest_events(d.store, events, d.in_app, d.templates, d.source_lines)
    out().print(f"stored {len(report.stored)} event(s), dropped {len(report.duplicates)} duplicate(s), "
                f"{len(report.issues)} issue(s) touched")


@app.command("issues")
def list_issues(as_json: JsonOpt = False) -> None:
    """Grouped issues: fix class, root-cause cluster, priority, status, counts."""
    from collections import Counter
    from dataclasses import replace

    from pipeline.triage import priority

    issues = [replace(i, priority=priority(i)) for i in deps().store.list_issues()]
    issues.sort(key=lambda i: (-i.priority, i.fingerprint))
    if as_json:
        print_json([issue_json(i) for i in issues])
        return
    sizes = Counter(i.cluster_id for i in issues if i.cluster_id)
    table = Table("fingerprint", "title", "fix class", "cluster", "count", "priority", "status")
    for i in issues:
        cluster = f"{i.cluster_id[:8]} ({sizes[i.cluster_id]})" if i.cluster_id else "-"
        table.add_row(i.fingerprint[:12], i.title[:60], i.fix_class, cluster, str(i.count), f"{i.priority:.2f}",
                      i.status.value)
    out().print(table)


@app.command()
def triage(limit: Annotated[int, typer.Option(help="Issues to attempt.")] = 10, as_json: JsonOpt = False) -> None:
    """Pick the highest-priority open issues and attempt fixes now."""
    from pipeline.triage import triage as run_triage

    d = deps()
    report = run_triage(d.store, d.settings, d.fixers, d.sandbox_for, limit)
    if as_json:
        print_json({"outcomes": {fp: outcome_json(o) for fp, o in report.outcomes.items()},
                    "skipped": report.skipped})
        return
    for fp, outcome in report.outcomes.items():
        out().print(f"{fp[:12]}  {outcome.status:<10}  {outcome.reason}")
    for fp, why in report.skipped.items():
        out().print(f"{fp[:12]}  skipped     {why}")
