"""Commands that fix: fix (one-shot), demo (end to end on examples/), bench (the benchmarks)."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pipeline.cli import _checks
from pipeline.cli._app import (
    FAILED,
    OK,
    JsonOpt,
    app,
    deps,
    err,
    out,
    plain,
    print_json,
    progress,
    say,
    settings,
    status,
)
from pipeline.errors import InvalidInput
from pipeline.render import outcome_json


@app.command()
def fix(
    repo: Annotated[Path, typer.Option(metavar="DIR", help="The top folder of a git checkout of the code that crashed.")],
    event: Annotated[Path, typer.Option(metavar="FILE", help="The event: Sentry JSON, envelope, webhook or log file.")],
    test_cmd: Annotated[str | None, typer.Option(metavar="CMD", help="The repo's test command, run after the patch.")] = None,
    path_map: Annotated[list[str] | None, typer.Option(
        metavar="PREFIX=REPOPATH",
        help="Stack-trace path prefix -> repo-relative folder, e.g. /app/=src/ (repeatable).")] = None,
    output: Annotated[Path | None, typer.Option(metavar="FILE", help="Write the best candidate's patch to this file.")] = None,
    index: Annotated[int | None, typer.Option(metavar="N", help="Fix only the N-th event of the file (0-based; -1: the "
                                              "last); default: each one.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """One-shot: fix one event in a checkout and print the candidate. Needs no server or config.

    A log file holds several tracebacks: each is fixed (with --json, a list of objects, one per
    traceback), or only the one --index picks. Exits 0 when every candidate is verified, 1 when one is
    not (unverified, or no fix at all).
    """
    from pipeline.flow import FixRequest, fix_issue
    from pipeline.grouping import group
    from pipeline.scrub import scrub_event
    from pipeline.sources import load_path
    from pipeline.sources.in_app import InAppRules, repo_packages

    root = _checks.checkout(repo)
    _checks.existing_file(event, "--event")
    mappings = _checks.path_maps(path_map or ())
    events = [e for e in load_path(event) if e.exceptions]
    if not events:
        raise InvalidInput(str(event), "holds no event with an exception")
    if index is not None:
        if not -len(events) <= index < len(events):
            raise InvalidInput(str(event), f"--index {index} is out of range: it holds {len(events)} event(s) "
                               "with an exception")
        events = [events[index]]
    if output is not None and len(events) > 1:
        raise InvalidInput(str(event), f"holds {len(events)} events: --output needs one, pick it with --index")
    rules = InAppRules.of(repo_packages(root))  # the checkout's own packages are the app
    d = deps()
    outcomes = []
    for one in events:
        scrubbed, issue = group(scrub_event(rules.mark(one)))
        with status(f"fixing {issue.culprit or issue.title}"), \
                tempfile.TemporaryDirectory(prefix="autofix-fix-") as work:
            outcomes.append(fix_issue(FixRequest(scrubbed, issue, root, Path(work), test_cmd, mappings,
                                                 gate=d.settings.gate, env_home=d.settings.envs_dir,
                                                 env=d.settings.repo_env, context_config=d.settings.context,
                                                 index_cache=d.settings.context_cache_dir), d.fixers, d.sandbox,
                                        d.iterative))
    if output is not None:
        best = outcomes[0].best
        if best is None:
            err().print(f"autofix: no patch to write to {output}", markup=False, highlight=False)
        else:
            output.write_text(best.patch.diff, encoding="utf-8")
    if as_json:
        shown = [outcome_json(o) for o in outcomes]
        print_json(shown[0] if len(shown) == 1 else shown)
    else:
        for number, outcome in enumerate(outcomes):
            if len(outcomes) > 1:
                say(f"event {number}")
            queued = "queued for review" if outcome.queued else "not queued"
            # Text, not markup: a reason can quote event data such as "[Filtered:email]".
            out().print(Text.assemble((outcome.status, "bold"), f" ({queued}, commit {outcome.commit[:12]}): ",
                                      outcome.reason))
            best = outcome.best
            if best is not None:
                say(f"candidate {best.id}: strategy {best.strategy}, confidence {best.confidence:.2f}")
                say(f"patch written to {output}" if output is not None else best.patch.diff)
    raise typer.Exit(OK if all(o.status == "verified" for o in outcomes) else FAILED)


@app.command()
def demo(
    as_json: JsonOpt = False,
    approve_all: Annotated[bool, typer.Option("--approve-all", help="Approve every queued candidate.")] = False,
    examples: Annotated[Path | None, typer.Option(metavar="DIR", help="The examples folder (default: the one shipped).")] = None,
    workdir: Annotated[Path | None, typer.Option(metavar="DIR", help="Work in this (new or empty) folder and keep it.")] = None,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the temporary work folder.")] = False,
) -> None:
    """End to end on examples/: ingest, group, retrieve, generate, verify, queue.

    The demo's store is in the state folder when AUTOFIX_HOME is set (`autofix queue` then lists its
    candidates), else in its work folder, which is removed at the end unless --keep or --workdir.
    """
    from pipeline.demo import find_examples, run_demo

    folder = find_examples(examples)
    if workdir is not None:
        _checks.empty_or_new_folder(workdir, "--workdir")
    base = settings()
    with progress() as bar:
        task = bar.add_task("demo", total=None)

        def step(text: str, done: int, total: int | None) -> None:
            bar.update(task, description=text[:60], completed=done, total=total)

        report = run_demo(folder, base, approve_all, workdir, keep, step)
    if as_json:
        print_json(report.to_json())
        return
    headers = ("issue", "fix class", "n", "strategy", "verification", "status", "candidate")
    rows = [(row.culprit, row.fix_class, str(row.count), (row.strategy or "-").removeprefix("template:"),
             row.verification + (f" ({row.confidence:.2f})" if row.confidence is not None else ""), row.status,
             row.candidate_id or "-") for row in report.issues]
    table = Table(title="autofix demo")
    for index, name in enumerate(headers):
        # Only the issue column gives way when the table is too wide: ids and statuses stay whole.
        table.add_column(name, no_wrap=index > 0, overflow="ellipsis")
    for cells in rows:
        table.add_row(*plain(*cells))
    out().print(table)
    for row in report.issues:
        if row.branch:
            say(f"  pushed {row.branch}")
    if report.kept:
        say(f"work folder {report.workdir} (repo, remote.git)")
    if "home" in base.model_fields_set:
        say(f"store in {report.home}: `autofix queue` lists the candidates")
    else:
        say("set AUTOFIX_HOME to keep the demo's store and review its candidates with `autofix queue`")


def _llm_env() -> dict[str, str]:
    """The LLM settings of this process as the variables `autofix fix` reads (the bench's child)."""
    import json

    from pipeline.errors import ConfigError

    config = settings().llm_settings
    if not config.configured:
        raise ConfigError("--llm needs AUTOFIX_LLM_BASE_URL and AUTOFIX_LLM_MODEL (or [llm] in autofix.toml)")
    section = config.model_dump(mode="json", exclude={"base_url", "api_key", "model"})
    env = {"AUTOFIX_LLM_BASE_URL": str(config.base_url), "AUTOFIX_LLM_MODEL": str(config.model),
           "AUTOFIX_LLM": json.dumps(section)}
    if config.api_key is not None:
        env["AUTOFIX_LLM_API_KEY"] = config.api_key.get_secret_value()
    return env


@app.command()
def bench(
    suite: Annotated[Path | None, typer.Option(metavar="DIR", help="Folder of crash cases (default: bench/crashes).")] = None,
    case: Annotated[list[str] | None, typer.Option(metavar="ID", help="Run only this case (repeatable).")] = None,
    as_json: JsonOpt = False,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a markdown table.")] = False,
    keep: Annotated[Path | None, typer.Option(metavar="DIR", help="Keep per-case work folders here.")] = None,
    grouping_set: Annotated[Path | None, typer.Option(
        metavar="DIR", help="Labelled events for the grouping benchmark (default: bench/grouping).")] = None,
    localisation_only: Annotated[bool, typer.Option(
        "--localisation-only", help="Only localisation: recall@1/@5 of stack-only against fused (stack + BM25), "
        "no patches (seconds once sources and events are cached).")] = False,
    llm: Annotated[bool, typer.Option(
        "--llm", help="Also run the LLM fixer (the AUTOFIX_LLM_* settings of this process) after the templates; "
                      "templates-only figures come from the same run.")] = False,
    sdk: Annotated[str, typer.Option(
        "--sdk", metavar="CONFIG", help="How crashes are captured: 'default' (sentry-sdk as apps configure it), "
        "'objects' (with the opt-in pipeline.sdk_objects integration) or 'both' (each case twice, both reported).")
    ] = "default",
) -> None:
    """The crash-bug benchmark (real PyPI bugs, fixed by `autofix fix`, judged by hidden checks) and the
    grouping benchmark (pairwise precision and recall of fingerprints on a labelled set).

    Cases download their sdists from PyPI on first use (cached under bench/.cache/)."""
    from pipeline import bundled
    from pipeline.benchmark import runner
    from pipeline.benchmark.grouping import evaluate, grouping_json, report

    suite = suite or bundled.folder("bench") / "crashes"
    if localisation_only:
        _bench_localisation(suite, case or (), as_json, markdown)
        return
    grouping_set = grouping_set or bundled.folder("bench") / "grouping"
    for folder, option in ((suite, "--suite"), (grouping_set, "--grouping-set")):
        if not folder.is_dir():
            raise InvalidInput(f"{option} {folder}", "no such folder")
    configurations = runner.SDK_CONFIGURATIONS if sdk == "both" else (sdk,)
    if any(c not in runner.SDK_CONFIGURATIONS for c in configurations):
        raise InvalidInput(f"--sdk {sdk}", "one of default, objects, both")
    folders = runner.case_folders(suite, case or ())
    runs: dict[str, list[runner.CaseResult]] = {}
    with progress() as bar:
        task = bar.add_task("bench", total=len(folders) * len(configurations))
        for config in configurations:

            def advance(result: runner.CaseResult, config: str = config) -> None:
                mark = "correct" if result.correct else result.status
                bar.console.print(f"{result.id:<40} {mark:<10} rank={result.rank or '-'} replays={result.replays} "
                                  f"sdk={config} {result.seconds:.1f}s", markup=False, highlight=False)
                bar.advance(task)

            runs[config] = runner.run_suite(suite, case or (), advance, keep, _llm_env() if llm else None, config)
    results = runs[configurations[0]]
    grouping = evaluate(grouping_set)
    if as_json:
        extra: dict[str, Any] = {"sdk": sdk}
        if len(runs) > 1:
            extra["configurations"] = {c: runner.as_json(r) for c, r in runs.items()}
        print_json({**runner.as_json(results), **extra, "grouping": grouping_json(grouping)})
        return
    text = "\n\n".join(f"SDK configuration: {c}\n\n{runner.markdown(r)}" if len(runs) > 1 else runner.markdown(r)
                       for c, r in runs.items()) + "\n\nGrouping: " + report(grouping)
    if markdown:
        sys.stdout.write(text + "\n")
    else:
        out().print(text, markup=False, highlight=False)


def _bench_localisation(suite: Path, cases: Sequence[str], as_json: bool, markdown: bool) -> None:
    from pipeline.benchmark import localisation, runner

    if not suite.is_dir():
        raise InvalidInput(f"--suite {suite}", "no such folder")
    folders = runner.case_folders(suite, cases)
    with progress() as bar:
        task = bar.add_task("localisation", total=len(folders))

        def advance(result: localisation.LocalisationResult) -> None:
            bar.console.print(f"{result.id:<48} stack={result.rank_stack or '-'} fused={result.rank_fused or '-'} "
                              f"{result.seconds:.1f}s {result.reason}", markup=False, highlight=False)
            bar.advance(task)

        results = localisation.run(suite, cases, on_case=advance)
    if as_json:
        print_json(localisation.as_json(results))
    elif markdown:
        sys.stdout.write(localisation.markdown(results) + "\n")
    else:
        out().print(localisation.markdown(results), markup=False, highlight=False)
