"""`autofix bench`: the crash-bug benchmark on real PyPI packages.

For each case: unpack the buggy sdist as a git checkout, run the case's reproduction under the real
sentry-sdk to capture an event, run `autofix fix` on the checkout with that event (a separate process,
exactly as a user would), then apply the candidate to a fresh copy of the buggy source and run the
case's repro.py, whose assertions the pipeline never saw. A case's `requires` reach autofix the way
a user's repo declares them: a requirements file in the checkout, from which autofix builds the
repo's environment (cached under bench/.cache/envs across runs). `queued` is the gate's decision
on the best candidate, and `delivered` (correct by the hidden check AND queued for review) is the
headline figure. The corpus's own checker module
(bench/check_corpus.py, beside the suite) fetches and unpacks the sdists, so the cache is shared.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType
from typing import Any

from pipeline.errors import ConfigError
from sandbox.workspace import GitError, git

FIX_TIMEOUT_S = 600
CHECK_TIMEOUT_S = 120


@dataclass(frozen=True)
class CaseResult:
    id: str
    package: str
    exception: str
    status: str  # verified | unverified | no_fix | error
    produced: bool  # a candidate patch exists
    queued: bool  # the gate admitted the best candidate: it would wait for a reviewer
    correct: bool  # the hidden check passes with the candidate applied
    rank: int | None  # position of the really-fixed function in the localisation (1-based)
    seconds: float
    tokens: int
    usd: float
    strategy: str | None
    reason: str
    rank_stack: int | None = None  # the localisation judged in-process: stack-only
    rank_fused: int | None = None  # and stack fused with BM25 (pipeline/context/rank.py)
    # With the LLM fixer on (run_suite(llm=...)): the same run seen with templates only (the best
    # template candidate: status, queued, correct, strategy), the LLM's patches and requests, and the
    # attempt that produced the best candidate when it is the LLM's.
    templates_only: dict[str, Any] | None = None
    llm_patches: int = 0
    llm_attempt: int | None = None
    llm_steps: tuple[dict[str, Any], ...] = ()
    # How far verification reached: frames of the event with a replay, and those that reproduced.
    replays: int = 0
    reproduced: int = 0
    not_replayable: tuple[str, ...] = ()


def load_corpus_module(suite: Path) -> ModuleType:
    path = suite.parent / "check_corpus.py"
    if not path.is_file():
        raise ConfigError(f"{path} not found: the suite's folder must sit beside bench/check_corpus.py")
    spec = importlib.util.spec_from_file_location("bench_check_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _git(cwd: Path, *args: str) -> None:
    git(cwd, "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args)


REQUIREMENTS = "requirements-bench.txt"  # the case's `requires`, as a user's repo would declare them


def _checkout(source: Path, dest: Path, requires: Sequence[str] = ()) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if requires:
        (dest / REQUIREMENTS).write_text("".join(f"{r}\n" for r in requires))
    _git(dest, "init", "-q")
    _git(dest, "add", "-A", "-f")
    _git(dest, "commit", "-q", "-m", "buggy release")
    return dest


def _pythonpath(*parts: Path | None) -> str:
    return os.pathsep.join(str(p) for p in parts if p is not None)


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AUTOFIX_"))}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0", **extra)
    return env


SDK_CONFIGURATIONS = ("default", "objects")  # the SDK as apps configure it; with sdk_objects' integration


def _capture(case: Any, code_root: Path, deps: Path | None, out: Path, sdk: str = "default") -> str | None:
    """Run repro.py under sentry-sdk; None on success, else why no event came."""
    extra = ["--in-app-objects"] if sdk == "objects" else []
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.benchmark.capture", "--out", str(out), "--in-app", case.import_name,
         *extra, str(case.folder / "repro.py")],
        env=_env(PYTHONPATH=_pythonpath(code_root, deps, Path(__file__).resolve().parents[2])),
        cwd=out.parent, capture_output=True, text=True, timeout=CHECK_TIMEOUT_S,
    )
    if done.returncode == 0 and out.is_file():
        return None
    return f"capture exited {done.returncode}: {(done.stderr.strip().splitlines() or [''])[-1]}"


def replay_plan(root: Path, event_path: Path) -> Any:
    """The replays `autofix fix` would plan for the event in the checkout (marked and scrubbed alike)."""
    from pipeline.benchmark.localisation import prepared_event
    from pipeline.repro import plan_replays

    return plan_replays(*prepared_event(root, event_path))


def _localisation_rank(case: Any, corpus: ModuleType, localization: list[dict[str, Any]]) -> int | None:
    wanted = set(case.fixed_functions)
    for position, loc in enumerate(localization, start=1):
        rel = PurePosixPath(loc["path"]).as_posix()
        module = corpus._module_of(rel, case.source_root)
        dotted = f"{module}.{loc['function']}" if module else loc["function"]
        # A nested function or a method lies inside the fixed function or class it is defined in.
        inside = any(dotted == w or dotted.startswith(w + ".") for w in wanted)
        if inside or rel in case.fixed_files and loc["function"] in {w.split(".")[-1] for w in wanted}:
            return position
    return None


def _hidden_check(case: Any, corpus: ModuleType, source: Path, deps: Path | None, patch: str,
                  work: Path) -> tuple[bool, str]:
    """Apply the patch to a fresh copy of the buggy source and run repro.py as the corpus check does."""
    tree = _checkout(source, work / "check")
    try:
        git(tree, "apply", "-", stdin=patch)
    except GitError as exc:
        return False, f"patch does not apply: {exc.output}"
    try:
        run = corpus._run(case, tree / case.source_root, deps, [str(case.folder / "repro.py")])
    except corpus.CaseFailed as exc:  # ran over the corpus's time limit
        return False, str(exc)
    return run.returncode == 0, "exit 0" if run.returncode == 0 else corpus._last_line(run.stderr)


def _llm_steps(stderr: str) -> tuple[dict[str, Any], ...]:
    """The LLM fixer's llm.step and llm.repair_done log lines (JSON logs of the child process)."""
    steps = []
    for line in stderr.splitlines():
        if '"llm.' not in line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("event") in ("llm.step", "llm.repair_done", "llm.budget_stop", "llm.retry"):
            steps.append({k: v for k, v in record.items() if k not in ("timestamp", "level", "logger")})
    return tuple(steps)


