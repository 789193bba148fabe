"""Conversions between the frozen records (pipeline/records.py) and the SQL rows (sql_models.py).

One pair of functions per record: `<record>_row(record) -> Row` and `<record>_from_row(row) -> record`.
Datetimes come back timezone-aware in UTC on every backend (the UTCDateTime column type sees to the
columns; the parsed event's JSON is normalised here).
"""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any, TypeVar

from pydantic import TypeAdapter

from pipeline.adapters.sql_models import (
    CandidateRow,
    EventRow,
    HintRow,
    InboxRow,
    IssueRow,
    LogCursorRow,
    PullRequestRow,
    ReviewRow,
    VerificationRow,
    VerificationRunRow,
    as_utc,
)
from pipeline.records import (
    CandidateStatus,
    Cost,
    ErrorEvent,
    FixCandidate,
    Hint,
    HintSource,
    InboxItem,
    InboxKind,
    InboxStatus,
    Issue,
    IssueStatus,
    LogCursor,
    Patch,
    PullRequest,
    ReplayResult,
    ReplayStatus,
    Review,
    SandboxRun,
    Verification,
)

# pydantic walks the nested frozen dataclasses (frames, exception chains, datetimes) both ways, so
# the event's JSON shape follows records.py without a hand-written serialiser to keep in step.
_EVENT = TypeAdapter(ErrorEvent)


# --- events --------------------------------------------------------------------------------------


def event_row(event: ErrorEvent, fingerprint: str) -> EventRow:
    return EventRow(
        id=event.id,
        fingerprint=fingerprint,
        source=event.source,
        project=event.project,
        received_at=as_utc(event.received_at),
        event=_EVENT.dump_python(event, mode="json", exclude={"raw"}),
        raw=dict(event.raw),
    )


def event_insert_values(event: ErrorEvent, fingerprint: str) -> dict[str, Any]:
    """A stored event's columns, for a bulk INSERT (event_row's values, without the ORM object)."""
    return {"id": event.id, "fingerprint": fingerprint, "source": event.source, "project": event.project,
            "received_at": as_utc(event.received_at),
            "event": _EVENT.dump_python(event, mode="json", exclude={"raw"}), "raw": dict(event.raw)}


def event_values(event: ErrorEvent) -> dict[str, Any]:
    """The parsed-event columns of a stored event, for a bulk UPDATE by id (regrouping)."""
    return {"id": event.id, "fingerprint": event.fingerprint,
            "event": _EVENT.dump_python(event, mode="json", exclude={"raw"})}


def event_from_row(row: EventRow) -> ErrorEvent:
    parsed = _EVENT.validate_python({**row.event, "raw": row.raw})
    return dataclasses.replace(
        parsed,
        received_at=row.received_at,
        timestamp=as_utc(parsed.timestamp) if parsed.timestamp else None,
    )


# --- issues --------------------------------------------------------------------------------------


def issue_values(issue: Issue) -> dict[str, Any]:
    """The issue's columns as a plain mapping, for INSERT ... ON CONFLICT statements."""
    return _columns(issue)


def issue_from_row(row: IssueRow) -> Issue:
    return _record(Issue, row, status=IssueStatus(row.status))


# --- candidates ----------------------------------------------------------------------------------


def fill_candidate_row(row: CandidateRow, candidate: FixCandidate) -> CandidateRow:
    """Write every field of `candidate` onto `row` (new or loaded), replacing its verification."""
    patch, cost = candidate.patch, candidate.cost
    row.id = candidate.id
    row.issue_fingerprint = candidate.issue_fingerprint
    row.strategy = patch.strategy
    row.diff = patch.diff
    row.files = list(patch.files)
    row.description = patch.description
    row.patch_tokens = patch.tokens
    row.confidence = candidate.confidence
    row.confidence_parts = dict(candidate.confidence_parts)
    row.cost_tokens, row.cost_seconds, row.cost_usd = cost.tokens, cost.seconds, cost.usd
    row.status = CandidateStatus(candidate.status).value
    row.created_at = as_utc(candidate.created_at)
    row.reproduction = candidate.reproduction
    row.base_commit = candidate.base_commit
    row.verification = _verification_row(candidate.verification)
    row.runs = _run_rows(candidate.verification)
    return row


def _verification_row(verification: Verification | None) -> VerificationRow | None:
    if verification is None:
        return None
    return VerificationRow(
        reproduced=verification.reproduced,
        repro_passes_after=verification.repro_passes_after,
        tests_pass_after=verification.tests_pass_after,
        applied=verification.applied,
        reason=verification.reason,
        replays=[_columns(replay) for replay in verification.replays],
        not_replayable=list(verification.not_replayable),
        newly_failing=list(verification.newly_failing),
        static_problems=list(verification.static_problems),
        patched_depth=verification.patched_depth,
        stack_frames=verification.stack_frames,
    )


