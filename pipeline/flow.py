"""One issue from event to ranked candidates: retrieve, generate, reproduce, verify, gate.

This is the function both `autofix fix` (no store) and the triage loop (store, workers) call. It does
no persistence itself; callers save what it returns.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from pipeline.context.retrieve import retrieve
from pipeline.gates import GateDecision, score
from pipeline.ports import Fixer, Limits, Sandbox
from pipeline.records import CodeContext, Cost, ErrorEvent, FixCandidate, Issue, Review
from pipeline.repro import Reproduction, synthesize
from pipeline.settings import GateConfig
from pipeline.verify import VerifyRequest, run_reproduction, verify

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FixOutcome:
    status: str  # verified | unverified | no_fix
    reason: str
    context: CodeContext
    candidates: tuple[FixCandidate, ...] = ()  # best first
    decisions: Mapping[str, GateDecision] = field(default_factory=dict)
    reproduction: Reproduction | None = None
    cost: Cost = Cost()

    @property
    def best(self) -> FixCandidate | None:
        return self.candidates[0] if self.candidates else None


@dataclass(frozen=True)
class FixRequest:
    event: ErrorEvent
    issue: Issue
    repo_root: Path
    work_base: Path
    test_command: str | None = None
    path_mappings: Mapping[str, str] = field(default_factory=dict)
    gate: GateConfig = field(default_factory=GateConfig)
    limits: Limits = Limits()
    history: Sequence[Review] = ()
    tool_paths: tuple[Path, ...] = ()  # read-only in the sandbox; each one's bin/ goes first on PATH


def _rank(candidate: FixCandidate) -> tuple[bool, float]:
    verified = candidate.verification is not None and candidate.verification.verified
    return (verified, candidate.confidence)


def fix_issue(request: FixRequest, fixers: Sequence[Fixer], sandbox: Sandbox) -> FixOutcome:
    started = time.monotonic()
    context = retrieve(request.event, request.repo_root, request.path_mappings)
    crash = context.crash
    if crash is None or crash.role != "crash":
        reason = "no in-app frame of the escaping exception matches a file in the repo"
        if context.unmatched_frames:
            reason += f" (unmatched: {', '.join(context.unmatched_frames[:3])})"
        return FixOutcome("no_fix", reason, context, cost=Cost(seconds=time.monotonic() - started))

    patches = [p for fixer in fixers for p in fixer.propose(request.issue, request.event, context,
                                                             request.history)]
    if not patches:
        return FixOutcome("no_fix", f"no fixer has a patch for {request.issue.fix_class} at "
                          f"{crash.path}:{crash.line} in {crash.function}", context,
                          cost=Cost(seconds=time.monotonic() - started))

    attempt = synthesize(request.event, context)
    base = VerifyRequest(request.repo_root, patches[0], attempt.reproduction, request.test_command,
                         request.work_base, request.limits, tool_paths=request.tool_paths)
    before = run_reproduction(base, sandbox)
    candidates: list[FixCandidate] = []
    decisions: dict[str, GateDecision] = {}
    for patch in patches:
        patch_started = time.monotonic()
        verification = verify(replace(base, patch=patch), sandbox, before)
        cost = Cost(tokens=patch.tokens, seconds=round(time.monotonic() - patch_started, 3))
        candidate, decision = score(request.issue.fingerprint, patch, verification, cost, request.gate)
        candidates.append(candidate)
        decisions[candidate.id] = decision
        if verification.verified and decision.admitted:
            break  # patches come best-first from each fixer; one proven fix is enough for a reviewer
    candidates.sort(key=_rank, reverse=True)
    best = candidates[0]
    verified = best.verification is not None and best.verification.verified
    total = Cost(tokens=sum(c.cost.tokens for c in candidates), seconds=round(time.monotonic() - started, 3))
    # Without a reproduction, why none could be written is the reason; else what verification found.
    reason = attempt.reason if attempt.reproduction is None or best.verification is None else best.verification.reason
    log.info("issue.fix_attempted", fingerprint=request.issue.fingerprint, candidates=len(candidates),
             verified=verified)
    return FixOutcome("verified" if verified else "unverified", reason, context, tuple(candidates),
                      decisions, attempt.reproduction, total)
