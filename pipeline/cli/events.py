"""Commands over stored events and issues: ingest, issues, triage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli._app import JsonOpt, app, deps, hint, out, plain, print_json, progress, say
from pipeline.errors import InvalidInput
from pipeline.records import CandidateStatus, ErrorEvent, Issue
from pipeline.render import issue_json, outcome_json


def _parsed(paths: Sequence[Path]) -> list[ErrorEvent]:
    """Every event of every file (all parsed before anything is stored), with progress over files."""
    from pipeline.sources import load_path

    events: list[ErrorEvent] = []
    with progress() as bar:
        task = bar.add_task("parsing", total=len(paths))
        for path in paths:
            bar.update(task, description=f"parsing {path.name}")
            events.extend(load_path(path))
            bar.advance(task)
    return events


def _counted(events: Sequence[ErrorEvent]) -> Iterator[ErrorEvent]:
    with progress() as bar:
        task = bar.add_task("storing", total=len(events))
        for event in events:
            yield event
            bar.advance(task)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Event JSON, envelope, webhook payload or log file.")],
    as_json: JsonOpt = False,
    follow: Annotated[bool, typer.Option("--follow", help="Tail one growing log file until SIGTERM; survives "
                                         "rotation and resumes where it stopped.")] = False,
    poll: Annotated[float, typer.Option(help="With --follow: seconds between polls at the end.")] = 0.25,
    idle_flush: Annotated[float, typer.Option(help="With --follow: seconds before a record left incomplete "
                                              "is taken as it is.")] = 2.0,
) -> None:
    """Parse, scrub, group and store every event of every file. A bad file stores nothing and exits 2."""
    from pipeline.ingest import ingest_events

    if follow:
        from pipeline.cli.grouping import follow_file

        if len(paths) != 1:
            raise typer.BadParameter("--follow takes exactly one log file", param_hint="PATHS")
        follow_file(paths[0], poll, idle_flush)
        return
    for path in paths:
        if not path.is_file():
            raise InvalidInput(str(path), "no such file" if not path.exists() else "not a file")
    events = _parsed(paths)
    d = deps()
    report = ingest_events(d.store, _counted(events), d.in_app, d.templates, d.source_lines)
    from pipeline.regressions import check_recurrences

    regressed = check_recurrences(d.store, d.settings, report.issues)
    if as_json:
        print_json({"stored": report.stored, "duplicates": report.duplicates, "issues": sorted(report.fingerprints),
                    "regressed": sorted(regressed)})
        return
    say(f"stored {len(report.stored)} event(s), dropped {len(report.duplicates)} duplicate(s), "
        f"{len(report.issues)} issue(s) touched")
    for fingerprint in regressed:
        say(f"{fingerprint[:12]}  regressed: its merged fix shipped and the crash recurred; reopened")
    if report.stored:
        hint("next: `autofix issues` to see them, `autofix triage` to attempt fixes")


def _issue_table(issues: Sequence[Issue]) -> Table:
    sizes = Counter(i.cluster_id for i in issues if i.cluster_id)
    table = Table("fingerprint", "title", "fix class", "cluster", "count", "priority", "status")
    for i in issues:
        cluster = f"{i.cluster_id[:8]} ({sizes[i.cluster_id]})" if i.cluster_id else "-"
        table.add_row(*plain(i.fingerprint[:12], i.title[:60], i.fix_class, cluster, str(i.count),
                             f"{i.priority:.2f}", i.status.value))
    return table


@app.command("issues")
def list_issues(as_json: JsonOpt = False) -> None:
    """Grouped issues: fix class, root-cause cluster, priority, status, counts."""
    from dataclasses import replace

    from pipeline.triage import priority

    issues = [replace(i, priority=priority(i)) for i in deps().store.list_issues()]
    issues.sort(key=lambda i: (-i.priority, i.fingerprint))
    if as_json:
        print_json([issue_json(i) for i in issues])
        return
    if not issues:
        hint("no issues yet: store some events with `autofix ingest FILE...` (Sentry JSON, envelopes, log files)")
        return
    out().print(_issue_table(issues))


@app.command()
def triage(limit: Annotated[int, typer.Option(min=1, metavar="N", help="Issues to attempt.")] = 10, as_json: JsonOpt = False) -> None:
    """Pick the highest-priority open issues and attempt fixes now."""
    from pipeline.triage import triage as run_triage

    d = deps()
    with progress() as bar:
        task = bar.add_task("triage", total=None)

        def attempting(done: int, total: int, issue: Issue) -> None:
            bar.update(task, completed=done, total=total, description=f"fixing {issue.culprit or issue.title}"[:60])

        report = run_triage(d.store, d.settings, d.fixers, d.sandbox_for, limit, attempting, d.iterative)
    if as_json:
        print_json({"outcomes": {fp: outcome_json(o) for fp, o in report.outcomes.items()},
                    "skipped": report.skipped})
        return
    if not report.outcomes and not report.skipped:
        hint("nothing to triage: no open issues (store events with `autofix ingest FILE...`)")
        return
    table = Table("issue", "status", "candidate", "reason")
    for fp, outcome in report.outcomes.items():
        best = outcome.best
        table.add_row(*plain(fp[:12], outcome.status, best.id if best else "-", outcome.reason))
    for fp, why in report.skipped.items():
        table.add_row(*plain(fp[:12], "skipped", "-", why))
    out().print(table)
    if report.skipped and not d.settings.repos:
        hint("no repo is configured: run `autofix init` in a checkout of the code that crashed")
    if any(c.status is CandidateStatus.AWAITING_REVIEW for o in report.outcomes.values() for c in o.candidates):
        hint("next: `autofix queue` to review the verified candidates, then `autofix approve ID`")
