"""One issue from event to ranked candidates: retrieve, generate, replay, verify, gate.

This is the function both `autofix fix` (no store) and the triage loop (store, workers) call. It does
no persistence itself; callers save what it returns.

Everything happens on one commit: the one the event's release names, else the default branch's
head. Retrieval and the fixers read the source from a worktree of that commit, the repo's
environment is built from its declaration there, the baseline (replays and tests before) runs on
it once, and each patch is verified on it; candidates record it, and publishing starts from it.
After the template patches, the remaining work goes to the iterative fixers (an LLM with a feedback
loop) through one call site, `_iterate`, with `verify(patch) -> Verification` as their only tool.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Protocol, runtime_checkable

import structlog

from pipeline.context.index import build_index
from pipeline.context.policy import ContextPolicy
from pipeline.context.rank import fused_ranking
from pipeline.context.retrieve import retrieve
from pipeline.context.search import code_search
from pipeline.errors import TransientError
from pipeline.gates import STRATEGY_PRIOR, GateDecision, score
from pipeline.learning import Ledger
from pipeline.ports import Fixer, Limits, ReadsHints, Sandbox
from pipeline.records import (
    CandidateStatus,
    CodeContext,
    Cost,
    ErrorEvent,
    FixCandidate,
    Hint,
    Issue,
    Patch,
    Review,
    Verification,
)
from pipeline.repro import ReplayPlan, plan_replays
from pipeline.settings import ContextConfig, EnvConfig, GateConfig
from pipeline.testruns import discover_test_command
from pipeline.verify import Baseline, VerifySetup, run_baseline, verify_patch
from sandbox.env import EnvBuildFailed, ensure_env
from sandbox.workspace import commit_for_release, open_workspace

log = structlog.get_logger(__name__)

Verify = Callable[[Patch], Verification]


@runtime_checkable
class RepairsWithHints(Protocol):
    """An iterative fixer that also reads feedback on earlier attempts (a reviewer's hint, CI output):
    `_iterate` calls this instead of `repair` when the attempt has hints. Hint text is data."""

    def repair_with_hints(self, issue: Issue, event: ErrorEvent, context: CodeContext, verify: Verify,
                          history: Sequence[Review], hints: Sequence[Hint]) -> Sequence[tuple[Patch, Verification]]: ...


class IterativeFixer(Protocol):
    """A fixer that proposes, learns from each verdict and proposes again (the LLM fixer).

    It gets `verify`, a function of the patch alone (the baseline is already bound), and returns
    what it tried with the verdict of each, best last or first as it likes: the flow ranks them.
    """

    name: str

    def repair(self, issue: Issue, event: ErrorEvent, context: CodeContext, verify: Verify,
               history: Sequence[Review]) -> Sequence[tuple[Patch, Verification]]: ...


@dataclass(frozen=True)
class FixOutcome:
    status: str  # verified | unverified | no_fix
    reason: str
    context: CodeContext
    candidates: tuple[FixCandidate, ...] = ()  # best first
    decisions: Mapping[str, GateDecision] = field(default_factory=dict)
    plan: ReplayPlan | None = None
    cost: Cost = Cost()
    commit: str = ""
    commit_source: str = ""  # how the commit was chosen ("release shop@1.4 -> v1.4", "head of main")
    # Fixers that failed transiently (LLM unreachable, rate limited): fixer name -> error. The other
    # fixers' candidates are kept; the attempt is retried later for what these might still offer.
    deferred: Mapping[str, str] = field(default_factory=dict)

    @property
    def best(self) -> FixCandidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def queued(self) -> bool:
        """The gate's decision on the best candidate: it awaits review."""
        return self.best is not None and self.best.status is CandidateStatus.AWAITING_REVIEW


@dataclass(frozen=True)
class FixRequest:
    event: ErrorEvent
    issue: Issue
    repo_root: Path
    work_base: Path
    test_command: str | None = None  # None: discovered from the repo's layout
    path_mappings: Mapping[str, str] = field(default_factory=dict)
    gate: GateConfig = field(default_factory=GateConfig)
    limits: Limits = Limits()
    history: Sequence[Review] = ()
    tool_paths: tuple[Path, ...] = ()  # read-only in the sandbox; each one's bin/ goes first on PATH
    hints: tuple[Hint, ...] = ()  # feedback on earlier attempts, for fixers that read it (ReadsHints)
    tried: frozenset[str] = frozenset()  # ids of patches already rejected, regressed or published
    learned: Ledger | None = None  # the gate's record of reviewer decisions; None: fixed priors
    default_branch: str | None = None  # None: the checkout's HEAD when the release names nothing
    env_home: Path | None = None  # where repo environments are cached (AUTOFIX_HOME/envs)
    env: EnvConfig = field(default_factory=EnvConfig)
    setup_command: str | None = None
    triage: bool = False  # a triage run: tests are required unless the gate says otherwise
    context_config: ContextConfig = field(default_factory=ContextConfig)  # policy and ranking ([context])
    index_cache: Path | None = None  # where symbol indexes are cached (AUTOFIX_HOME/context/index)


def _propose(fixer: Fixer, request: FixRequest, context: CodeContext) -> list[Patch]:
    if request.hints and isinstance(fixer, ReadsHints):
        return fixer.propose_with_hints(request.issue, request.event, context, request.history, request.hints)
    return fixer.propose(request.issue, request.event, context, request.history)


def _fixer_name(fixer: object) -> str:
    return str(getattr(fixer, "name", type(fixer).__name__))


def _propose_all(fixers: Sequence[Fixer], request: FixRequest, context: CodeContext,
                 deferred: dict[str, str]) -> list[Patch]:
    """Every fixer's patches; one failing transiently is noted in `deferred`, the others go on."""
    patches: list[Patch] = []
    for fixer in fixers:
        try:
            patches.extend(_propose(fixer, request, context))
        except TransientError as exc:
            log.warning("fixer.deferred", fixer=_fixer_name(fixer), error=str(exc))
            deferred[_fixer_name(fixer)] = str(exc)
    return patches


def _rank(candidate: FixCandidate) -> tuple[bool, bool, float]:
    verified = candidate.verification is not None and candidate.verification.verified
    return (candidate.status is CandidateStatus.AWAITING_REVIEW, verified, candidate.confidence)


def fix_issue(request: FixRequest, fixers: Sequence[Fixer], sandbox: Sandbox,
              iterative: Sequence[IterativeFixer] = ()) -> FixOutcome:
    started = time.monotonic()
    commit, how = commit_for_release(request.repo_root, request.event.release, request.default_branch)
    with open_workspace(request.repo_root, request.work_base, commit) as tree:
        outcome = _fix_at(request, fixers, iterative, sandbox, tree.path, commit, how, started)
    # The context's files were read from the worktree, which is gone now; paths are repo-relative.
    return replace(outcome, context=replace(outcome.context, repo_root=str(request.repo_root)))


def _fix_at(request: FixRequest, fixers: Sequence[Fixer], iterative: Sequence[IterativeFixer], sandbox: Sandbox,
            tree: Path, commit: str, how: str, started: float) -> FixOutcome:
    deferred: dict[str, str] = {}

    def done(status: str, reason: str, plan: ReplayPlan | None = None, candidates: Sequence[FixCandidate] = (),
             decisions: Mapping[str, GateDecision] | None = None, cost: Cost | None = None) -> FixOutcome:
        cost = cost or Cost(seconds=round(time.monotonic() - started, 3))
        return FixOutcome(status, reason, context, tuple(candidates), dict(decisions or {}), plan, cost, commit, how,
                          dict(deferred))

    context = _retrieve(request, tree)
    crash = context.crash
    if context.crash_excluded:
        return done("no_fix", f"{context.crash_excluded}: no code is given to any fixer")
    if crash is None or crash.role != "crash":
        reason = "no in-app frame of the escaping exception matches a file in the repo"
        if context.unmatched_frames:
            reason += f" (unmatched: {', '.join(context.unmatched_frames[:3])})"
        return done("no_fix", reason)
    proposed = _propose_all(fixers, request, context, deferred)
    patches = [p for p in proposed if p.id not in request.tried]
    if not patches and not iterative:
        where = f"{request.issue.fix_class} at {crash.path}:{crash.line} in {crash.function}"
        return done("no_fix", f"every patch the fixers propose for {where} was tried before" if proposed
                    else f"no fixer has a patch for {where}")
    plan = plan_replays(request.event, context)
    env = None
    if plan.replays:  # without a replay nothing runs, so there is no environment to build
        try:
            env = ensure_env(tree, request.env_home or request.work_base / "envs", sandbox, request.env,
                             request.setup_command)
        except EnvBuildFailed as exc:
            log.warning("env.build_failed", reason=str(exc))
            return done("unverified", f"the repo's environment could not be built: {exc}", plan=plan)
    setup = VerifySetup(request.repo_root, commit, sandbox, env, plan,
                        request.test_command or discover_test_command(tree), request.work_base,
                        request.limits, request.tool_paths)
    baseline = run_baseline(setup)
    verify: Verify = partial(verify_patch, setup, baseline)
    candidates: list[FixCandidate] = []
    decisions: dict[str, GateDecision] = {}

    def judge(patch: Patch, verification: Verification, seconds: float) -> bool:
        cost = Cost(tokens=patch.tokens, seconds=round(seconds, 3), usd=patch.usd)
        prior, bar = (request.learned.judge(request.issue.fix_class, patch.strategy, request.gate)
                      if request.learned is not None else (STRATEGY_PRIOR, None))
        candidate, decision = score(request.issue.fingerprint, patch, verification, cost, request.gate,
                                    prior, bar, request.gate.tests_required(request.triage, patch.strategy), commit)
        if plan.source:
            candidate = replace(candidate, reproduction=plan.source)
        candidates.append(candidate)
        decisions[candidate.id] = decision
        return decision.admitted

    for patch in patches:
        patch_started = time.monotonic()
        if judge(patch, verify(patch), time.monotonic() - patch_started):
            break  # patches come best-first from each fixer; one proven fix is enough for a reviewer
    if not any(d.admitted for d in decisions.values()) and baseline.reproduced:
        # Only when a patch can be verified at all: the iterative fixers' one tool is `verify`, and
        # without a replay that fails before the patch every verdict is "not reproduced".
        _iterate(request, iterative, context, verify, judge, deferred)
    if not candidates:
        reason = "no fixer produced a patch"
        if iterative and not baseline.reproduced:
            reason += ("; the iterative fixers were not asked, since no patch could be verified: "
                       + (plan.reason or "no replay failed with the event's exception before the patch"))
        return done("no_fix", reason, plan=plan)
    candidates.sort(key=_rank, reverse=True)
    best = candidates[0]
    verified = best.verification is not None and best.verification.verified
    total = Cost(tokens=sum(c.cost.tokens for c in candidates), seconds=round(time.monotonic() - started, 3),
                 usd=round(sum(c.cost.usd for c in candidates), 6))
    reason = _outcome_reason(plan, baseline, best)
    log.info("issue.fix_attempted", fingerprint=request.issue.fingerprint, candidates=len(candidates),
             verified=verified, commit=commit, hints=len(request.hints), tried=len(request.tried))
    return done("verified" if verified else "unverified", reason, candidates=tuple(candidates),
                decisions=decisions, plan=plan, cost=total)


def _retrieve(request: FixRequest, tree: Path) -> CodeContext:
    """The stack's locations under the context policy, and the localisation list the settings pick."""
    cfg = request.context_config
    policy = ContextPolicy.load(tree, cfg.include, cfg.exclude, cfg.ignore_file)
    context = retrieve(request.event, tree, request.path_mappings, policy=policy)
    if context.crash is None or context.crash_excluded:
        return context
    # Built (or read from the cache) here, once: fix_context, which fixers call, finds it in memory.
    index = build_index(tree, policy, request.index_cache)
    if cfg.ranking == "fused":
        context = replace(context, localization=tuple(fused_ranking(request.event, context, index,
                                                                    code_search(index))))
    return context


def _iterate(request: FixRequest, iterative: Sequence[IterativeFixer], context: CodeContext, verify: Verify,
             judge: Callable[[Patch, Verification, float], bool], deferred: dict[str, str]) -> None:
    """The one place the iterative fixers get the remaining work, each with the same `verify`. One
    failing transiently is noted in `deferred`; the candidates judged so far stay."""
    for fixer in iterative:
        started = time.monotonic()
        try:
            if request.hints and isinstance(fixer, RepairsWithHints):
                tried = fixer.repair_with_hints(request.issue, request.event, context, verify, request.history,
                                                request.hints)
            else:
                tried = fixer.repair(request.issue, request.event, context, verify, request.history)
        except TransientError as exc:
            log.warning("fixer.deferred", fixer=fixer.name, error=str(exc))
            deferred[fixer.name] = str(exc)
            continue
        seconds = (time.monotonic() - started) / max(len(tried), 1)
        if any([judge(patch, verification, seconds) for patch, verification in tried]):
            return


def _outcome_reason(plan: ReplayPlan, baseline: Baseline, best: FixCandidate) -> str:
    if not plan.replays:
        return plan.reason
    if best.verification is not None:
        return best.verification.reason
    return "not verified"
