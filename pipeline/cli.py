"""The `autofix` command line. Commands and their --json output are a contract (DESIGN.md).

Argument parsing ends here: stages receive typed records and Settings, never the CLI's options.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipeline import logging_setup
from pipeline.errors import AutofixError
from pipeline.records import CandidateStatus
from pipeline.render import candidate_json, issue_json, outcome_json
from pipeline.settings import Settings
from pipeline.wiring import Deps

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Turn production errors into reviewed fixes.")
sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox backends.")
app.add_typer(sandbox_app, name="sandbox")
out = Console(width=max(Console().width, 132))  # tables stay legible when piped
err = Console(stderr=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _deps() -> Deps:
    return Deps(Settings())


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
def ingest(paths: Annotated[list[Path], typer.Argument(help="Event JSON, envelope, webhook payload or log file.")]) -> None:
    """Parse, scrub, group and store events. A bad file stores nothing and exits 2."""
    from pipeline.ingest import ingest_events, parse_paths

    for path in paths:
        if not path.is_file():
            raise typer.BadParameter(f"{path}: no such file", param_hint="PATHS")
    events = parse_paths(paths)
    deps = _deps()
    report = ingest_events(deps.store, events, deps.settings.in_app_packages)
    out.print(f"stored {len(report.stored)} event(s), dropped {len(report.duplicates)} duplicate(s), "
              f"{len(report.issues)} issue(s) touched")


@app.command("issues")
def list_issues(as_json: JsonOpt = False) -> None:
    """Grouped issues: fix class, priority, status, counts."""
    issues = _deps().store.list_issues()
    if as_json:
        _print_json([issue_json(i) for i in issues])
        return
    table = Table("fingerprint", "title", "fix class", "count", "priority", "status")
    for i in issues:
        table.add_row(i.fingerprint[:12], i.title[:60], i.fix_class, str(i.count), f"{i.priority:.2f}", i.status.value)
    out.print(table)


@app.command()
def triage(limit: Annotated[int, typer.Option(help="Issues to attempt.")] = 10, as_json: JsonOpt = False) -> None:
    """Pick the highest-priority open issues and attempt fixes now."""
    from pipeline.triage import triage as run_triage

    deps = _deps()
    report = run_triage(deps.store, deps.settings, deps.fixers, deps.sandbox_for, limit)
    if as_json:
        _print_json({"outcomes": {fp: outcome_json(o) for fp, o in report.outcomes.items()},
                     "skipped": report.skipped})
        return
    for fp, outcome in report.outcomes.items():
        out.print(f"{fp[:12]}  {outcome.status:<10}  {outcome.reason}")
    for fp, why in report.skipped.items():
        out.print(f"{fp[:12]}  skipped     {why}")


@app.command()
def fix(
    repo: Annotated[Path, typer.Option(help="A git checkout of the code that crashed.")],
    event: Annotated[Path, typer.Option(help="The event: Sentry JSON, envelope, webhook or log file.")],
    test_cmd: Annotated[str | None, typer.Option(help="The repo's test command, run after the patch.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One-shot: fix one event in a checkout and print the candidate. Needs no server or config."""
    from pipeline.flow import FixRequest, fix_issue
    from pipeline.grouping import group
    from pipeline.scrub import scrub_event
    from pipeline.sources import load_path

    events = [e for e in load_path(event) if e.exceptions]
    if not events:
        raise AutofixError(f"{event}: holds no event with an exception")
    scrubbed, issue = group(scrub_event(events[-1]))
    deps = _deps()
    with tempfile.TemporaryDirectory(prefix="autofix-fix-") as work:
        outcome = fix_issue(FixRequest(scrubbed, issue, repo.resolve(), Path(work), test_cmd,
                                       gate=deps.settings.gate), deps.fixers, deps.sandbox)
    if as_json:
        _print_json(outcome_json(outcome))
        return
    out.print(f"[bold]{outcome.status}[/bold]: {outcome.reason}")
    if outcome.best is not None:
        out.print(f"strategy {outcome.best.strategy}, confidence {outcome.best.confidence:.2f}")
        out.print(outcome.best.patch.diff, markup=False, highlight=False)


@app.command()
def queue(as_json: JsonOpt = False) -> None:
    """Candidates awaiting review."""
    store = _deps().store
    candidates = store.list_candidates(CandidateStatus.AWAITING_REVIEW)
    if as_json:
        _print_json([candidate_json(c) for c in candidates])
        return
    table = Table("id", "issue", "strategy", "confidence", "files", "description")
    for c in candidates:
        table.add_row(c.id, c.issue_fingerprint[:12], c.strategy, f"{c.confidence:.2f}", ", ".join(c.patch.files),
                      c.patch.description[:70])
    out.print(table)


@app.command()
def approve(
    candidate_id: Annotated[str, typer.Argument(metavar="ID")],
    reviewer: Annotated[str, typer.Option(help="Who approves.")] = "cli",
) -> None:
    """Approve a candidate: opens its pull request on the code host."""
    from pipeline.review import approve as do_approve

    deps = _deps()
    pr = do_approve(deps.store, deps.code_host, deps.settings, candidate_id, reviewer)
    out.print(f"approved {candidate_id}: {pr.url} ({pr.commit_sha[:10]})")


