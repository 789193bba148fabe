"""Commands that fix: fix (one-shot), demo (end to end on examples/), bench (the benchmarks)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli._app import JsonOpt, app, deps, err, out, print_json
from pipeline.errors import AutofixError
from pipeline.render import outcome_json
from pipeline.settings import Settings


@app.command()
def fix(
    repo: Annotated[Path, typer.Option(help="A git checkout of the code that crashed.")],
    event: Annotated[Path, typer.Option(help="The event: Sentry JSON, envelope, webhook or log file.")],
    test_cmd: Annotated[str | None, typer.Option(help="The repo's test command, run after the patch.")] = None,
    index: Annotated[int | None, typer.Option(help="Fix only the N-th event of the file (0-based); "
                                              "default: each one.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One-shot: fix one event in a checkout and print the candidate. Needs no server or config.

    A log file holds several tracebacks: each is fixed (one JSON object per traceback, in a list),
    or only the one --index picks."""
    from pipeline.flow import FixRequest, fix_issue
    from pipeline.grouping import group
    from pipeline.scrub import scrub_event
    from pipeline.sources import load_path
    from pipeline.sources.in_app import InAppRules, repo_packages

    events = [e for e in load_path(event) if e.exceptions]
    if not events:
        raise AutofixError(f"{event}: holds no event with an exception")
    if index is not None:
        if not 0 <= index < len(events):
            raise AutofixError(f"{event}: --index {index} is out of range: it holds {len(events)} event(s) "
                               "with an exception")
        events = [events[index]]
    rules = InAppRules.of(repo_packages(repo.resolve()))  # the checkout's own packages are the app
    d = deps()
    outcomes = []
    for one in events:
        scrubbed, issue = group(scrub_event(rules.mark(one)))
        with tempfile.TemporaryDirectory(prefix="autofix-fix-") as work:
            outcomes.append(fix_issue(FixRequest(scrubbed, issue, repo.resolve(), Path(work), test_cmd,
                                                 gate=d.settings.gate), d.fixers, d.sandbox))
    if as_json:
        shown = [outcome_json(o) for o in outcomes]
        print_json(shown[0] if len(shown) == 1 else shown)
        return
    for number, outcome in enumerate(outcomes):
        if len(outcomes) > 1:
            out().print(f"[bold]event {number}[/bold]")
        out().print(f"[bold]{outcome.status}[/bold]: {outcome.reason}")
        if outcome.best is not None:
            out().print(f"strategy {outcome.best.strategy}, confidence {outcome.best.confidence:.2f}")
            out().print(outcome.best.patch.diff, markup=False, highlight=False)


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
        print_json(report)
        return
    table = Table(title="autofix demo")
    for name in ("issue", "fix class", "n", "strategy", "verification", "confidence", "status"):
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    for row in report["issues"]:
        strategy = (row["strategy"] or "-").removeprefix("template:")
        confidence = f"{row['confidence']:.2f}" if row["confidence"] is not None else "-"
        table.add_row(row["culprit"], row["fix_class"], str(row["count"]), strategy, row["verification"],
                      confidence, row["status"])
    out().print(table)
    out().print(f"workdir {report['workdir']}; remote {report['remote']}")
    for row in report["issues"]:
        if row.get("branch"):
            out().print(f"  pushed {row['branch']}")


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
                  console=err()) as progress:
        task = progress.add_task("bench", total=len(folders))

        def advance(result: runner.CaseResult) -> None:
            mark = "correct" if result.correct else result.status
            progress.console.print(f"{result.id:<40} {mark:<10} rank={result.rank or '-'} {result.seconds:.1f}s")
            progress.advance(task)

        results = runner.run_suite(suite, case or (), advance, keep)
    grouping = evaluate(grouping_set)
    if as_json:
        print_json({**runner.as_json(results), "grouping": grouping_json(grouping)})
        return
    text = runner.markdown(results) + "\n\nGrouping: " + report(grouping)
    if markdown:
        sys.stdout.write(text + "\n")
    else:
        out().print(text, markup=False, highlight=False)


