"""The gate: confidence as a sum of named evidence, and only verified, small candidates admitted."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.fixers.diffing import unified_diff
from pipeline.gates import TESTS_NOT_RUN, WEIGHTS, callers_unchecked, confidence_parts, decide, score
from pipeline.records import (
    CandidateStatus,
    Cost,
    Patch,
    ReplayResult,
    ReplayStatus,
    SandboxRun,
    Verification,
    note_frame,
    unreplayable_note,
)
from pipeline.settings import GateConfig

GATE = GateConfig(min_confidence=0.6, max_changed_lines=10, max_files=2)
ONE_LINE = unified_diff("app.py", "def f(x):\n    return x.strip()\n", "def f(x):\n    return (x or '').strip()\n")


def patch(diff: str = ONE_LINE, files: tuple[str, ...] = ("app.py",), strategy: str = "template:none_guard") -> Patch:
    return Patch(strategy=strategy, diff=diff, files=files, description="d")


def verification(*, reproduced: bool = True, after: bool = True, tests: bool | None = True,
                 applied: bool = True, reason: str = "") -> Verification:
    run = SandboxRun(kind="repro_after", command="pytest", exit_code=0 if after else 1, duration_s=0.1,
                     output_tail="")
    return Verification(runs=(run,), reproduced=reproduced, repro_passes_after=after,
                        tests_pass_after=tests, applied=applied, reason=reason)


def test_weights_sum_to_one() -> None:
    assert sum(WEIGHTS.values()) == pytest.approx(1.0)


def test_confidence_is_the_sum_of_its_parts_for_a_verified_template_patch() -> None:
    candidate, decision = score("fp", patch(), verification(), Cost(), GATE)
    parts = candidate.confidence_parts
    assert set(parts) == set(WEIGHTS)
    assert candidate.confidence == pytest.approx(sum(parts.values()))
    # two changed lines of ten allowed: small_diff keeps 80 % of its weight
    assert parts["small_diff"] == pytest.approx(0.08)
    assert parts["strategy_prior"] == pytest.approx(0.15)
    assert candidate.confidence == pytest.approx(0.98)
    assert decision.admitted and decision.reasons == ()
    assert candidate.status is CandidateStatus.AWAITING_REVIEW


def test_tests_not_run_earn_half_the_test_weight_under_a_name_that_says_so() -> None:
    parts = confidence_parts(patch(), verification(tests=None), GATE)
    assert "tests_pass" not in parts
    assert parts[TESTS_NOT_RUN] == pytest.approx(WEIGHTS["tests_pass"] / 2)


def test_require_tests_holds_a_verified_candidate_whose_tests_did_not_run() -> None:
    v = verification(tests=None)
    assert decide(patch(), v, 1.0, GATE, require_tests=False).admitted
    held = decide(patch(), v, 1.0, GATE, require_tests=True)
    assert held.reasons == ("tests not run, and the policy requires them (gate.require_tests)",)
    assert decide(patch(), verification(tests=True), 1.0, GATE, require_tests=True).admitted


def test_require_tests_is_on_for_triage_runs_unless_the_gate_says_otherwise() -> None:
    assert GateConfig().tests_required(triage=True) is True
    assert GateConfig().tests_required(triage=False) is False
    assert GateConfig(require_tests=False).tests_required(triage=True) is False
    assert GateConfig(require_tests=True).tests_required(triage=False) is True


def test_the_gate_counts_the_files_the_diff_touches_not_the_ones_the_fixer_names() -> None:
    diff = "".join(unified_diff(f"m{i}.py", "x = 1\n", "x = 2\n") for i in range(3))
    claims_one = patch(diff=diff, files=("m0.py",))
    decision = decide(claims_one, verification(), 1.0, GATE)
    assert decision.reasons == ("touches 3 files (policy allows 2)",)
    nothing = decide(patch(diff="not a diff", files=("app.py",)), verification(), 1.0, GATE)
    assert "the diff changes no file" in nothing.reasons


def test_static_problems_make_a_candidate_unverified() -> None:
    v = verification()
    assert v.verified
    from dataclasses import replace
    broken = replace(v, static_problems=("app.py: the patch adds an undefined name 'nope'",))
    assert not broken.verified
    assert not decide(patch(), broken, 1.0, GATE).admitted


def test_strategy_prior_ranks_template_over_revert_over_llm_over_unknown() -> None:
    priors = [confidence_parts(patch(strategy=s), verification(), GATE)["strategy_prior"]
              for s in ("template:x", "revert", "llm", "mystery")]
    assert priors == sorted(priors, reverse=True) and len(set(priors)) == 4


@pytest.mark.parametrize("v", [
    None,
    verification(reproduced=False, reason="the reproduction passed before the patch"),
    verification(after=False, reason="the reproduction still fails"),
    verification(tests=False, reason="tests fail after the patch"),
    verification(applied=False, reason="patch does not apply"),
])
def test_unverified_candidate_is_never_admitted_whatever_its_confidence(v: Verification | None) -> None:
    decision = decide(patch(), v, 1.0, GATE)
    assert not decision.admitted
    assert decision.reasons[0] == (v.reason if v else "not verified")
    candidate, _ = score("fp", patch(), v, Cost(), GATE)
    assert candidate.status is CandidateStatus.HELD


def test_unverified_candidate_without_a_reason_still_says_why() -> None:
    decision = decide(patch(), verification(after=False), 1.0, GATE)
    assert decision.reasons == ("not verified",)


def test_verified_candidate_touching_too_many_files_is_held() -> None:
    diff = "".join(unified_diff(name, "x = 1\n", "x = 2\n") for name in ("a.py", "b.py", "c.py"))
    decision = decide(patch(diff=diff, files=("a.py", "b.py", "c.py")), verification(), 1.0, GATE)
    assert not decision.admitted
    assert decision.reasons == ("touches 3 files (policy allows 2)",)


def test_verified_candidate_changing_too_many_lines_is_held() -> None:
    old = "".join(f"x{i} = {i}\n" for i in range(8))
    big = unified_diff("app.py", old, old.replace(" = ", " == "))  # 8 removed + 8 added
    candidate, decision = score("fp", patch(diff=big), verification(), Cost(), GATE)
    assert not decision.admitted
    assert "changes 16 lines (policy allows 10)" in decision.reasons
    assert candidate.confidence_parts["small_diff"] == 0.0
    assert candidate.status is CandidateStatus.HELD


def test_line_limit_is_inclusive() -> None:
    old = "".join(f"x{i} = {i}\n" for i in range(5))
    exactly_ten = unified_diff("app.py", old, old.replace(" = ", " == "))
    assert decide(patch(diff=exactly_ten), verification(), 1.0, GATE).admitted


def test_confidence_threshold_holds_a_verified_candidate_below_it() -> None:
    strict = GateConfig(min_confidence=0.99, max_changed_lines=10, max_files=2)
    candidate, decision = score("fp", patch(), verification(), Cost(), strict)
    assert not decision.admitted
    assert decision.reasons == (f"confidence {candidate.confidence:.2f} is below 0.99",)
    assert decide(patch(), verification(), 0.99, strict).admitted  # at the threshold is enough


def _replayed(*roles: tuple[str, ReplayStatus], notes: tuple[str, ...] = ()) -> Verification:
    replays = tuple(ReplayResult(f"app.f{i}", role, before, ReplayStatus.PASSED if before is ReplayStatus.REPRODUCED
                                 else None) for i, (role, before) in enumerate(roles))
    return replace(verification(), replays=replays, not_replayable=notes)


def test_a_fix_shown_only_at_the_crash_frame_is_held_while_its_in_app_callers_could_not_be_replayed() -> None:
    # astroid's empty format spec, with the in-app objects integration: the crash frame replays, its
    # callers' receivers hold AST nodes, and an index guard passes the replay yet returns nothing.
    crash_only = _replayed(("crash", ReplayStatus.REPRODUCED),
                           notes=("caller JoinedStr._infer (astroid/nodes/node_classes.py:4776): its receiver "
                                  "cannot be rebuilt",))
    held = decide(patch(), crash_only, 1.0, GATE)
    assert not held.admitted
    assert held.reasons == ("only the patched frame's replay shows the fix, and no in-app caller could be replayed "
                            "(caller JoinedStr._infer (astroid/nodes/node_classes.py:4776)): what the patched "
                            "function now returns is unchecked (gate.require_caller_replay)",)
    # A caller whose replay ran but did not fail with the event's exception before is no evidence either.
    unreproduced = _replayed(("crash", ReplayStatus.REPRODUCED), ("caller", ReplayStatus.OTHER_ERROR))
    assert "caller app.f1 (its replay did not reproduce)" in decide(patch(), unreproduced, 1.0, GATE).reasons[0]
    # The same patch is admitted when the gate is told not to ask for callers.
    assert decide(patch(), crash_only, 1.0, GateConfig(max_changed_lines=10, require_caller_replay=False)).admitted


@pytest.mark.parametrize("roles, notes", [
    ((("crash", ReplayStatus.REPRODUCED), ("caller", ReplayStatus.REPRODUCED)), ("caller g (a.py:3): why",)),
    ((("caller", ReplayStatus.REPRODUCED),), ("crash f (a.py:1): its argument was scrubbed",)),
    ((("crash", ReplayStatus.REPRODUCED),), ()),  # the crash frame is the outermost in-app frame
])
def test_a_fix_is_admitted_when_a_caller_replays_or_the_crash_frame_has_no_in_app_caller(
        roles: tuple[tuple[str, ReplayStatus], ...], notes: tuple[str, ...]) -> None:
    assert decide(patch(), _replayed(*roles, notes=notes), 1.0, GATE).admitted


def _above_the_crash(frames: int, *depths_and_status: tuple[int, ReplayStatus]) -> Verification:
    """A patch to the crash frame's caller (stack distance 1) in a stack of `frames` in-app frames."""
    # Below the patch (depth 0) the replay still raises after it; at and above it the reproduced ones pass.
    replays = tuple(ReplayResult(f"app.f{d}", "crash" if d == 0 else "caller", before,
                                 (ReplayStatus.PASSED if d >= 1 else before) if before is ReplayStatus.REPRODUCED
                                 else None, depth=d, judged=d >= 1) for d, before in depths_and_status)
    return replace(verification(), replays=replays, patched_depth=1, stack_frames=frames)


