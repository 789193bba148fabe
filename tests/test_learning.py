"""The gate's record: Beta-prior acceptance per fix class and strategy, the bar it raises, stats."""

from __future__ import annotations

import pytest

from pipeline.fixers.diffing import unified_diff
from pipeline.gates import WEIGHTS, Bar, decide, score
from pipeline.learning import Ledger, Record, calibration, prior_mean, rejection_reasons, stats
from pipeline.ports import Outcome
from pipeline.records import CandidateStatus, Cost, Patch, SandboxRun, Verification
from pipeline.settings import GateConfig, LearningConfig

RULE = LearningConfig()  # prior strength 2, 3 decisions, target 0.5, hold below 0.2
GATE = GateConfig(min_confidence=0.6, max_changed_lines=10, max_files=2)
ONE_LINE = unified_diff("app.py", "def f(d):\n    return d['k']\n", "def f(d):\n    return d.get('k', '')\n")
PATCH = Patch(strategy="template:get_default", diff=ONE_LINE, files=("app.py",), description="d")


def verification(tests: bool | None) -> Verification:
    run = SandboxRun(kind="repro_after", command="pytest", exit_code=0, duration_s=0.1, output_tail="")
    return Verification(runs=(run,), reproduced=True, repro_passes_after=True, tests_pass_after=tests)


def outcomes(kind: str, n: int, fix_class: str = "KeyError", strategy: str = "template:get_default",
             start: int = 0, reason: str = "") -> list[Outcome]:
    return [Outcome(f"c{start + i}", fix_class, strategy, 0.9, kind, reason) for i in range(n)]  # type: ignore[arg-type]


def judged(history: list[Outcome], tests: bool | None) -> tuple[float, CandidateStatus, tuple[str, ...]]:
    prior, bar = Ledger.from_outcomes(history, RULE).judge("KeyError", PATCH.strategy, GATE)
    candidate, decision = score("fp", PATCH, verification(tests), Cost(), GATE, prior, bar)
    return candidate.confidence, candidate.status, decision.reasons


def test_with_no_decisions_the_learned_prior_is_the_fixed_prior_capped_at_a_proper_beta() -> None:
    empty = Ledger(RULE)
    assert empty.acceptance("KeyError", "template:get_default") == prior_mean("template:x") == 0.9
    assert empty.acceptance("KeyError", "llm") == pytest.approx(0.6)
    assert empty.acceptance("KeyError", "mystery") == pytest.approx(0.5)
    assert empty.bar("KeyError", "template:get_default", GATE) is None
    assert empty.record("KeyError", "llm") == Record("KeyError", "llm")


def test_acceptance_counts_approvals_and_merges_against_rejections_closes_and_regressions() -> None:
    history = (outcomes("approved", 2) + outcomes("merged", 1) + outcomes("rejected", 1, start=10)
               + outcomes("closed", 1, start=20) + outcomes("regressed", 1, start=30))
    ledger = Ledger.from_outcomes(history, RULE)
    record = ledger.record("KeyError", "template:get_default")
    assert (record.accepted, record.rejected, record.decisions) == (3, 3, 6)
    assert ledger.acceptance("KeyError", "template:get_default") == pytest.approx((2 * 0.9 + 3) / (2 + 6))


def test_records_are_kept_per_fix_class_and_strategy() -> None:
    ledger = Ledger.from_outcomes(outcomes("rejected", 5) + outcomes("approved", 2, fix_class="ZeroDivisionError"),
                                  RULE)
    assert ledger.record("KeyError", "template:get_default").rejected == 5
    assert ledger.record("KeyError", "template:key_guard").decisions == 0
    assert ledger.record("ZeroDivisionError", "template:get_default").accepted == 2


def test_the_learned_prior_replaces_the_fixed_strategy_prior_in_the_confidence() -> None:
    fresh, _, _ = judged([], tests=True)
    after, _, _ = judged(outcomes("rejected", 3), tests=True)
    parts_weight = WEIGHTS["strategy_prior"]
    assert fresh - after == pytest.approx(parts_weight * (0.9 - 1.8 / 5), abs=1e-3)


def test_a_run_of_rejections_raises_the_bar_then_holds_the_class() -> None:
    # No record: a verified candidate is admitted even without a test command.
    assert judged([], tests=None)[1] is CandidateStatus.AWAITING_REVIEW

    # Five rejections: acceptance 1.8/7 = 0.26, the bar 0.6 + 0.4 * (0.5 - 0.26) / 0.5 = 0.79.
    confidence, status, reasons = judged(outcomes("rejected", 5, reason="wrong default"), tests=None)
    assert status is CandidateStatus.HELD and confidence < 0.79
    assert reasons == (f"confidence {confidence:.2f} is below 0.79 (raised: reviewers accepted 0 of 5 "
                       "KeyError fixes (0 of 5 by template:get_default), acceptance 0.26)",)
    # More evidence clears it: the same fix with the repo's tests passing.
    assert judged(outcomes("rejected", 5), tests=True)[1] is CandidateStatus.AWAITING_REVIEW

    # Eight rejections: acceptance 0.18 < 0.2, held whatever the evidence.
    confidence, status, reasons = judged(outcomes("rejected", 8), tests=True)
    assert status is CandidateStatus.HELD
    assert reasons[-1] == ("held: reviewers accepted 0 of 8 KeyError fixes (0 of 8 by template:get_default), "
                           "acceptance 0.18, below 0.20")


