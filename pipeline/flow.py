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
from pipeline.gates import STRATEGY_PRIOR, GateDecision, score
from pipeline.learning import Ledger
from pipeline.ports import Fixer, Limits, ReadsHints, Sandbox
from pipeline.records import CodeContext, Cost, ErrorEvent, FixCandidate, Hint, Issue, Patch, Review
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
    hints: tuple[Hint, ...] = ()  # feedback on earlier attempts, for fixers that read it (ReadsHints)
    tried: frozenset[str] = frozenset()  # ids of patches already rejected, regressed or published
    learned: Ledger | None = None  # the gate's record of reviewer decisions; None: fixed priors


def _propose(fixer: Fixer, request: FixRequest, context: CodeContext) -> list[Patch]:
    if request.hints and isinstance(fixer, ReadsHints):
        return fixer.propose_with_hints(request.issue, request.event, context, request.history, request.hints)
    return fixer.propose(request.issue, request.event, context, request.history)


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

    proposed = [p for fixer in fixers for p in _propose(fixer, request, context)]
    patches = [p for p in proposed if p.id not in request.tried]
    if not patches:
        where = f"{request.issue.fix_class} at {crash.path}:{crash.line} in {crash.function}"
        reason = (f"every patch the fixers propose for {where} was tried before" if proposed
                  else f"no fixer has a patch for {where}")
        return FixOutcome("no_fix", reason, context, cost=Cost(seconds=time.monotonic() - started))

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
        prior, bar = (request.learned.judge(request.issue.fix_class, patch.strategy, request.gate)
                      if request.learned is not None else (STRATEGY_PRIOR, None))
        candidate, decision = score(request.issue.fingerprint, patch, verification, cost, request.gate,
                                    prior, bar)
        if attempt.reproduction is not None:
            candidate = replace(candidate, reproduction=attempt.reproduction.source)
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
             verified=verified, hints=len(request.hints), tried=len(request.tried))
    return FixOutcome("verified" if verified else "unverified", reason, context, tuple(candidates),
                      decisions, attempt.reproduction, total)
