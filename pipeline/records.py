"""The typed records that flow between stages.

Every stage takes and returns these frozen dataclasses; nothing between stages is an untyped dict
(the raw payload of an event is kept, as received, for audit and re-parsing only).
Status moves one way: new -> triaged -> fixing -> awaiting_review -> approved -> pr_open ->
merged | closed, with rejected and unfixable as exits.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


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
class CodeContext:
    repo_root: str
    locations: tuple[Location, ...]  # ranked: crash site first, then callers outward
    unmatched_frames: tuple[str, ...] = ()  # in-app frames that map to no repo file

    @property
    def crash(self) -> Location | None:
        return self.locations[0] if self.locations else None


@dataclass(frozen=True)
class Patch:
    strategy: str  # "template:<name>", "llm", "revert"
    diff: str  # unified diff relative to the repo root (a/ b/ prefixes)
    files: tuple[str, ...]
    description: str
    tokens: int = 0

    @property
    def id(self) -> str:
        return short_id(self.strategy, self.diff)


@dataclass(frozen=True)
class SandboxRun:
    """One command run in a sandbox."""

    kind: str  # repro_before | repro_after | tests_after | lint_after
    command: str
    exit_code: int
    duration_s: float
    output_tail: str
    timed_out: bool = False

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True)
class Verification:
    runs: tuple[SandboxRun, ...]
    reproduced: bool  # the reproduction failed before the patch
    repro_passes_after: bool
    tests_pass_after: bool | None  # None: no test command
    applied: bool = True
    reason: str = ""

    @property
    def verified(self) -> bool:
        return (
            self.applied
            and self.reproduced
            and self.repro_passes_after
            and self.tests_pass_after is not False
        )


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
