"""Score a candidate and decide whether a reviewer sees it.

Confidence is a sum of named parts, each a piece of evidence, so a reviewer can see why a candidate
ranks where it does; when the repo's tests did not run the part is named `tests_not_run` and earns
half its weight. The gate admits only verified candidates inside the change policy, and, when the
policy requires tests (`require_tests`, on for triage runs), only those whose tests ran; everything
else is kept (held) for audit but never queued. Files and line counts come from the diff itself,
never from what the fixer says it touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.fixers.diffing import changed_lines, diff_files
from pipeline.records import (
    CandidateStatus,
    Cost,
    FixCandidate,
    Patch,
    ReplayStatus,
    Verification,
    note_frame,
)
from pipeline.settings import GateConfig

# Evidence weights. They sum to 1.0 for a verified, minimal, template patch with passing tests.
WEIGHTS: Mapping[str, float] = {
    "reproduced": 0.30,  # the replays failed with the event's exception before the patch
    "repro_passes": 0.25,  # and every one that did completes after it
    "tests_pass": 0.20,  # no test that passed on the base fails after it
    "small_diff": 0.10,  # shrinks linearly to 0 at the policy's line limit
    "strategy_prior": 0.15,  # how often this strategy's patches are accepted (learning.py)
}
# Independent model samples that agreed with a verified patch (the LLM fixer's confirm_samples): each
# one adds this much, up to AGREEMENT_MAX; a part beyond the weights above, for sampled fixers only.
AGREEMENT_WEIGHT = 0.05
AGREEMENT_MAX = 0.10
STRATEGY_PRIOR: Mapping[str, float] = {"template": 1.0, "revert": 0.8, "llm": 0.6}
TESTS_NOT_RUN = "tests_not_run"


@dataclass(frozen=True)
class GateDecision:
    admitted: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Bar:
    """The bar a kind of fix must clear, raised by reviewers' record of it (pipeline/learning.py)."""

    min_confidence: float
    hold: str | None = None  # set: held whatever the confidence, and why
    why: str = ""  # the record behind the bar, for the reason a reviewer reads


def confidence_parts(patch: Patch, verification: Verification | None, gate: GateConfig,
                     prior: Mapping[str, float] = STRATEGY_PRIOR) -> dict[str, float]:
    v = verification
    lines = changed_lines(patch.diff)
    family = patch.strategy.split(":", 1)[0]
    parts = {
        "reproduced": WEIGHTS["reproduced"] if v and v.reproduced else 0.0,
        "repro_passes": WEIGHTS["repro_passes"] if v and v.repro_passes_after else 0.0,
        "tests_pass": WEIGHTS["tests_pass"] if v and v.tests_pass_after else 0.0,
        "small_diff": round(WEIGHTS["small_diff"] * max(0.0, 1 - lines / max(gate.max_changed_lines, 1)), 4),
        "strategy_prior": round(WEIGHTS["strategy_prior"] * prior.get(family, 0.5), 4),
    }
    if patch.agreement and v is not None and v.verified:
        parts["agreement"] = min(AGREEMENT_MAX, AGREEMENT_WEIGHT * patch.agreement)
    if v and v.tests_pass_after is None and v.repro_passes_after:
        del parts["tests_pass"]
        parts[TESTS_NOT_RUN] = WEIGHTS["tests_pass"] / 2
    return parts


def callers_unchecked(verification: Verification) -> str:
    """The first in-app frame above the patched function whose replay could show what that function
    now returns, when none of them reproduced the crash; empty when one did, or when the patched
    function is the outermost in-app frame."""
    depth = verification.patched_depth
    # Rows stored before replays carried their depth have depth 0 everywhere: their role says it.
    above = [r for r in verification.replays if r.depth > depth or (depth == 0 and r.role == "caller")]
    if any(r.judged and r.before is ReplayStatus.REPRODUCED for r in above):
        return ""
    if depth == 0:
        unchecked = [note_frame(note) for note in verification.not_replayable if note.startswith("caller ")]
    elif verification.stack_frames and verification.stack_frames - 1 <= depth:
        return ""  # nothing in the app calls the patched function: its caller is the app's entry point
    else:
        unchecked = [f"the callers of the patched function (stack distance {depth})"]
    unchecked += [f"caller {r.name} (its replay did not reproduce)" for r in above]
    return unchecked[0] if unchecked else ""


def decide(patch: Patch, verification: Verification | None, confidence: float, gate: GateConfig,
           bar: Bar | None = None, require_tests: bool = False) -> GateDecision:
    reasons: list[str] = []
    require_tests = require_tests or gate.tests_required(False, patch.strategy) and gate.require_tests is not True
    if verification is None or not verification.verified:
        reasons.append((verification.reason if verification else "") or "not verified")
    elif require_tests and not verification.tests_run:
        why = (f"gate.require_tests_for: {patch.strategy}" if patch.strategy.split(":", 1)[0] in gate.require_tests_for
               else "gate.require_tests")
        reasons.append(f"tests not run, and the policy requires them ({why})")
    if gate.require_caller_replay and verification is not None and verification.verified:
        unchecked = callers_unchecked(verification)
        if unchecked:
            reasons.append(f"only the patched frame's replay shows the fix, and no in-app caller could be "
                           f"replayed ({unchecked}): what the patched function now returns is unchecked "
                           "(gate.require_caller_replay)")
    files = diff_files(patch.diff)
    lines = changed_lines(patch.diff)
    if not files:
        reasons.append("the diff changes no file")
    if len(files) > gate.max_files:
        reasons.append(f"touches {len(files)} files (policy allows {gate.max_files})")
    if lines > gate.max_changed_lines:
        reasons.append(f"changes {lines} lines (policy allows {gate.max_changed_lines})")
    threshold = max(gate.min_confidence, bar.min_confidence) if bar is not None else gate.min_confidence
    if confidence < threshold:
        raised = f" (raised: {bar.why})" if bar is not None and threshold > gate.min_confidence else ""
        reasons.append(f"confidence {confidence:.2f} is below {threshold:.2f}{raised}")
    if bar is not None and bar.hold:
        reasons.append(bar.hold)
    return GateDecision(not reasons, tuple(reasons))


def score(issue_fingerprint: str, patch: Patch, verification: Verification | None, cost: Cost,
          gate: GateConfig, prior: Mapping[str, float] = STRATEGY_PRIOR, bar: Bar | None = None,
          require_tests: bool = False, base_commit: str = "") -> tuple[FixCandidate, GateDecision]:
    parts = confidence_parts(patch, verification, gate, prior)
    confidence = round(sum(parts.values()), 4)
    decision = decide(patch, verification, confidence, gate, bar, require_tests)
    status = CandidateStatus.AWAITING_REVIEW if decision.admitted else CandidateStatus.HELD
    candidate = FixCandidate(issue_fingerprint, patch, verification, confidence, parts, cost, status,
                             base_commit=base_commit)
    return candidate, decision
