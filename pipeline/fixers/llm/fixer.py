"""The LLM fixer: prompt, parse, police, verify, and try again with what went wrong.

Attempt 1 asks once at the configured temperature (0: the model's best guess). Each later attempt
shows the model its previous answer and why it failed (the reason an edit did not apply, the policy
rule it broke, or the sandbox's failure output) and draws `samples` candidates at
`sample_temperature`, because a retry at temperature 0 repeats the first answer byte for byte. The
first verified candidate ends the repair; with `confirm_samples`, that many more are drawn to see
whether independent samples agree (the same patch, or another verified one): the count goes on the
patch as `agreement`, a part of its confidence. Tokens and cost of every request are counted against
the budgets per fix and per day; a request the budget cannot pay for is not made.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from pipeline.context.contract import raises_on_purpose
from pipeline.context.engine import Snippet, fix_context
from pipeline.errors import LLMUnavailable
from pipeline.fixers.diffing import unified_diff
from pipeline.fixers.llm import policy, prompt
from pipeline.fixers.llm.budget import DailyUsage
from pipeline.fixers.llm.edits import (
    EDITS_SCHEMA,
    REPLACE_END,
    FunctionRewrite,
    Malformed,
    Region,
    apply_edits,
    apply_function,
    parse_answer,
)
from pipeline.ports import Completion
from pipeline.pysource import Undecodable, read_source
from pipeline.records import CodeContext, ErrorEvent, Hint, Issue, Patch, Review, Verification
from pipeline.settings import LLMConfig

log = structlog.get_logger(__name__)

# Lines shown (and open to edits) before and after the line the stack points at, when a function is
# longer than that: a small model does better with less code, and prompt tokens cost time.
_CRASH_WINDOW = (25, 8)
_CALLER_WINDOW = (5, 3)

Verify = Callable[[Patch], Verification]


class ChatModel(Protocol):
    def complete(self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 2048, temperature: float = 0.0,
                 json_schema: Mapping[str, Any] | None = None, seed: int | None = None,
                 stop: Sequence[str] | None = None) -> Completion: ...


@dataclass(frozen=True)
class Step:
    """One request to the model and what became of its answer."""

    attempt: int
    sample: int
    temperature: float
    prompt_tokens: int
    completion_tokens: int
    usd: float
    seconds: float
    outcome: str  # verified | failed | malformed | policy | duplicate | unavailable
    reason: str = ""


@dataclass
class RepairReport:
    steps: list[Step] = field(default_factory=list)
    stopped: str = ""  # why the repair ended before a verified candidate, when it did

    @property
    def tokens(self) -> int:
        return sum(s.prompt_tokens + s.completion_tokens for s in self.steps)

    @property
    def usd(self) -> float:
        return round(sum(s.usd for s in self.steps), 6)


@dataclass
class _Failure:
    kind: str  # malformed | policy | failed
    answer: str
    reason: str


def failure_text(v: Verification) -> str:
    """What the model needs from a failed verdict: the reason, each replay's result, the tests that now
    fail with the end of their output. Not the replay harness's own output: it is noise to a model."""
    parts = [v.reason] if v.reason else []
    parts += [r.describe() for r in v.replays if r.after is not None]
    parts += list(v.static_problems[:5])
    if v.newly_failing:
        parts += [f"test now failing: {t}" for t in v.newly_failing[:5]]
        tests = [r for r in v.runs if r.kind == "tests_after" and not r.passed]
        if tests:
            parts.append(tests[-1].output_tail[-700:])
    return "\n".join(parts)


def _summary(failure: _Failure) -> str:
    first = failure.reason.strip().split("\n")[0]
    return f"{failure.kind}: {first[:200]}"