def test_a_fix_in_a_caller_needs_a_replay_above_it_unless_it_is_the_outermost_in_app_frame() -> None:
    outermost = _above_the_crash(2, (0, ReplayStatus.REPRODUCED), (1, ReplayStatus.REPRODUCED))
    assert decide(patch(), outermost, 1.0, GATE).admitted
    checked_above = _above_the_crash(3, (0, ReplayStatus.REPRODUCED), (1, ReplayStatus.REPRODUCED),
                                     (2, ReplayStatus.REPRODUCED))
    assert decide(patch(), checked_above, 1.0, GATE).admitted
    # A third frame calls the patched caller and could not be replayed: what it now gets is unchecked.
    held = decide(patch(), _above_the_crash(3, (0, ReplayStatus.REPRODUCED), (1, ReplayStatus.REPRODUCED)),
                  1.0, GATE)
    assert not held.admitted
    assert "(the callers of the patched function (stack distance 1))" in held.reasons[0]
    # The crash frame's replay, below the patch, does not count as a caller of it.
    assert callers_unchecked(_above_the_crash(3, (0, ReplayStatus.REPRODUCED), (1, ReplayStatus.REPRODUCED),
                                              (2, ReplayStatus.OTHER_ERROR))) == \
        "the callers of the patched function (stack distance 1)"