def test_a_strategy_never_tried_in_a_class_reviewers_keep_rejecting_starts_where_the_class_stands() -> None:
    ledger = Ledger.from_outcomes(outcomes("rejected", 5), RULE)
    assert ledger.acceptance("KeyError", "template:key_guard") == pytest.approx(1.8 / 7)
    assert ledger.acceptance("ZeroDivisionError", "template:key_guard") == pytest.approx(0.9)
    bar = ledger.bar("KeyError", "template:key_guard", GATE)
    assert bar is not None and bar.min_confidence == pytest.approx(0.7943, abs=1e-4)
    assert bar.why == "reviewers accepted 0 of 5 KeyError fixes (0 of 0 by template:key_guard), acceptance 0.26"
    # A strategy reviewers accept in that class climbs back from where the class stands.
    mixed = Ledger.from_outcomes(outcomes("rejected", 5) + outcomes("approved", 6, strategy="template:key_guard",
                                                                     start=50), RULE)
    assert mixed.acceptance("KeyError", "template:key_guard") == pytest.approx((2 * 1.8 / 7 + 6) / 8)
    assert mixed.bar("KeyError", "template:key_guard", GATE) is None


def test_too_few_decisions_never_raise_the_bar_and_approvals_bring_it_back_down() -> None:
    assert Ledger.from_outcomes(outcomes("rejected", 2), RULE).bar("KeyError", PATCH.strategy, GATE) is None
    recovered = Ledger.from_outcomes(outcomes("rejected", 5) + outcomes("approved", 4, start=100), RULE)
    assert recovered.acceptance("KeyError", PATCH.strategy) == pytest.approx(5.8 / 11)
    assert recovered.bar("KeyError", PATCH.strategy, GATE) is None


def test_the_gate_keeps_its_configured_threshold_when_the_bar_is_lower() -> None:
    decision = decide(PATCH, verification(True), 0.55, GATE, Bar(0.3, why="good record"))
    assert decision.reasons == ("confidence 0.55 is below 0.60",)
    assert decide(PATCH, verification(True), 0.95, GATE, Bar(0.9, hold="held: bad record")).reasons == (
        "held: bad record",)


def test_calibration_buckets_decided_candidates_by_confidence() -> None:
    history = [
        Outcome("a", "K", "s", 0.95, "approved"), Outcome("a", "K", "s", 0.95, "merged"),
        Outcome("b", "K", "s", 1.0, "approved"), Outcome("b", "K", "s", 1.0, "closed"),
        Outcome("c", "K", "s", 0.65, "rejected"), Outcome("d", "K", "s", 0.61, "approved"),
        Outcome("e", "K", "s", 0.2, "rejected"),
    ]
    table = {(b.low, b.high): (b.candidates, b.accepted, b.rate) for b in calibration(history)}
    assert table[(0.9, 1.0)] == (2, 1, 0.5)  # 1.0 belongs to the last bucket; b was closed unmerged
    assert table[(0.6, 0.7)] == (2, 1, 0.5)
    assert table[(0.0, 0.5)] == (1, 0, 0.0)
    assert table[(0.7, 0.8)] == (0, 0, None)


def test_rejection_reasons_are_counted_whatever_their_case_and_spacing() -> None:
    history = (outcomes("rejected", 2, reason="Wrong default") + outcomes("rejected", 1, reason="wrong  default ")
               + outcomes("rejected", 1, reason="hides the real bug") + outcomes("approved", 1, reason="nice"))
    assert rejection_reasons(history) == (("Wrong default", 3), ("hides the real bug", 1))


def test_stats_lists_the_most_decided_kinds_first_with_their_bar() -> None:
    history = outcomes("rejected", 5) + outcomes("approved", 1, fix_class="ZeroDivisionError",
                                                 strategy="template:zero_guard")
    result = stats(history, RULE, GATE)
    assert [(a.record.fix_class, a.record.rejected) for a in result.acceptance] == [("KeyError", 5),
                                                                                    ("ZeroDivisionError", 0)]
    assert result.acceptance[0].bar is not None and result.acceptance[0].bar.min_confidence == pytest.approx(0.7943, abs=1e-4)
    assert result.acceptance[1].bar is None