class LLMFixer:
    """An IterativeFixer (pipeline/flow.py) over any OpenAI-compatible chat model."""

    name = "llm"

    def __init__(self, llm: ChatModel, config: LLMConfig, usage: DailyUsage | None = None) -> None:
        self.llm = llm
        self.config = config
        self.usage = usage
        self.last = RepairReport()

    # --- the IterativeFixer protocol ---------------------------------------------------------------

    def repair(self, issue: Issue, event: ErrorEvent, context: CodeContext, verify: Verify,
               history: Sequence[Review]) -> Sequence[tuple[Patch, Verification]]:
        return self.repair_with_hints(issue, event, context, verify, history, ())

    def repair_with_hints(self, issue: Issue, event: ErrorEvent, context: CodeContext, verify: Verify,
                          history: Sequence[Review], hints: Sequence[Hint]) -> Sequence[tuple[Patch, Verification]]:
        report = self.last = RepairReport()
        if event.primary is None:
            report.stopped = "the event has no exception"
            return []
        # A crash frame that raised on purpose leaves the fix to its caller as often as to itself:
        # then the first caller is shown as the crash site is and may be changed too.
        on_purpose = raises_on_purpose(event, context.crash)
        snippets = fix_context(event, context, self.config.context_tokens)
        first_caller = next((s for s in snippets if s.why == "caller"), None) if on_purpose else None
        shown = [prompt.window(s, *(_CRASH_WINDOW if s.why == "crash" or s is first_caller else _CALLER_WINDOW))
                 for s in snippets]
        whole = {(s.editable.path, s.editable.function) for s in shown if s.whole}
        if not self.config.edit_callers:
            keep = {(first_caller.path, first_caller.function)} if first_caller is not None else set()
            shown = [s for s in shown if s.editable.why == "crash"
                     or s.editable.why == "caller" and (s.editable.path, s.editable.function) in keep]
        editable = [s.editable for s in shown if s.editable.why in ("crash", "caller")]
        root = Path(context.repo_root)
        sources: dict[str, str] = {}
        for s in editable:
            if s.path not in sources:
                try:
                    sources[s.path] = read_source(root / s.path)
                except (OSError, Undecodable) as exc:
                    log.warning("llm.source_unreadable", path=s.path, error=str(exc))
        editable = [s for s in editable if s.path in sources]
        if not editable:
            report.stopped = "no localised function to change"
            return []
        note = f"{on_purpose}: the fix may belong in its caller instead." if first_caller is not None else ""
        run = _Run(self, report, event, shown, editable, whole, sources, context, verify, hints, note)
        return run.go()