def _attempt_of(description: str) -> int | None:
    match = re.search(r"attempt (\d+)", description or "")
    return int(match.group(1)) if match else None


def _templates_only(out: dict[str, Any], check: Callable[[str], tuple[bool, str]]) -> dict[str, Any]:
    """What templates alone gave in this run: its best template candidate (the LLM ran only when no
    template candidate was admitted, so the templates' own outcome is unchanged by it)."""
    ours = [c for c in out.get("candidates", []) if str(c["strategy"]).startswith("template")]
    if not ours:
        return {"status": "no_fix", "queued": False, "correct": False, "strategy": None, "produced": False}
    best = ours[0]
    verified = bool(best["verification"] and best["verification"]["verified"])
    correct, _ = check(best["patch"])
    return {"status": "verified" if verified else "unverified", "queued": best["status"] == "awaiting_review",
            "correct": correct, "strategy": best["strategy"], "produced": True}


def run_case(case: Any, corpus: ModuleType, work: Path, llm: Mapping[str, str] | None = None,
             sdk: str = "default") -> CaseResult:
    started = time.monotonic()
    ranked: dict[str, Any] = {}  # both localisations once the event is captured, then the replays

    def result(status: str, reason: str, **kw: Any) -> CaseResult:
        base: dict[str, Any] = dict(produced=False, queued=False, correct=False, rank=None, tokens=0, usd=0.0,
                                    strategy=None, **ranked)
        base.update(kw)
        return CaseResult(case.id, case.package, case.exception, status, seconds=round(time.monotonic() - started, 2),
                          reason=reason, **base)

    try:
        source = corpus.unpack_sdist(case.package, case.buggy_version)
        deps = corpus.install_requires(case.requires)
    except Exception as exc:  # noqa: BLE001 - the corpus checker's own errors (pip, archives)
        return result("error", f"sources unavailable: {exc}")
    checkout = _checkout(source, work / "repo", case.requires)
    event = work / "event.json"
    problem = _capture(case, checkout / case.source_root, deps, event, sdk)
    if problem:
        return result("error", problem)
    from pipeline.benchmark.localisation import ranks

    ranked.update(zip(("rank_stack", "rank_fused"), ranks(case, corpus, checkout, event, work / "loc-home"),
                      strict=True))
    plan = replay_plan(checkout, event)  # also when no fixer has a patch, so `autofix fix` plans none
    ranked.update(replays=len(plan.replays), not_replayable=plan.not_replayable)
    extra = dict(llm or {})
    if llm:
        extra.update(AUTOFIX_LOG_FORMAT="json", AUTOFIX_LOG_LEVEL="info")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline", "fix", "--repo", str(checkout), "--event", str(event), "--json"],
            env=_env(AUTOFIX_HOME=str(work / "home"),
                     AUTOFIX_REPO_ENV=json.dumps({"cache_dir": str(corpus.CACHE / "envs")}), **extra),
            cwd=work, capture_output=True, text=True, timeout=FIX_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return result("error", f"autofix fix ran over {FIX_TIMEOUT_S} s")
    steps = _llm_steps(done.stderr) if llm else ()
    # Exit 0: verified; 1: ran, unverified or no fix (both print the JSON outcome); anything else failed.
    if done.returncode not in (0, 1):
        return result("error", f"autofix fix exited {done.returncode}: {done.stderr.strip()[-300:]}")
    try:
        out = json.loads(done.stdout)
    except json.JSONDecodeError:
        return result("error", f"autofix fix exited {done.returncode} without a JSON outcome: "
                               f"{done.stderr.strip()[-300:]}")
    rank = _localisation_rank(case, corpus, out["localization"])
    verification = out.get("verification") or {}
    ranked.update(reproduced=sum(1 for r in verification.get("replays") or () if r.get("before") == "reproduced"))
    tokens, usd = int(out["cost"]["tokens"]), float(out["cost"]["usd"])
    checked: dict[str, tuple[bool, str]] = {}

    def check(patch: str) -> tuple[bool, str]:
        if patch not in checked:
            shutil.rmtree(work / "check", ignore_errors=True)
            checked[patch] = _hidden_check(case, corpus, source, deps, patch, work)
        return checked[patch]

    more: dict[str, Any] = {}
    if llm:
        more = dict(templates_only=_templates_only(out, check), llm_steps=steps,
                    llm_patches=sum(1 for c in out.get("candidates", []) if c["strategy"] == "llm"),
                    llm_attempt=_attempt_of(out.get("description") or "") if out["strategy"] == "llm" else None)
    if not out["patch"]:
        return result(out["status"], out["reason"], rank=rank, tokens=tokens, usd=usd, **more)
    correct, detail = check(out["patch"])
    return result(out["status"], f"{out['reason']}; hidden check: {detail}", produced=True,
                  queued=bool(out["queued"]), correct=correct, rank=rank, tokens=tokens, usd=usd,
                  strategy=out["strategy"], **more)


