"""Conversions between the frozen records (pipeline/records.py) and the SQL rows (sql_models.py).

One pair of functions per record: `<record>_row(record) -> Row` and `<record>_from_row(row) -> record`.
Datetimes come back timezone-aware in UTC on every backend (the UTCDateTime column type sees to the
columns; the parsed event's JSON is normalised here).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import TypeAdapter

from pipeline.adapters.sql_models import (
    CandidateRow,
    EventRow,
    IssueRow,
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
    Issue,
    IssueStatus,
    Patch,
    PullRequest,
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
    return {
        "fingerprint": issue.fingerprint,
        "title": issue.title,
        "culprit": issue.culprit,
        "fix_class": issue.fix_class,
        "first_seen": as_utc(issue.first_seen),
        "last_seen": as_utc(issue.last_seen),
        "count": issue.count,
        "priority": issue.priority,
        "status": IssueStatus(issue.status).value,
        "repo": issue.repo,
        "project": issue.project,
        "latest_event_id": issue.latest_event_id,
    }


def issue_from_row(row: IssueRow) -> Issue:
    return Issue(
        fingerprint=row.fingerprint,
        title=row.title,
        culprit=row.culprit,
        fix_class=row.fix_class,
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        count=row.count,
        priority=row.priority,
        status=IssueStatus(row.status),
        repo=row.repo,
        project=row.project,
        latest_event_id=row.latest_event_id,
    )


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
    )


def _run_rows(verification: Verification | None) -> list[VerificationRunRow]:
    runs = verification.runs if verification is not None else ()
    return [
        VerificationRunRow(
            position=position,
            kind=run.kind,
            command=run.command,
            exit_code=run.exit_code,
            duration_s=run.duration_s,
            output_tail=run.output_tail,
            timed_out=run.timed_out,
        )
        for position, run in enumerate(runs)
    ]


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
    )


def _verification_from_rows(
    summary: VerificationRow | None, runs: list[VerificationRunRow]
) -> Verification | None:
    if summary is None:
        return None
    return Verification(
        runs=tuple(
            SandboxRun(
                kind=run.kind,
                command=run.command,
                exit_code=run.exit_code,
                duration_s=run.duration_s,
                output_tail=run.output_tail,
                timed_out=run.timed_out,
            )
            for run in sorted(runs, key=lambda r: r.position)
        ),
        reproduced=summary.reproduced,
        repro_passes_after=summary.repro_passes_after,
        tests_pass_after=summary.tests_pass_after,
        applied=summary.applied,
        reason=summary.reason,
    )


# --- reviews and pull requests -------------------------------------------------------------------


def review_values(review: Review) -> dict[str, Any]:
    return {
        "candidate_id": review.candidate_id,
        "decision": review.decision,
        "reviewer": review.reviewer,
        "reason": review.reason,
        "at": as_utc(review.at),
    }


def review_from_row(row: ReviewRow) -> Review:
    return Review(
        candidate_id=row.candidate_id,
        decision=row.decision,
        reviewer=row.reviewer,
        reason=row.reason,
        at=row.at,
    )


def pull_request_values(pr: PullRequest) -> dict[str, Any]:
    return {
        "candidate_id": pr.candidate_id,
        "repo": pr.repo,
        "branch": pr.branch,
        "title": pr.title,
        "body": pr.body,
        "url": pr.url,
        "commit_sha": pr.commit_sha,
        "state": pr.state,
        "number": pr.number,
        "created_at": as_utc(pr.created_at),
    }


def pull_request_from_row(row: PullRequestRow) -> PullRequest:
    return PullRequest(
        candidate_id=row.candidate_id,
        repo=row.repo,
        branch=row.branch,
        title=row.title,
        body=row.body,
        url=row.url,
        commit_sha=row.commit_sha,
        state=row.state,
        number=row.number,
        created_at=row.created_at,
    )