@app.command()
def reject(
    candidate_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option(help="Why: reasons feed the gates.")],
    reviewer: Annotated[str, typer.Option(help="Who rejects.")] = "cli",
) -> None:
    """Reject a candidate, with a reason."""
    from pipeline.review import reject as do_reject

    do_reject(_deps().store, candidate_id, reviewer, reason)
    out.print(f"rejected {candidate_id}")


@app.command()
def demo(
    as_json: JsonOpt = False,
    approve_all: Annotated[bool, typer.Option("--approve-all", help="Approve every queued candidate.")] = False,
    examples: Annotated[Path | None, typer.Option(help="The examples folder.")] = None,
    keep: Annotated[Path | None, typer.Option(help="Work in this folder instead of a temporary one.")] = None,
) -> None:
    """End to end on examples/: ingest, group, retrieve, generate, verify, queue."""
    from pipeline.demo import find_examples, run_demo

    report = run_demo(find_examples(examples), Settings(), approve_all, keep)
    if as_json:
        _print_json(report)
        return
    table = Table(title="autofix demo")
    for name in ("issue", "fix class", "n", "strategy", "verification", "confidence", "status"):
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    for row in report["issues"]:
        strategy = (row["strategy"] or "-").removeprefix("template:")
        confidence = f"{row['confidence']:.2f}" if row["confidence"] is not None else "-"
        table.add_row(row["culprit"], row["fix_class"], str(row["count"]), strategy, row["verification"],
                      confidence, row["status"])
    out.print(table)
    out.print(f"workdir {report['workdir']}; remote {report['remote']}")
    for row in report["issues"]:
        if row.get("branch"):
            out.print(f"  pushed {row['branch']}")


@app.command()
def bench(
    suite: Annotated[Path, typer.Option(help="Folder of crash cases.")] = Path("bench/crashes"),
    case: Annotated[list[str] | None, typer.Option(help="Run only this case (repeatable).")] = None,
    as_json: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a markdown table.")] = False,
    keep: Annotated[Path | None, typer.Option(help="Keep per-case work folders here.")] = None,
    grouping_set: Annotated[Path, typer.Option(help="Labelled events for the grouping benchmark.")] = Path(
        "bench/grouping"
    ),
) -> None:
    """The crash-bug benchmark (real PyPI bugs, fixed by `autofix fix`, judged by hidden checks) and the
    grouping benchmark (pairwise precision and recall of fingerprints on a labelled set)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from pipeline.benchmark import runner
    from pipeline.benchmark.grouping import evaluate, grouping_json, report

    folders = runner.case_folders(suite, case or ())
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        task = progress.add_task("bench", total=len(folders))

        def advance(result: runner.CaseResult) -> None:
            mark = "correct" if result.correct else result.status
            progress.console.print(f"{result.id:<40} {mark:<10} rank={result.rank or '-'} {result.seconds:.1f}s")
            progress.advance(task)

        results = runner.run_suite(suite, case or (), advance, keep)
    grouping = evaluate(grouping_set)
    if as_json:
        _print_json({**runner.as_json(results), "grouping": grouping_json(grouping)})
        return
    text = runner.markdown(results) + "\n\nGrouping: " + report(grouping)
    if markdown:
        sys.stdout.write(text + "\n")
    else:
        out.print(text, markup=False, highlight=False)


def _exec_celery(*args: str) -> None:
    """Replace this process with `celery -A workers.app ...` (signals then reach Celery directly)."""
    import os

    from workers.app import require_broker

    require_broker(Settings())  # a clear error here rather than a traceback from Celery
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "workers.app", *args])


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="Comma-separated queues to consume: ingest, fix.")] = "ingest,fix",
    concurrency: Annotated[int | None, typer.Option(help="Worker processes (default: one per CPU).")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery's own log level.")] = "INFO",
) -> None:
    """Run a Celery worker (needs AUTOFIX_BROKER_URL, a Redis URL)."""
    extra = ["--concurrency", str(concurrency)] if concurrency else []
    _exec_celery("worker", "--queues", queues, "--loglevel", loglevel, *extra)


@app.command()
def beat(loglevel: Annotated[str, typer.Option(help="Celery's own log level.")] = "INFO") -> None:
    """Run the scheduler: periodic triage and pull-request sync (needs AUTOFIX_BROKER_URL)."""
    Settings().home.mkdir(parents=True, exist_ok=True)  # beat keeps its schedule file there
    _exec_celery("beat", "--loglevel", loglevel)


@sandbox_app.command("check")
def sandbox_check(as_json: JsonOpt = False) -> None:
    """Isolation self-test of the configured backend."""
    from sandbox.check import self_check

    deps = _deps()
    results = self_check(deps.sandbox)
    if as_json:
        _print_json({"backend": deps.sandbox.name, "checks": [r.__dict__ for r in results]})
    else:
        for r in results:
            out.print(f"{'ok  ' if r.passed else 'FAIL'} {r.name}: {r.detail}")
    if not all(r.passed for r in results):
        raise typer.Exit(1)


def main() -> None:
    logging_setup.configure()
    try:
        app(standalone_mode=True)
    except AutofixError as exc:
        err.print(f"autofix: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None