def case_folders(suite: Path, only: Sequence[str] = ()) -> list[Path]:
    folders = sorted(p for p in suite.resolve().iterdir() if (p / "case.toml").is_file())
    if only:
        folders = [p for p in folders if p.name in set(only)]
        missing = set(only) - {p.name for p in folders}
        if missing:
            raise ConfigError(f"no such case(s) in {suite}: {', '.join(sorted(missing))}")
    return folders


def run_suite(suite: Path, only: Sequence[str] = (), on_case: Callable[[CaseResult], None] | None = None,
              keep: Path | None = None, llm: Mapping[str, str] | None = None, sdk: str = "default"
              ) -> list[CaseResult]:
    """Every case; with `llm` (AUTOFIX_LLM_* variables for the child), templates then the LLM fixer.
    `sdk` is how the crash is captured: "default" (sentry-sdk as apps configure it) or "objects"
    (with pipeline/sdk_objects.py's opt-in integration)."""
    if sdk not in SDK_CONFIGURATIONS:
        raise ConfigError(f"unknown SDK configuration {sdk!r}: one of {', '.join(SDK_CONFIGURATIONS)}")
    corpus = load_corpus_module(suite)
    results: list[CaseResult] = []
    base = keep or Path(tempfile.mkdtemp(prefix="autofix-bench-"))
    try:
        for folder in case_folders(suite, only):
            case = corpus.load_case(folder)
            work = base / sdk / case.id
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            res = run_case(case, corpus, work, llm, sdk)
            results.append(res)
            if on_case:
                on_case(res)
    finally:
        if keep is None:
            shutil.rmtree(base, ignore_errors=True)
    return results


