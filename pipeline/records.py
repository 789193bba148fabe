"""The typed records that flow between stages.

Every stage takes and returns these frozen dataclasses; nothing between stages is an untyped dict
(the raw payload of an event is kept, as received, for audit and re-parsing only).
Status moves one way: new -> triaged -> fixing -> awaiting_review -> approved -> pr_open ->
merged | closed, with rejected and unfixable as exits. One way back: a merged fix whose crash recurs
in a release containing it regresses, and its issue returns to triaged (pipeline/regressions.py).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal


def utcnow() -> datetime:
    return datetime.now(UTC)


def short_id(*parts: str, length: int = 12) -> str:
    """A stable id from content: the same inputs always give the same id (idempotent stages)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


class IssueStatus(enum.StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    FIXING = "fixing"
    AWAITING_REVIEW = "awaiting_review"
    APPROVED = "approved"
    PR_OPEN = "pr_open"
    MERGED = "merged"
    CLOSED = "closed"
    REJECTED = "rejected"
    UNFIXABLE = "unfixable"


class CandidateStatus(enum.StrEnum):
    AWAITING_REVIEW = "awaiting_review"  # verified and above the gate
    HELD = "held"  # produced but below the gate: kept for audit, never shown as ready
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"
    REGRESSED = "regressed"  # its fix was merged and shipped, and the crash came back


@dataclass(frozen=True)
class Frame:
    """One stack frame, oldest call first within its exception (Sentry's order)."""

    function: str
    filename: str  # as the runtime reported it (Sentry's `filename`, else `abs_path`)
    abs_path: str | None = None
    module: str | None = None
    lineno: int | None = None
    context_line: str | None = None
    pre_context: tuple[str, ...] = ()
    post_context: tuple[str, ...] = ()
    in_app: bool = True
    # Sentry serialises locals as JSON: strings are repr()s ("'abc'"), containers nest, objects are
    # repr strings. Kept exactly as received; rebuilding values is the reproduction stage's job.
    vars: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExceptionInfo:
    """One exception of a chain. In ErrorEvent.exceptions the last one is the one that escaped."""

    type: str
    value: str
    module: str | None = None
    frames: tuple[Frame, ...] = ()
    mechanism: str | None = None

    @property
    def qualified_type(self) -> str:
        if self.module and self.module not in ("builtins", "exceptions"):
            return f"{self.module}.{self.type}"
        return self.type


@dataclass(frozen=True)
class ErrorEvent:
    id: str
    source: str  # "sentry-event", "sentry-webhook", "sentry-envelope", "sentry-api", "log"
    platform: str
    exceptions: tuple[ExceptionInfo, ...]
    received_at: datetime
    release: str | None = None
    environment: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    message: str | None = None
    # A logging call's template ("stock for %s timed out") when the SDK sent one with its arguments:
    # the template, not the formatted text, names the bug.
    message_template: str | None = None
    fingerprint: str | None = None  # set by grouping
    url: str | None = None
    project: str | None = None
    timestamp: datetime | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    level: str | None = None  # "error", "critical", ... (Sentry's `level`, or the log record's)
    logger: str | None = None  # the logger that reported it (Sentry's `logger`, or the log record's)
    # The SDK's own `fingerprint` array, as sent: it replaces the computed grouping unless one of its
    # entries is "{{ default }}" (Sentry's rule).
    client_fingerprint: tuple[str, ...] = ()
    # Sentry's own id of the issue (group) the event belongs to, when the event came through Sentry
    # (webhook, service hook, API pull); None for events an SDK sent straight to autofix.
    sentry_issue_id: str | None = None

    @property
    def primary(self) -> ExceptionInfo | None:
        """The exception that escaped (last of the chain), if any."""
        return self.exceptions[-1] if self.exceptions else None

    def crash_frame(self) -> Frame | None:
        """The innermost in-app frame of the escaping exception, else its innermost frame."""
        exc = self.primary
        if exc is None or not exc.frames:
            return None
        in_app = [f for f in exc.frames if f.in_app]
        return (in_app or list(exc.frames))[-1]


@dataclass(frozen=True)
class Issue:
    fingerprint: str
    title: str
    culprit: str
    fix_class: str
    first_seen: datetime
    last_seen: datetime
    count: int = 1
    priority: float = 0.0
    status: IssueStatus = IssueStatus.NEW
    repo: str | None = None
    project: str | None = None
    latest_event_id: str | None = None
    # The root-cause cluster: issues with the same crash site (innermost in-app frame and exception
    # type) share it, whatever their messages or outer frames; one verified fix serves them all.
    cluster_id: str | None = None
    # Sentry's id of the same issue and its state there (unresolved, resolved, ignored), kept in step
    # by issue webhooks and pulls; a resolved Sentry issue is not attempted.
    sentry_issue_id: str | None = None
    sentry_status: str | None = None


@dataclass(frozen=True)
class Location:
    """A place in the repo: a function and the line the stack points at (1-based)."""

    path: str  # relative to the repo root, POSIX separators
    function: str
    line: int
    start_line: int = 0
    end_line: int = 0
    source: str = ""  # the function's source text
    role: str = "crash"  # crash | caller | search
    score: float = 1.0


@dataclass(frozen=True)
class ContextRules:
    """The context policy's settings part (gitignore-style globs); the repo adds its .autofixignore."""

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore_file: str = ".autofixignore"


@dataclass(frozen=True)
class CodeContext:
    repo_root: str
    locations: tuple[Location, ...]  # ranked: crash site first, then callers outward
    unmatched_frames: tuple[str, ...] = ()  # in-app frames that map to no repo file
    # The fault localisation list (context.ranking: the stack, or the stack fused with BM25, where
    # role "search" marks a function off the stack); empty: the same as locations.
    localization: tuple[Location, ...] = ()
    excluded_frames: tuple[str, ...] = ()  # in-app frames whose file the context policy excludes, and why
    crash_excluded: str = ""  # why the crash site itself is excluded: then no fixer sees any code
    rules: ContextRules = ContextRules()  # the policy it was retrieved under (fix_context applies it too)

    @property
    def crash(self) -> Location | None:
        return self.locations[0] if self.locations else None

    @property
    def ranked(self) -> tuple[Location, ...]:
        return self.localization or self.locations


@dataclass(frozen=True)
class Patch:
    strategy: str  # "template:<name>", "llm", "revert"
    diff: str  # unified diff relative to the repo root (a/ b/ prefixes)
    files: tuple[str, ...]
    description: str
    tokens: int = 0  # model tokens spent on it (the LLM fixer: its request and unusable ones before it)
    usd: float = 0.0  # what those tokens cost (the price table in the settings; local models 0)
    agreement: int = 0  # independent samples that agreed with it (the LLM fixer's confidence part)

    @property
    def id(self) -> str:
        return short_id(self.strategy, self.diff)


@dataclass(frozen=True)
class SandboxRun:
    """One command run in a sandbox."""

    kind: str  # replays_before | tests_before | replays_after | tests_after
    command: str
    exit_code: int
    duration_s: float
    output_tail: str
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class ReplayStatus(enum.StrEnum):
    REPRODUCED = "reproduced"  # raised the event's exception type
    PASSED = "passed"  # completed with no exception
    OTHER_ERROR = "other_error"  # raised some other exception (or could not even import)
    NOT_RUN = "not_run"  # the run ended (timed out, crashed) before this replay reported


@dataclass(frozen=True)
class ReplayResult:
    """One captured frame called again with its captured arguments, before and after the patch.

    `name` is the dotted function (`shop.api.checkout`); `role` is crash (the innermost frame) or
    caller; `depth` its distance from the crash frame on the stack (0: the crash frame). `after` is
    None when the replay was not run after the patch: it did not reproduce before, or the patch did
    not apply. `detail` is the exception line of its last failing run. `judged` is False for a frame
    below the function the patch changes: it calls unchanged code with the arguments the crash gave
    it, which the patched caller no longer passes (or now handles), so its result proves nothing.
    """

    name: str
    role: str
    before: ReplayStatus
    after: ReplayStatus | None = None
    detail: str = ""
    depth: int = 0
    judged: bool = True

    def describe(self) -> str:
        after = f", after: {self.after.value}" if self.after is not None else ""
        detail = f" ({self.detail})" if self.detail else ""
        below = ", not judged: below the patched function" if not self.judged else ""
        return f"{self.role} {self.name}: before: {self.before.value}{after}{below}{detail}"


def unreplayable_note(role: str, function: str, path: str, line: int, why: str) -> str:
    """How a plan says why a frame has no replay: "caller F (path:line): why" (stored as text)."""
    return f"{role} {function} ({path}:{line}): {why}"


def note_frame(note: str) -> str:
    """The frame an unreplayable_note names ("caller F (path:line)"), without the reason."""
    head, sep, _ = note.partition("): ")
    return head + ")" if sep else note


@dataclass(frozen=True)
class Verification:
    """The verdict on one patch: every replay and run, and what they prove.

    Verified means: the patch applied; at least one replay at or above the patched function failed
    with the event's exception before it, and every such replay completes with no exception after
    it; no test that passed on the base fails after it (or no tests ran: `tests_pass_after` is
    None); the patched files compile and add no undefined name.
    """

    runs: tuple[SandboxRun, ...]
    reproduced: bool  # at least one replay failed with the event's exception before the patch
    repro_passes_after: bool  # every replay that reproduced completes with no exception after it
    tests_pass_after: bool | None  # None: tests not run (no test command, or no evidence on the base)
    applied: bool = True
    reason: str = ""
    replays: tuple[ReplayResult, ...] = ()
    not_replayable: tuple[str, ...] = ()  # unreplayable_note(): "<frame>: <why it has no replay>"
    newly_failing: tuple[str, ...] = ()  # test ids that passed on the base and fail after the patch
    static_problems: tuple[str, ...] = ()  # a patched file that no longer compiles, a new undefined name
    # The stack distance of the deepest in-app frame whose function the patch changes (0: the crash
    # frame, or a patch off the stack), and how many in-app frames the stack has in the repo.
    patched_depth: int = 0
    stack_frames: int = 0

    @property
    def verified(self) -> bool:
        return (
            self.applied
            and self.reproduced
            and self.repro_passes_after
            and self.tests_pass_after is not False
            and not self.static_problems
        )

    @property
    def tests_run(self) -> bool:
        return self.tests_pass_after is not None


@dataclass(frozen=True)
class Cost:
    tokens: int = 0
    seconds: float = 0.0
    usd: float = 0.0


@dataclass(frozen=True)
class FixCandidate:
    issue_fingerprint: str
    patch: Patch
    verification: Verification | None
    confidence: float
    confidence_parts: Mapping[str, float]
    cost: Cost
    status: CandidateStatus = CandidateStatus.HELD
    created_at: datetime = field(default_factory=utcnow)
    # The reproduction test it was verified with (pytest source); published as a regression test.
    reproduction: str | None = None
    base_commit: str = ""  # the commit the patch was verified on, and the one it is published on

    @property
    def id(self) -> str:
        return short_id(self.issue_fingerprint, self.patch.id)

    @property
    def strategy(self) -> str:
        return self.patch.strategy


@dataclass(frozen=True)
class Review:
    candidate_id: str
    decision: str  # approved | rejected
    reviewer: str
    reason: str = ""
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class PullRequest:
    candidate_id: str
    repo: str
    branch: str
    title: str
    body: str
    url: str
    commit_sha: str
    state: str = "open"  # open | merged | closed
    number: int | None = None
    created_at: datetime = field(default_factory=utcnow)
    base_sha: str | None = None  # the commit the branch was made from
    merge_commit_sha: str | None = None  # once merged: the commit the default branch got (squash too)
    # CI feedback: the candidate whose patch the branch head holds when a later attempt replaced the
    # first one, how many such commits were pushed, the head whose failing checks were already read,
    # and whether the pull request was handed to a human (the cap was reached or no new fix was found).
    head_candidate_id: str | None = None
    ci_rounds: int = 0
    ci_checked_sha: str | None = None
    needs_human: bool = False
    regressed_at: datetime | None = None  # the crash recurred in a release containing the merge

    @property
    def current_candidate_id(self) -> str:
        """The candidate whose patch the pull request holds now (what its outcome is credited to)."""
        return self.head_candidate_id or self.candidate_id


HintSource = Literal["ci", "reviewer"]


@dataclass(frozen=True)
class Hint:
    """Feedback for the next fix attempt on an issue: failing CI output, a reviewer's retry hint.

    The text is data from outside (CI logs, a person): fixers that build prompts must quote it as
    such, never follow it as instructions. `ref` makes a hint idempotent: the same source and ref
    (e.g. "ci:<head sha>") is stored once.
    """

    issue_fingerprint: str
    source: HintSource
    text: str
    ref: str
    candidate_id: str | None = None  # the candidate the feedback is about
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class LogCursor:
    """How far a followed log file has been read, and which generation of the file that was.

    `device` and `inode` name the file that was open; `head` is a hash of its first line, so a file
    truncated in place (copytruncate) and written again is told apart from the one that was read.
    """

    path: str
    offset: int
    head: str
    device: int = 0
    inode: int = 0
    updated_at: datetime = field(default_factory=utcnow)


class InboxStatus(enum.StrEnum):
    PENDING = "pending"  # stored raw, not processed yet
    PROCESSED = "processed"  # normalised, scrubbed, grouped and stored (or recorded)
    FAILED = "failed"  # processing raised; `error` says why; re-runnable


class InboxKind(enum.StrEnum):
    """How a payload arrived; decides how the inbox stage reads it."""

    ENVELOPE = "envelope"  # POST /api/{project_id}/envelope/ (sentry-sdk)
    STORE = "store"  # POST /api/{project_id}/store/ (one event JSON)
    WEBHOOK = "webhook"  # integration-platform webhook; the resource is in headers
    SERVICE_HOOK = "service-hook"  # a project's service hook
    LEGACY_WEBHOOK = "legacy-webhook"  # the WebHooks plugin
    API_EVENT = "api-event"  # an event fetched from the REST API by a pull


@dataclass(frozen=True)
class InboxItem:
    """One accepted payload, as received: the body is the decoded request body (or API response)."""

    kind: InboxKind
    body: bytes | None
    received_at: datetime
    project: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # only those that matter for processing
    request_id: str | None = None  # a webhook delivery's Request-ID: stored once
    event_id: str | None = None  # what the sender was answered with, when known
    id: int | None = None  # assigned by the store
    status: InboxStatus = InboxStatus.PENDING
    attempts: int = 0
    error: str | None = None
    outcome: str | None = None
    processed_at: datetime | None = None


class AttemptStatus(enum.StrEnum):
    """Where one fix attempt of an issue stands (the attempts table; pipeline/attempts.py)."""

    RUNNING = "running"  # claimed: the issue is `fixing` and this attempt holds it
    DONE = "done"  # ran to an outcome (verified, unverified, no_fix, skipped)
    DEFERRED = "deferred"  # a transient failure (LLM, sandbox, store unreachable): retried later
    FAILED = "failed"  # an unexpected exception: recorded with its error, retried after a backoff
    LOST = "lost"  # its worker vanished; reaped once its lease ran out


ATTEMPT_SKIPPED = "skipped"  # the outcome of an attempt that found nothing to do: not counted per issue


@dataclass(frozen=True)
class Attempt:
    """One claim on an issue: at most one RUNNING attempt per issue (a unique index says so)."""

    id: str
    issue_fingerprint: str
    started_at: datetime
    status: AttemptStatus = AttemptStatus.RUNNING
    task_id: str | None = None  # the Celery task holding it; its redelivery may take it over
    finished_at: datetime | None = None
    outcome: str | None = None  # verified | unverified | no_fix | skipped | error type
    error: str | None = None
    cost: Cost = Cost()
    sandbox_runs: int = 0
    retry_after: datetime | None = None  # a failed or deferred attempt's backoff: not attempted before


@dataclass(frozen=True)
class Budgets:
    """What a claim must respect (pipeline/settings.py BudgetConfig gives them)."""

    max_concurrent: int = 2
    max_per_issue: int = 3
    daily_tokens: int | None = None
    daily_usd: float | None = None
    lease_s: float = 3660.0  # a RUNNING attempt older than this is taken to be lost


@dataclass(frozen=True)
class ClaimRefused:
    """Why an attempt did not start; `budget`: a shared budget is spent (stop starting others too)."""

    reason: str
    budget: bool = False
