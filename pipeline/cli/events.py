"""Commands over stored events and issues: ingest, issues, triage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli._app import JsonOpt, app, deps, out, print_json
from pipeline.render import issue_json, outcome_json


@app.command()
def ingest(paths: Annotated[list[Path], typer.Argument(help="Event JSON, envelope, webhook payload or log file.")]) -> None:
    """Parse, scrub, group and store events. A bad file stores nothing and exits 2."""
    from pipeline.ingest import ingest_events, parse_paths

    for path in paths:
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="PATHS")
    events = parse_paths(paths)
    d = deps()
    report = ingest_events(d.store, events, d.settings.in_app_packages)
    out().print(f"stored {len(report.stored)} event(s), dropped {len(report.duplicates)} duplicate(s), "
                f"{len(report.issues)} issue(s) touched")
    from pipeline.regressions import check_recurrences

    for fingerprint in check_recurrences(d.store, d.settings, report.issues):
        out().print(f"{fingerprint[:12]}  regressed: its merged fix shipped and the crash recurred; reopened")


@app.command("issues")
def list_issues(as_json: JsonOpt = False) -> None:
    """Grouped issues: fix class, priority, status, counts."""
    issues = deps().store.list_issues()
    if as_json:
        print_json([issue_json(i) for i in issues])
        return
    table = Table("fingerprint", "title", "fix class", "count", "priority", "status")
    for i in issues:
        table.add_row(i.fingerprint[:12], i.title[:60], i.fix_class, str(i.count), f"{i.priority:.2f}", i.status.value)
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
