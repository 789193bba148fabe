"""Localisation on the crash benchmark: recall@1 and recall@5 of stack-only against fused ranking.

For each case: the buggy sdist (the corpus checker's cache), the event its repro.py raises under the
real sentry-sdk (captured once, cached in bench/.cache/events/), then in-process: the event marked
and scrubbed as `autofix fix` does, the stack retrieved, the symbol index built, and both rankings
judged with the benchmark's own rule (`runner._localisation_rank`: the position of the function the
real fix changed). Nothing is patched or verified, so the whole corpus takes seconds once the
sources and events are cached:

    autofix bench --localisation-only [--json]
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from pipeline.benchmark import runner
from pipeline.context.index import build_index
from pipeline.context.rank import DEFAULT_WEIGHTS, FusionWeights, fused_ranking, stack_ranking
from pipeline.context.retrieve import retrieve
from pipeline.context.search import CodeSearch
from pipeline.records import CodeContext, ErrorEvent, Location


@dataclass(frozen=True)
class LocalisationResult:
    id: str
    rank_stack: int | None
    rank_fused: int | None
    seconds: float
    reason: str = ""
    top_stack: tuple[str, ...] = ()
    top_fused: tuple[str, ...] = ()


def _event_file(case: Any, corpus: ModuleType, source: Path, deps: Path | None) -> Path:
    repro = (case.folder / "repro.py").read_bytes()
    digest = hashlib.sha256(repro + f"{case.package}=={case.buggy_version}".encode()).hexdigest()[:12]
    path: Path = corpus.CACHE / "events" / f"{case.id}-{digest}.json"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="autofix-loc-") as work:
            out = Path(work) / "event.json"
            problem = runner._capture(case, source / case.source_root, deps, out)
            if problem:
                raise RuntimeError(problem)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(out.read_bytes())
            tmp.replace(path)
    return path


def _dicts(locations: Sequence[Location]) -> list[dict[str, Any]]:
    return [{"path": loc.path, "function": loc.function, "line": loc.line} for loc in locations]


def prepared_event(root: Path, event_path: Path) -> tuple[ErrorEvent, CodeContext]:
    """The captured event marked, scrubbed and grouped as `autofix fix` does, and its retrieved stack
    in the checkout at `root`."""
    from pipeline.grouping import group
    from pipeline.scrub import scrub_event
    from pipeline.sources import load_path
    from pipeline.sources.in_app import InAppRules, repo_packages

    rules = InAppRules.of(repo_packages(root))
    event, _ = group(scrub_event(rules.mark(load_path(event_path)[0])))
    return event, retrieve(event, root)


def rank_pair(case: Any, corpus: ModuleType, root: Path, event_path: Path, home: Path,
              weights: FusionWeights = DEFAULT_WEIGHTS) -> tuple[list[Location], list[Location]]:
    """Stack-only and fused localisation of the case's event in the checkout at `root`."""
    event, context = prepared_event(root, event_path)
    index = build_index(root, cache_dir=home / "context" / "index")
    return stack_ranking(context), fused_ranking(event, context, index, CodeSearch(index), weights)


def ranks(case: Any, corpus: ModuleType, root: Path, event_path: Path, home: Path) -> tuple[int | None, int | None]:
    stack, fused = rank_pair(case, corpus, root, event_path, home)
    return (runner._localisation_rank(case, corpus, _dicts(stack)),
            runner._localisation_rank(case, corpus, _dicts(fused)))


def localise_case(case: Any, corpus: ModuleType, home: Path, weights: FusionWeights = DEFAULT_WEIGHTS
                  ) -> LocalisationResult:
    started = time.monotonic()
    try:
        source = corpus.unpack_sdist(case.package, case.buggy_version)
        deps = corpus.install_requires(case.requires)
        event_path = _event_file(case, corpus, source, deps)
    except Exception as exc:  # noqa: BLE001 - pip, archives, a repro that no longer raises
        return LocalisationResult(case.id, None, None, round(time.monotonic() - started, 2), f"no event: {exc}")
    stack, fused = rank_pair(case, corpus, source, event_path, home, weights)
    rank_stack = runner._localisation_rank(case, corpus, _dicts(stack))
    rank_fused = runner._localisation_rank(case, corpus, _dicts(fused))
    return LocalisationResult(case.id, rank_stack, rank_fused, round(time.monotonic() - started, 2),
                              top_stack=tuple(f"{x.path}:{x.function}" for x in stack[:5]),
                              top_fused=tuple(f"{x.path}:{x.function}" for x in fused[:5]))


def run(suite: Path, only: Sequence[str] = (), home: Path | None = None,
        on_case: Callable[[LocalisationResult], None] | None = None,
        weights: FusionWeights = DEFAULT_WEIGHTS) -> list[LocalisationResult]:
    corpus = runner.load_corpus_module(suite)
    results: list[LocalisationResult] = []
    with tempfile.TemporaryDirectory(prefix="autofix-loc-home-") as tmp:
        for folder in runner.case_folders(suite, only):
            res = localise_case(corpus.load_case(folder), corpus, home or Path(tmp), weights)
            results.append(res)
            if on_case:
                on_case(res)
    return results


def _recall(ranks: Sequence[int | None], k: int) -> float:
    return round(sum(1 for r in ranks if r is not None and r <= k) / len(ranks), 4) if ranks else 0.0


def totals(results: Sequence[LocalisationResult]) -> dict[str, Any]:
    figures = compare([r.rank_stack for r in results], [r.rank_fused for r in results])
    figures["seconds"] = round(sum(r.seconds for r in results), 2)
    return figures


def compare(stack: Sequence[int | None], fused: Sequence[int | None]) -> dict[str, Any]:
    """Recall@1/@5 of both rankings; the fused one is used only if it wins (a tie keeps the stack)."""
    figures: dict[str, Any] = {
        "cases": len(stack),
        "stack": {"recall_at_1": _recall(stack, 1), "recall_at_5": _recall(stack, 5)},
        "fused": {"recall_at_1": _recall(fused, 1), "recall_at_5": _recall(fused, 5)},
    }
    s, f = figures["stack"], figures["fused"]
    figures["winner"] = "fused" if (f["recall_at_1"], f["recall_at_5"]) > (s["recall_at_1"], s["recall_at_5"]) \
        else "stack"
    return figures


def as_json(results: Sequence[LocalisationResult]) -> dict[str, Any]:
    return {"totals": totals(results), "cases": [asdict(r) for r in results]}


def markdown(results: Sequence[LocalisationResult]) -> str:
    lines = ["| case | rank stack-only | rank fused |", "| --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r.id} | {r.rank_stack or '-'} | {r.rank_fused or '-'} |")
    return "\n".join([*lines, "", summary(totals(results))])


def summary(t: Mapping[str, Any]) -> str:
    s, f = t["stack"], t["fused"]
    return (f"**Localisation, {t['cases']} cases**: stack-only recall@1 {s['recall_at_1']:.2f}, "
            f"recall@5 {s['recall_at_5']:.2f}; fused (stack + BM25) recall@1 {f['recall_at_1']:.2f}, "
            f"recall@5 {f['recall_at_5']:.2f}; used: {t['winner']}.")
