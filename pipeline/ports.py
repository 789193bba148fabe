"""The pluggable edges, as Protocols. Stages depend on these; adapters/ and sandbox/ implement them.

Small typed request and response records live here too, beside the Protocol that uses them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pipeline.records import (
    Attempt,
    AttemptStatus,
    Budgets,
    CandidateStatus,
    ClaimRefused,
    CodeContext,
    Cost,
    ErrorEvent,
    FixCandidate,
    Hint,
    InboxItem,
    InboxStatus,
    Issue,
    IssueStatus,
    LogCursor,
    Patch,
    PullRequest,
    Review,
)

if TYPE_CHECKING:
    from pipeline.settings import RepoConfig


# --- Sandbox -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    timeout_s: float = 300.0
    memory_mb: int = 2048
    max_processes: int = 256
    output_bytes: int = 20_000  # tail of combined stdout+stderr kept


@dataclass(frozen=True)
class RunResult:
    exit_code: int
    duration_s: float
    output: str  # tail of stdout and stderr, interleaved
    timed_out: bool = False


@runtime_checkable
class Sandbox(Protocol):
    """Runs a command with `workdir` as the only writable place, no network, bounded resources.

    `python` is the interpreter inside the sandbox that creates virtualenvs (a host path for bwrap
    and local, the image's for docker). `ro_paths` are extra read-only mounts for this run, each at
    the same path inside as outside.
    """

    name: str
    python: str

    def run(
        self,
        workdir: Path,
        command: Sequence[str],
        limits: Limits = Limits(),
        env: Mapping[str, str] | None = None,
        ro_paths: Sequence[Path] = (),
    ) -> RunResult: ...


# --- LLM -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    finish_reason: str = ""  # "stop" (done, or a stop sequence was met), "length" (cut off at max_tokens)


class LLM(Protocol):
    def complete(
        self, messages: Sequence[Mapping[str, str]], *, max_tokens: int = 2048, temperature: float = 0.0
    ) -> Completion: ...


# --- Fixers --------------------------------------------------------------------------------------


class Fixer(Protocol):
    name: str

    def propose(
        self, issue: Issue, event: ErrorEvent, context: CodeContext, history: Sequence[Review]
    ) -> list[Patch]: ...


@runtime_checkable
class ReadsHints(Protocol):
    """A fixer that can use feedback on earlier attempts (failing CI output, a reviewer's hint).

    fix_issue calls this instead of `propose` when the attempt has hints. Hint text is untrusted data:
    a prompt quotes it, never obeys it.
    """

    def propose_with_hints(
        self, issue: Issue, event: ErrorEvent, context: CodeContext, history: Sequence[Review],
        hints: Sequence[Hint],
    ) -> list[Patch]: ...


# --- Code host -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PullRequestStatus:
    state: Literal["open", "merged", "closed"]
    merge_commit_sha: str | None = None  # merged: the commit the default branch got (a squash, say)
    head_sha: str | None = None  # the branch head as the host sees it


@dataclass(frozen=True)
class CheckFailure:
    """One failing CI check of a commit: a check run or a commit status."""

    kind: Literal["check_run", "status"]
    name: str  # the check run's name, the status's context
    conclusion: str  # failure, timed_out, ... for a check run; failure or error for a status
    details: str  # a check run's output title, summary and text; a status's description
    url: str | None = None  # where the full log is


@dataclass(frozen=True)
class ChecksReport:
    sha: str
    pending: bool  # some check has not finished: its verdict is not in yet
    failures: tuple[CheckFailure, ...] = ()


class CodeHost(Protocol):
    def open_pull_request(
        self, repo: RepoConfig, branch: str, patch: Patch, title: str, body: str, candidate_id: str,
        created_at: datetime, *, base_sha: str | None = None, files: Mapping[str, str] | None = None,
    ) -> PullRequest:
        """Publish `patch` (plus `files`, path -> text) on `branch`, made from `base_sha` (None: the
        default branch's head; a remote that lacks `base_sha` is refused with PatchDoesNotApply). Safe to repeat: a re-run finds the branch and pull request it made."""
        ...

    def pull_request_state(self, repo: RepoConfig, pr: PullRequest) -> str: ...
    def pull_request_status(self, repo: RepoConfig, pr: PullRequest) -> PullRequestStatus: ...


@runtime_checkable
class CIHost(CodeHost, Protocol):
    """A code host whose pull requests run CI, can take further commits, labels and comments."""

    def checks(self, repo: RepoConfig, pr: PullRequest) -> ChecksReport: ...

    def push_commit(
        self, repo: RepoConfig, pr: PullRequest, patch: Patch, title: str, candidate_id: str,
        created_at: datetime, *, files: Mapping[str, str] | None = None,
    ) -> str:
        """Commit `patch` (relative to the pull request's base) on top of its branch; the new head's sha.
        Pushing the same candidate again returns the commit already there."""
        ...

    def flag_for_human(self, repo: RepoConfig, pr: PullRequest, label: str, comment: str) -> None: ...


# --- Store ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegroupPlan:
    """What `autofix regroup` changes, applied by the store in one transaction.

    `issues` is every issue as it is to be stored afterwards (inserted or replaced whole); `events`
    the events whose fingerprint or in-app marks changed, with their new values; `candidates` moves
    each listed candidate to another issue; `removed` are the fingerprints no event keeps.
    """

    issues: tuple[Issue, ...] = ()
    events: tuple[ErrorEvent, ...] = ()
    candidates: Mapping[str, str] = field(default_factory=dict)  # candidate id -> issue fingerprint
    removed: tuple[str, ...] = ()


class Store(Protocol):
    """Persistence of every record. Writes are idempotent on the record's id."""

    def record_event(self, event: ErrorEvent, issue: Issue) -> bool:
        """Store the event and count it against its issue, in one transaction.

        `event.fingerprint` equals `issue.fingerprint`. A new issue is inserted as given; an existing
        one gets count + 1, last_seen = max, latest_event_id = this event, and keeps its status.
        Returns False, changing nothing, when an event with this id is already stored.
        """
        ...

    def record_events(self, pairs: Sequence[tuple[ErrorEvent, Issue]]) -> list[bool]:
        """record_event for each pair, in one transaction: one commit for many events. A duplicate
        changes nothing of itself (False in its place) and the others are still stored."""
        ...

    def get_event(self, event_id: str) -> ErrorEvent | None: ...
    def events_for_issue(self, fingerprint: str, limit: int = 20) -> list[ErrorEvent]: ...
    def get_issue(self, fingerprint: str) -> Issue | None: ...
    def list_issues(self, status: IssueStatus | None = None) -> list[Issue]: ...
    def update_issue(self, issue: Issue) -> None: ...
    def set_issue_status(self, fingerprint: str, status: IssueStatus) -> None: ...
    def set_issue_priority(self, fingerprint: str, priority: float) -> None: ...
    def save_candidate(self, candidate: FixCandidate) -> None: ...
    def get_candidate(self, candidate_id: str) -> FixCandidate | None: ...
    def list_candidates(
        self, status: CandidateStatus | None = None, issue_fingerprint: str | None = None
    ) -> list[FixCandidate]: ...
    def set_candidate_status(self, candidate_id: str, status: CandidateStatus) -> None: ...
    def save_review(self, review: Review) -> None: ...
    def reviews_for(self, candidate_id: str) -> list[Review]: ...
    def save_pull_request(self, pr: PullRequest) -> None: ...
    def get_pull_request(self, candidate_id: str) -> PullRequest | None: ...
    def list_pull_requests(self) -> list[PullRequest]: ...
    def pull_requests_for(self, fingerprint: str) -> list[PullRequest]:
        """The issue's pull requests (through their first candidate), oldest first."""
        ...

    def add_hint(self, hint: Hint) -> bool:
        """Store a hint for the issue's next attempt; False when one with its source and ref exists."""
        ...

    def hints_for(self, fingerprint: str, limit: int = 5) -> list[Hint]:
        """The issue's newest hints, oldest of them first."""
        ...

    def outcomes(self) -> list[Outcome]:
        """Every reviewer decision and pull-request outcome, with its candidate's class and strategy."""
        ...

    # Clusters, regrouping and followed logs (issue 12).
    def list_events(self, after: str | None = None, limit: int = 500) -> list[ErrorEvent]:
        """Every stored event in id order, a page at a time: the ids after `after`."""
        ...

    def issues_in_cluster(self, cluster_id: str) -> list[Issue]: ...

    def set_cluster_status(
        self, cluster_id: str, status: IssueStatus, among: Collection[IssueStatus]
    ) -> list[str]:
        """Set `status` on the cluster's issues whose status is in `among`; their fingerprints."""
        ...

    def apply_regroup(self, plan: RegroupPlan) -> None: ...
    def get_log_cursor(self, path: str) -> LogCursor | None: ...
    def save_log_cursor(self, cursor: LogCursor) -> None: ...


    def issues_for_sentry_id(self, sentry_issue_id: str) -> list[Issue]:
        """Our issues whose events Sentry grouped under this issue id (usually one)."""
        ...

    def link_sentry_issue(self, event_id: str, sentry_issue_id: str) -> str | None:
        """Give the issue of a stored event Sentry's issue id, unless it has one; its fingerprint, or
        None when no such event is stored. For an event that arrives again through Sentry."""
        ...

    def set_sentry_status(self, sentry_issue_id: str, status: str) -> list[str]:
        """Record Sentry's state of its issue on ours; returns the fingerprints changed."""
        ...

    # Attempts (pipeline/adapters/sql_attempts.py): the only way an attempt starts is a claim.
    def claim_attempt(self, fingerprint: str, budgets: Budgets, *, task_id: str | None = None,
                      repo: str | None = None, now: datetime | None = None) -> Attempt | ClaimRefused:
        """Atomically move the issue from new/triaged to fixing and start a running attempt, within
        the budgets; or say why not."""
        ...

    def finish_attempt(self, attempt_id: str, status: AttemptStatus, issue_status: IssueStatus, *,
                       outcome: str | None = None, error: str | None = None, cost: Cost | None = None,
                       sandbox_runs: int = 0, retry_after: datetime | None = None) -> bool:
        """End a running attempt and move its issue out of fixing; False if it was no longer running."""
        ...

    def get_attempt(self, attempt_id: str) -> Attempt | None: ...
    def list_attempts(self, issue_fingerprint: str | None = None, status: AttemptStatus | None = None,
                      since: datetime | None = None) -> list[Attempt]: ...
    def backing_off(self, now: datetime | None = None) -> set[str]: ...
    def reap_attempts(self, lease_s: float, now: datetime | None = None) -> list[str]: ...
    def attempt_totals(self) -> Iterator[tuple[str, str, int, float, int]]: ...
    def attempt_seconds(self, limit: int = 10_000) -> list[float]: ...
    def attempt_spend(self) -> tuple[int, float]: ...


OutcomeKind = Literal["approved", "rejected", "merged", "closed", "regressed"]


@dataclass(frozen=True)
class Outcome:
    """What became of a candidate: a reviewer's decision, or where its pull request ended."""

    candidate_id: str
    fix_class: str
    strategy: str
    confidence: float
    kind: OutcomeKind
    reason: str = ""  # a rejection's reason


# --- Inbox ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxFinish:
    """How an inbox item ended: see Inbox.finish_inbox."""

    item_id: int
    status: InboxStatus
    outcome: str | None = None
    error: str | None = None
    replace_body: bool = False
    body: bytes | None = None


class Inbox(Protocol):
    """Accepted payloads, stored raw before they are acknowledged, until they are processed."""

    def add_to_inbox(self, items: Sequence[InboxItem]) -> list[int | None]:
        """Insert the items in one transaction; each one's new id, or None when its request_id is
        already stored (a replayed delivery, which changes nothing)."""
        ...

    def inbox_item(self, item_id: int) -> InboxItem | None: ...

    def inbox_items(
        self, status: InboxStatus | None = None, limit: int = 100, before: datetime | None = None
    ) -> list[InboxItem]:
        """Items oldest first, optionally of one status and received before a time."""
        ...

    def finish_inbox(
        self, item_id: int, status: InboxStatus, *, outcome: str | None = None, error: str | None = None,
        replace_body: bool = False, body: bytes | None = None,
    ) -> None:
        """Mark an item processed or failed, counting the attempt; with replace_body the raw body
        becomes `body` (scrubbed, or None: dropped)."""
        ...

    def finish_inbox_many(self, finishes: Sequence[InboxFinish]) -> None:
        """finish_inbox for each, in one transaction."""
        ...

    def retry_inbox(self, item_id: int | None = None) -> list[int]:
        """Failed items (one, or all when item_id is None) back to pending; returns their ids."""
        ...

    def inbox_backlog(self) -> int:
        """How many items wait to be processed."""
        ...

    def inbox_counts(self) -> dict[str, int]:
        """Items per status."""
        ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        ...


class InboxStore(Store, Inbox, Protocol):
    """A store that keeps the inbox too (SqlStore): the inbox stage writes both in one database."""


# --- Sentry REST API -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SentryIssue:
    """One issue (group) as GET /api/0/organizations/{org}/issues/ lists it."""

    id: str
    short_id: str
    title: str
    culprit: str
    status: str  # unresolved | resolved | ignored
    project: str  # the project's slug
    count: int = 0
    permalink: str | None = None
    first_seen: datetime | None = None
    last_seen: datetime | None = None


@dataclass(frozen=True)
class IssuePage:
    issues: tuple[SentryIssue, ...]
    next_cursor: str | None = None  # None when the Link header says there are no more results


@dataclass(frozen=True)
class ApiEvent:
    """An issue's event as the API returned it: the raw body (for the inbox) and its JSON."""

    issue_id: str
    body: bytes
    payload: Mapping[str, Any]


EventChoice = Literal["latest", "recommended", "oldest"]


class SentryAPI(Protocol):
    def issues(
        self, project: str, *, query: str = "is:unresolved", sort: str = "date", cursor: str | None = None,
        per_page: int = 100,
    ) -> IssuePage: ...

    def issue_event(self, issue_id: str, which: EventChoice = "recommended") -> ApiEvent: ...


Workdir = Path