def totals(results: Sequence[CaseResult]) -> dict[str, Any]:
    n = len(results)
    queued = [r for r in results if r.queued]
    ranks = [r.rank for r in results]
    return {
        "cases": n,
        "packages": len({r.package for r in results}),
        "exception_classes": len({r.exception for r in results}),
        "candidates": sum(r.produced for r in results),
        "queued": len(queued),
        "queued_correct": sum(r.correct for r in queued),
        "delivered": sum(r.correct for r in queued),  # correct AND queued: what a reviewer would merge
        "correct": sum(r.correct for r in results),
        "fix_rate": round(sum(r.correct for r in results) / n, 4) if n else 0.0,
        "delivered_rate": round(sum(r.correct for r in queued) / n, 4) if n else 0.0,
        "precision": round(sum(r.correct for r in queued) / len(queued), 4) if queued else None,
        "recall_at_1": round(sum(1 for k in ranks if k is not None and k <= 1) / n, 4) if n else 0.0,
        "recall_at_5": round(sum(1 for k in ranks if k is not None and k <= 5) / n, 4) if n else 0.0,
        "median_seconds": round(statistics.median(r.seconds for r in results), 2) if n else 0.0,
        "tokens": sum(r.tokens for r in results),
        "usd": round(sum(r.usd for r in results), 4),
        "errors": sum(r.status == "error" for r in results),
        "replayable_events": sum(r.replays > 0 for r in results),  # a frame whose arguments rebuild
        "reproduced_events": sum(r.reproduced > 0 for r in results),  # and whose replay fails as the event did
        "localisation": _localisation(results),
        "total_seconds": round(sum(r.seconds for r in results), 1),
        "mean_seconds": round(sum(r.seconds for r in results) / n, 2) if n else 0.0,
        **_llm_totals(results),
    }