class _Run:
    """One repair: the conversation, the patches tried, the budget spent."""

    def __init__(self, fixer: LLMFixer, report: RepairReport, event: ErrorEvent, shown: Sequence[prompt.Shown],
                 editable: Sequence[Snippet], whole: set[tuple[str, str]], sources: dict[str, str],
                 context: CodeContext, verify: Verify, hints: Sequence[Hint], note: str = "") -> None:
        self.fixer, self.cfg, self.report = fixer, fixer.config, report
        self.sources = sources
        self.verify = verify
        self.regions = [Region(s.path, s.start, s.end, s.function) for s in editable]
        self.whole_regions = [r for r in self.regions if (r.path, r.function) in whole]
        self.names = [s.function.rsplit(".", 1)[-1] for s in editable]
        self.scope = prompt.scope_text(editable)
        self.localised = sorted({loc.path for loc in context.locations} | set(sources))
        self.base = prompt.messages(event, shown, editable, hints, note)
        self.results: list[tuple[Patch, Verification]] = []
        self.seen: dict[str, Verification] = {}  # diff -> its verdict
        self.patched: dict[str, dict[str, str]] = {}  # answer -> the files it produced
        self.previous: tuple[dict[str, str], list[Region]] | None = None  # the patch shown in the retry
        self.unbilled_tokens = 0  # tokens of answers that produced no patch, billed to the next one
        self.unbilled_usd = 0.0

    def go(self) -> list[tuple[Patch, Verification]]:
        conversation: list[dict[str, str]] = list(self.base)
        for attempt in range(1, self.cfg.attempts + 1):
            first = attempt == 1
            samples = 1 if first else self.cfg.samples
            temperature = self.cfg.temperature if first else self.cfg.sample_temperature
            failures: list[_Failure] = []
            for sample in range(1, samples + 1):
                found = self._one(conversation, attempt, sample, temperature, failures)
                if found is not None:
                    self._confirm(conversation, attempt, found)
                    return self._finish()
                if self.report.stopped:
                    return self._finish()
            if not failures:
                break
            conversation = self._next(failures)
        self.report.stopped = self.report.stopped or f"no verified patch in {self.cfg.attempts} attempt(s)"
        return self._finish()

    # --- one request ---------------------------------------------------------------------------

    def _ask(self, conversation: Sequence[Mapping[str, str]], attempt: int, sample: int,
             temperature: float) -> tuple[Completion, float, float] | None:
        estimate = sum(len(m["content"]) for m in conversation) // 3 + self.cfg.max_tokens // 4
        why = self._over_budget(estimate)
        if why:
            self.report.stopped = why
            log.info("llm.budget_stop", reason=why)
            return None
        started = time.monotonic()
        try:
            completion = self.fixer.llm.complete(
                conversation, max_tokens=self.cfg.max_tokens, temperature=temperature,
                json_schema=EDITS_SCHEMA if self.cfg.edit_format == "json" else None,
                seed=None if temperature == 0 else attempt * 1000 + sample,
                # One block per answer: generation stops at its end (a small model rambles on after it).
                # The prompt's own markers end it too: a small model that starts echoing the prompt
                # never comes back to an edit.
                stop=[REPLACE_END, "<<<CODE", "<<<DATA", "DATA>>>"] if self.cfg.edit_format == "blocks" else None)
        except LLMUnavailable as exc:
            self.report.steps.append(Step(attempt, sample, temperature, 0, 0, 0.0,
                                          round(time.monotonic() - started, 3), "unavailable", str(exc)))
            self.report.stopped = f"the model endpoint is unavailable: {exc}"
            if not self.results:
                raise
            return None
        if (self.cfg.edit_format == "blocks" and completion.finish_reason == "stop" and "=======" in completion.text
                and REPLACE_END not in completion.text):  # the stop sequence ended it: put the marker back
            completion = replace(completion, text=completion.text.rstrip() + "\n" + REPLACE_END + "\n")
        price = self.cfg.price(completion.model or self.cfg.model or "")
        usd = (completion.prompt_tokens * price.prompt + completion.completion_tokens * price.completion) / 1000
        if self.fixer.usage is not None:
            self.fixer.usage.add(completion.prompt_tokens + completion.completion_tokens, usd)
        return completion, usd, time.monotonic() - started

    def _over_budget(self, estimate: int) -> str:
        spent = self.report.tokens
        if spent and spent + estimate > self.cfg.budget_tokens_per_fix:
            return (f"the token budget per fix ({self.cfg.budget_tokens_per_fix}) would be exceeded: "
                    f"{spent} spent, the next request needs about {estimate}")
        if self.cfg.budget_usd_per_fix and spent and self.report.usd >= self.cfg.budget_usd_per_fix:
            return f"the cost budget per fix (${self.cfg.budget_usd_per_fix}) is spent (${self.report.usd:.4f})"
        if self.fixer.usage is not None:
            tokens, usd = self.fixer.usage.today()
            if tokens + estimate > self.cfg.budget_tokens_per_day:
                return f"the token budget per day ({self.cfg.budget_tokens_per_day}) is spent ({tokens} today)"
            if self.cfg.budget_usd_per_day and usd >= self.cfg.budget_usd_per_day:
                return f"the cost budget per day (${self.cfg.budget_usd_per_day}) is spent (${usd:.2f} today)"
        return ""

    def _one(self, conversation: Sequence[Mapping[str, str]], attempt: int, sample: int, temperature: float,
             failures: list[_Failure]) -> Patch | None:
        asked = self._ask(conversation, attempt, sample, temperature)
        if asked is None:
            return None
        completion, usd, seconds = asked

        def step(outcome: str, reason: str = "") -> None:
            self.report.steps.append(Step(attempt, sample, temperature, completion.prompt_tokens,
                                          completion.completion_tokens, round(usd, 6), round(seconds, 3), outcome,
                                          reason[:500]))
            log.info("llm.step", attempt=attempt, sample=sample, outcome=outcome, reason=reason[:200],
                     tokens=completion.prompt_tokens + completion.completion_tokens, seconds=round(seconds, 1),
                     answer=completion.text[:1500])

        tokens = completion.prompt_tokens + completion.completion_tokens
        try:
            diff = self._diff(completion.text)
        except Malformed as exc:
            failures.append(_Failure("malformed", completion.text, str(exc)))
            self.unbilled_tokens += tokens
            self.unbilled_usd += usd
            step("malformed", str(exc))
            return None
        if diff in self.seen:
            verdict = self.seen[diff]
            failures.append(_Failure("failed", completion.text, "the same patch as an earlier answer, which failed: "
                                     + failure_text(verdict)))
            self.unbilled_tokens += tokens
            self.unbilled_usd += usd
            step("duplicate", verdict.reason)
            return None
        files = tuple(sorted({p for p in self.sources if f"+++ b/{p}\n" in diff}))
        patch = Patch("llm", diff, files, f"LLM edit, attempt {attempt} sample {sample} (temperature {temperature})",
                      tokens=tokens + self.unbilled_tokens, usd=round(usd + self.unbilled_usd, 6))
        self.unbilled_tokens, self.unbilled_usd = 0, 0.0
        broken = policy.violations(diff, self.localised, self.cfg.protected_paths)
        if broken:
            reason = "dropped by policy before verification: " + "; ".join(broken)
            verdict = Verification((), False, False, None, applied=False, reason=reason)
            self.seen[diff] = verdict
            self.results.append((patch, verdict))
            failures.append(_Failure("policy", completion.text, reason))
            step("policy", reason)
            return None
        verdict = self.verify(patch)
        self.seen[diff] = verdict
        self.results.append((patch, verdict))
        if verdict.verified:
            step("verified")
            return patch
        step("failed", verdict.reason)
        if verdict.applied and not verdict.reproduced:
            # The crash did not replay before the patch: no answer can be verified, so stop asking.
            self.report.stopped = f"the crash does not reproduce, so no patch can be verified: {verdict.reason}"
            return None
        failures.append(_Failure("failed", completion.text, failure_text(verdict)))
        return None

    def _diff(self, text: str) -> str:
        parsed = parse_answer(text, self.names, self.cfg.edit_format)
        if isinstance(parsed, FunctionRewrite):
            if not self.whole_regions:
                raise Malformed("only part of the function is shown, so it cannot be rewritten whole: answer with "
                                "SEARCH/REPLACE blocks")
            new = apply_function(self.sources, self.whole_regions, parsed)
        else:
            try:
                new = apply_edits(self.sources, self.regions, parsed)
            except Malformed as exc:
                # A small model often edits its own previous patch (the one shown to it as the last
                # answer) although it was not kept: apply its edit on top of that patch instead.
                if self.previous is None or "matches no lines" not in str(exc):
                    raise
                base, regions = self.previous
                try:
                    stacked = apply_edits(base, regions, parsed)
                except Malformed:
                    raise exc from None
                new = {**{p: t for p, t in base.items() if t != self.sources.get(p)}, **stacked}
                new = {p: t for p, t in new.items() if t != self.sources[p]}
                if not new:
                    raise Malformed("the edits undo the previous patch and change nothing") from None
        self.patched[text] = new
        for path, source in new.items():
            if path.endswith(".py"):
                try:
                    compile(source, path, "exec", dont_inherit=True)
                except SyntaxError as exc:
                    raise Malformed(f"after the edit {path} does not compile: line {exc.lineno}: {exc.msg} "
                                    "(check the indentation of REPLACE)") from None
        return "".join(unified_diff(path, self.sources[path], source) for path, source in sorted(new.items()))

    # --- between attempts ----------------------------------------------------------------------

    def _next(self, failures: Sequence[_Failure]) -> list[dict[str, str]]:
        """The conversation for the next attempt: the most useful failure shown in full (one that
        applied and ran beats one the policy dropped, which beats one that did not apply)."""
        order = {"failed": 0, "policy": 1, "malformed": 2}
        shown = min(failures, key=lambda f: order[f.kind])
        patched = self.patched.get(shown.answer)
        if patched:
            base = {**self.sources, **patched}
            regions = [Region(r.path, r.start, r.end + base[r.path].count("\n") - self.sources[r.path].count("\n"),
                              r.function) for r in self.regions]
            self.previous = (base, regions)
        else:
            self.previous = None
        others = [_summary(f) for f in failures if f is not shown]
        if shown.kind == "failed":
            return prompt.retry_messages(self.base, shown.answer, failure=shown.reason, others=others, scope=self.scope)
        return prompt.retry_messages(self.base, shown.answer, malformed=shown.reason, others=others, scope=self.scope)

    def _confirm(self, conversation: Sequence[Mapping[str, str]], attempt: int, found: Patch) -> None:
        """Draw `confirm_samples` more answers; count those that agree with the verified patch."""
        agree = 0
        for extra in range(1, self.cfg.confirm_samples + 1):
            asked = self._ask(conversation, attempt, 100 + extra, self.cfg.sample_temperature)
            if asked is None:
                break
            completion, usd, seconds = asked
            outcome = "disagrees"
            try:
                diff = self._diff(completion.text)
            except Malformed:
                diff = ""
            if diff == found.diff:
                agree, outcome = agree + 1, "agrees"
            elif diff and not policy.violations(diff, self.localised, self.cfg.protected_paths):
                verdict = self.seen.get(diff) or self.verify(replace(found, diff=diff))
                self.seen[diff] = verdict
                if verdict.verified:
                    agree, outcome = agree + 1, "agrees (another verified patch)"
            self.report.steps.append(Step(attempt, 100 + extra, self.cfg.sample_temperature, completion.prompt_tokens,
                                          completion.completion_tokens, round(usd, 6), round(seconds, 3), outcome))
            self.unbilled_tokens += completion.prompt_tokens + completion.completion_tokens
            self.unbilled_usd += usd
        for i, (patch, verdict) in enumerate(self.results):
            if patch.diff == found.diff:
                self.results[i] = (replace(patch, agreement=agree), verdict)

    def _finish(self) -> list[tuple[Patch, Verification]]:
        if self.results and self.unbilled_tokens:
            patch, verdict = self.results[-1]
            self.results[-1] = (replace(patch, tokens=patch.tokens + self.unbilled_tokens,
                                        usd=round(patch.usd + self.unbilled_usd, 6)), verdict)
        log.info("llm.repair_done", steps=len(self.report.steps), tokens=self.report.tokens,
                 verified=any(v.verified for _, v in self.results), stopped=self.report.stopped)
        return self.results