def test_a_note_names_its_frame_however_its_reason_reads() -> None:
    note = unreplayable_note("caller", "Checker.handle", "pkg/checker.py", 42,
                             "argument 'node' is not a literal: <Node (x): y>")
    assert note.startswith("caller Checker.handle (pkg/checker.py:42): argument 'node'")
    assert note_frame(note) == "caller Checker.handle (pkg/checker.py:42)"


def test_the_pull_request_body_says_which_replay_was_below_the_patched_function() -> None:
    from datetime import UTC, datetime

    from pipeline.publish import pr_body
    from pipeline.records import Issue

    below = ReplayResult("app.f0", "crash", ReplayStatus.REPRODUCED, ReplayStatus.REPRODUCED, depth=0, judged=False)
    above = ReplayResult("app.f1", "caller", ReplayStatus.REPRODUCED, ReplayStatus.PASSED, depth=1)
    verified = replace(verification(), replays=(below, above), patched_depth=1, stack_frames=2)
    candidate, _ = score("fp", patch(), verified, Cost(), GATE)
    when = datetime(2026, 12, 2, tzinfo=UTC)
    body = pr_body(Issue("fp", "ValueError in f0", "app.f0", "ValueError", when, when), candidate, "evt-1",
                   "ValueError", "alice")
    assert "| crash | `app.f0` | reproduced | reproduced (below the patched function: not judged) |" in body
    assert "| caller | `app.f1` | reproduced | passed |" in body
