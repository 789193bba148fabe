"""The crash-bug benchmark: the corpus's shape, the runner's arithmetic, and one real case end to end.

The real case downloads its sdist from PyPI (cached under bench/.cache/), so it is marked `network`
and runs in `make bench-check` beside bench/check_corpus.py (each case crashes on its buggy release
and passes on its fixed one), not in the default suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.benchmark.runner import CaseResult, markdown, totals

ROOT = Path(__file__).resolve().parents[1]
CRASHES = ROOT / "bench" / "crashes"


def test_the_corpus_spans_enough_packages_and_exception_classes() -> None:
    import tomllib

    cases = [tomllib.loads((p / "case.toml").read_text()) for p in CRASHES.iterdir() if (p / "case.toml").is_file()]
    assert len(cases) >= 30
    assert len({c["package"] for c in cases}) >= 15
    assert len({c["exception"] for c in cases}) >= 8


@pytest.mark.network
def test_bench_fixes_a_real_case_and_judges_it_with_the_hidden_check(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "bench", "--case", "boltons-multireplace-empty-map", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    (case,) = report["cases"]
    assert case["status"] in ("verified", "unverified")
    assert case["produced"] and case["correct"]  # the template's patch passes the hidden assertions
    assert case["rank"] is not None and case["rank"] <= 5
    assert report["totals"]["fix_rate"] == 1.0


@pytest.mark.network
def test_bench_reports_both_sdk_configurations_and_the_integration_makes_a_method_crash_deliverable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTOFIX_")}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "bench", "--case", "boltons-complement-issubset", "--sdk", "both", "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["sdk"] == "both" and report["cases"] == report["configurations"]["default"]["cases"]
    (default,) = report["configurations"]["default"]["cases"]
    (objects,) = report["configurations"]["objects"]["cases"]
    # The receiver is `complement({1, 2})` by default: no frame replays, the correct patch is not queued.
    assert default["replays"] == 0 and default["correct"] and not default["queued"]
    assert "which shows no attributes" in default["not_replayable"][0]
    assert objects["replays"] == 2 and objects["reproduced"] == 2 and objects["correct"] and objects["queued"]
    assert report["configurations"]["objects"]["totals"]["delivered"] == 1


def _result(id: str, *, correct: bool, queued: bool, rank: int | None, seconds: float) -> CaseResult:
    return CaseResult(id, id.split("-")[0], "KeyError", "verified" if queued else "no_fix", produced=correct or queued,
                      queued=queued, correct=correct, rank=rank, seconds=seconds, tokens=0, usd=0.0,
                      strategy=None, reason="")


def test_totals_count_fix_rate_precision_and_recall_at_k() -> None:
    results = [
        _result("a-1", correct=True, queued=True, rank=1, seconds=1.0),
        _result("b-1", correct=False, queued=True, rank=3, seconds=2.0),
        _result("c-1", correct=True, queued=False, rank=7, seconds=3.0),
        _result("d-1", correct=False, queued=False, rank=None, seconds=10.0),
    ]
    t = totals(results)
    assert t["fix_rate"] == 0.5
    assert t["precision"] == 0.5  # one of the two queued candidates is correct
    assert t["recall_at_1"] == 0.25 and t["recall_at_5"] == 0.5
    assert t["median_seconds"] == 2.5
    assert "fix rate 0.50 (2/4)" in markdown(results)
    assert "precision 0.50 (1 correct of 2 queued)" in markdown(results)


def test_precision_is_undefined_when_nothing_was_queued() -> None:
    assert totals([_result("a-1", correct=False, queued=False, rank=None, seconds=1.0)])["precision"] is None


def test_a_crash_in_a_nested_function_counts_as_inside_the_function_the_fix_changed() -> None:
    from types import SimpleNamespace

    from pipeline.benchmark.runner import _localisation_rank, load_corpus_module

    corpus = load_corpus_module(CRASHES)
    case = SimpleNamespace(fixed_functions=("attr._make._make_repr",), fixed_files=("src/attr/_make.py",),
                           source_root="src")
    nested = {"path": "src/attr/_make.py", "function": "_make_repr.<locals>.__repr__", "line": 9}
    sibling = {"path": "src/attr/_make.py", "function": "_make_repr_args", "line": 3}
    assert _localisation_rank(case, corpus, [sibling, nested]) == 2
    assert _localisation_rank(case, corpus, [sibling]) is None