def _llm_totals(results: Sequence[CaseResult]) -> dict[str, Any]:
    """Templates-only against templates+LLM, from the same run (only when the LLM fixer ran)."""
    if not any(r.templates_only is not None for r in results):
        return {}
    n = len(results)
    alone = [r.templates_only or {} for r in results]
    t_queued = [a for a in alone if a.get("queued")]
    t_delivered = sum(1 for a in t_queued if a.get("correct"))
    delivered = [r for r in results if r.queued and r.correct]
    by_llm = [r for r in delivered if r.strategy == "llm"]
    correct_llm = [r for r in results if r.correct and r.strategy == "llm"]
    requests = [s for r in results for s in r.llm_steps if s.get("event") == "llm.step"]
    outcomes: dict[str, int] = {}
    for step in requests:
        outcomes[str(step.get("outcome"))] = outcomes.get(str(step.get("outcome")), 0) + 1
    return {
        "templates_only": {
            "delivered": t_delivered, "delivered_rate": round(t_delivered / n, 4) if n else 0.0,
            "correct": sum(1 for a in alone if a.get("correct")),
            "fix_rate": round(sum(1 for a in alone if a.get("correct")) / n, 4) if n else 0.0,
            "queued": len(t_queued), "precision": round(t_delivered / len(t_queued), 4) if t_queued else None,
        },
        "llm": {
            "delivered": len(by_llm), "share_of_delivered": round(len(by_llm) / len(delivered), 4) if delivered else 0.0,
            "correct": len(correct_llm), "patches": sum(r.llm_patches for r in results), "requests": len(requests),
            "request_outcomes": outcomes,
            "attempts_per_correct_fix": round(statistics.mean(r.llm_attempt or 1 for r in correct_llm), 2)
            if correct_llm else None,
            "tokens_per_correct_fix": round(statistics.mean(r.tokens for r in correct_llm)) if correct_llm else None,
            "tokens": sum(r.tokens for r in results if r.llm_patches),
        },
    }


def _localisation(results: Sequence[CaseResult]) -> dict[str, Any]:
    from pipeline.benchmark.localisation import compare

    return compare([r.rank_stack for r in results], [r.rank_fused for r in results])


def as_json(results: Sequence[CaseResult]) -> dict[str, Any]:
    return {"totals": totals(results), "cases": [asdict(r) for r in results]}


def markdown(results: Sequence[CaseResult]) -> str:
    t = totals(results)
    lines = ["| case | exception | rank | status | queued | correct | strategy | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r.id} | {r.exception} | {r.rank or '-'} | {r.status} | {'yes' if r.queued else 'no'} "
                     f"| {'yes' if r.correct else 'no'} | {r.strategy or '-'} | {r.seconds:.1f} |")
    precision = "n/a" if t["precision"] is None else f"{t['precision']:.2f}"
    lines += ["", f"**{t['cases']} cases** ({t['packages']} packages, {t['exception_classes']} exception classes): "
              f"delivered {t['delivered']}/{t['cases']} (correct and queued), "
              f"fix rate {t['fix_rate']:.2f} ({t['correct']}/{t['cases']}), precision {precision} "
              f"({t['queued_correct']} correct of {t['queued']} queued), recall@1 {t['recall_at_1']:.2f}, "
              f"recall@5 {t['recall_at_5']:.2f}, median {t['median_seconds']:.1f} s, {t['tokens']} tokens; "
              f"events with a replayable frame {t['replayable_events']}/{t['cases']}, "
              f"reproduced by the best candidate's replays {t['reproduced_events']}/{t['cases']}."]
    from pipeline.benchmark.localisation import summary

    lines += ["", summary(t["localisation"])]
    if "templates_only" in t:
        a, m = t["templates_only"], t["llm"]
        a_precision = "n/a" if a["precision"] is None else f"{a['precision']:.2f}"
        lines += ["", f"Templates only (same run): delivered {a['delivered']}/{t['cases']}, fix rate {a['fix_rate']:.2f}, "
                  f"precision {a_precision}. Templates + LLM: delivered {t['delivered']}/{t['cases']}, "
                  f"fix rate {t['fix_rate']:.2f}, precision {precision}; the LLM delivered {m['delivered']} "
                  f"(share {m['share_of_delivered']:.2f}) from {m['requests']} requests {m['request_outcomes']}; "
                  f"attempts per correct LLM fix {m['attempts_per_correct_fix']}, tokens per correct LLM fix "
                  f"{m['tokens_per_correct_fix']}; {t['mean_seconds']:.1f} s per case, {t['total_seconds']:.0f} s in all."]
    return "\n".join(lines)