def _run_rows(verification: Verification | None) -> list[VerificationRunRow]:
    runs = verification.runs if verification is not None else ()
    return [VerificationRunRow(position=position, **_columns(run)) for position, run in enumerate(runs)]


def candidate_from_row(row: CandidateRow) -> FixCandidate:
    patch = Patch(
        strategy=row.strategy,
        diff=row.diff,
        files=tuple(row.files),
        description=row.description,
        tokens=row.patch_tokens,
    )
    return FixCandidate(
        issue_fingerprint=row.issue_fingerprint,
        patch=patch,
        verification=_verification_from_rows(row.verification, row.runs),
        confidence=row.confidence,
        confidence_parts={str(k): float(v) for k, v in row.confidence_parts.items()},
        cost=Cost(tokens=row.cost_tokens, seconds=row.cost_seconds, usd=row.cost_usd),
        status=CandidateStatus(row.status),
        created_at=row.created_at,
        reproduction=row.reproduction,
        base_commit=row.base_commit,
    )


def _verification_from_rows(
    summary: VerificationRow | None, runs: list[VerificationRunRow]
) -> Verification | None:
    if summary is None:
        return None
    return Verification(
        runs=tuple(_record(SandboxRun, run) for run in sorted(runs, key=lambda r: r.position)),
        reproduced=summary.reproduced,
        repro_passes_after=summary.repro_passes_after,
        tests_pass_after=summary.tests_pass_after,
        applied=summary.applied,
        reason=summary.reason,
        replays=tuple(_replay(item) for item in summary.replays),
        not_replayable=tuple(str(note) for note in summary.not_replayable),
        newly_failing=tuple(str(test) for test in summary.newly_failing),
        static_problems=tuple(str(problem) for problem in summary.static_problems),
        patched_depth=summary.patched_depth,
        stack_frames=summary.stack_frames,
    )


def _replay(item: dict[str, Any]) -> ReplayResult:
    after = item.get("after")
    return ReplayResult(str(item["name"]), str(item["role"]), ReplayStatus(item["before"]),
                        ReplayStatus(after) if after is not None else None, str(item.get("detail", "")),
                        int(item.get("depth", 0)), bool(item.get("judged", True)))


# --- reviews and pull requests -------------------------------------------------------------------


def review_values(review: Review) -> dict[str, Any]:
    return _columns(review)


def review_from_row(row: ReviewRow) -> Review:
    return _record(Review, row)


def pull_request_values(pr: PullRequest) -> dict[str, Any]:
    return _columns(pr)


def pull_request_from_row(row: PullRequestRow) -> PullRequest:
    return _record(PullRequest, row)


def hint_values(hint: Hint) -> dict[str, Any]:
    return _columns(hint)


def hint_from_row(row: HintRow) -> Hint:
    source: HintSource = "ci" if row.source == "ci" else "reviewer"
    return _record(Hint, row, source=source)
def log_cursor_values(cursor: LogCursor) -> dict[str, Any]:
    return _columns(cursor)


def log_cursor_from_row(row: LogCursorRow) -> LogCursor:
    return _record(LogCursor, row)


# --- flat records ----------------------------------------------------------------------------------
# Issue, Review, PullRequest, Hint and SandboxRun map field for field onto their rows; only enums and
# datetimes convert.
# --- inbox ---------------------------------------------------------------------------------------


def inbox_values(item: InboxItem) -> dict[str, Any]:
    """The columns of a new inbox row (the store assigns the id)."""
    values = _columns(item)
    del values["id"]
    values["headers"] = dict(item.headers)
    return values


def inbox_from_row(row: InboxRow) -> InboxItem:
    return _record(InboxItem, row, kind=InboxKind(row.kind), status=InboxStatus(row.status),
                   headers=dict(row.headers))


# --- flat records ----------------------------------------------------------------------------------
# Issue, Review, PullRequest, SandboxRun and InboxItem map field for field onto their rows; only enums
# and datetimes convert.

_R = TypeVar("_R")


def _columns(record: Any) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field in dataclasses.fields(record):
        value = getattr(record, field.name)
        values[field.name] = (value.value if isinstance(value, enum.Enum)
                              else as_utc(value) if isinstance(value, datetime) else value)
    return values


def _record(cls: type[_R], row: Any, **converted: Any) -> _R:
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: getattr(row, name) for name in names if name not in converted}, **converted)
