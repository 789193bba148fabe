"""What a reviewer sees of a candidate, gathered once for the page, the JSON API and `autofix show`.

Everything that came from outside (event text, locals, run output, hints, reasons) is scrubbed here,
before any edge renders it; scrubbing twice changes nothing, so data scrubbed at ingestion is safe.
The diff is shown as generated: it is the code the reviewer approves, not event data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from pipeline.accounts import Accounts, AuditEntry
from pipeline.errors import NotFound
from pipeline.ports import Store
from pipeline.records import (
    CandidateStatus,
    ErrorEvent,
    FixCandidate,
    Frame,
    Hint,
    Issue,
    PullRequest,
    Review,
    SandboxRun,
)
from pipeline.review import resolve_candidate_id
from pipeline.scrub import scrub_event, scrub_text
from pipeline.settings import Settings

DiffKind = Literal["add", "del", "hunk", "file", "ctx"]
STATUS_ORDER = {status: i for i, status in enumerate(CandidateStatus)}


@dataclass(frozen=True)
class FrameView:
    frame: Frame
    localised: bool  # the frame is in a file the patch changes


@dataclass(frozen=True)
class Other:
    candidate: FixCandidate
    why: str  # why it was held, or what became of it


@dataclass(frozen=True)
class CandidateView:
    candidate: FixCandidate
    issue: Issue | None
    event: ErrorEvent | None
    frames: tuple[FrameView, ...]
    root_cause: str
    sentry_url: str | None
    others: tuple[Other, ...]
    reviews: tuple[Review, ...]
    audit: tuple[AuditEntry, ...]
    pull_request: PullRequest | None
    hints: tuple[Hint, ...]

    @property
    def runs(self) -> tuple[SandboxRun, ...]:
        return self.candidate.verification.runs if self.candidate.verification else ()

    @property
    def decidable(self) -> bool:
        return self.candidate.status is CandidateStatus.AWAITING_REVIEW


def diff_lines(diff: str) -> list[tuple[DiffKind, str]]:
    """Each line of a unified diff with its kind, for highlighting."""
    lines: list[tuple[DiffKind, str]] = []
    for line in diff.splitlines():
        kind: DiffKind
        if line.startswith(("+++", "---", "diff ", "index ")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = "ctx"
        lines.append((kind, line))
    return lines


def scrub_candidate(candidate: FixCandidate) -> FixCandidate:
    v = candidate.verification
    if v is None:
        return candidate
    runs = tuple(replace(r, command=scrub_text(r.command), output_tail=scrub_text(r.output_tail)) for r in v.runs)
    replays = tuple(replace(r, detail=scrub_text(r.detail)) for r in v.replays)
    return replace(candidate, verification=replace(v, runs=runs, replays=replays, reason=scrub_text(v.reason)))


def scrub_issue(issue: Issue | None) -> Issue | None:
    """Titles and culprits come from exception text: scrubbed like it."""
    return None if issue is None else replace(issue, title=scrub_text(issue.title), culprit=scrub_text(issue.culprit))


def why_held(candidate: FixCandidate, settings: Settings) -> str:
    v = candidate.verification
    if candidate.status is not CandidateStatus.HELD:
        return candidate.status.value
    if v is None:
        return "not verified"
    if not v.verified:
        return scrub_text(v.reason) or "verification failed"
    floor = settings.gate.min_confidence
    if candidate.confidence < floor:
        return f"confidence {candidate.confidence:.2f} below the gate's {floor:.2f}"
    return "held by the gate (policy or the learned bar for its class)"


def sentry_link(settings: Settings, issue: Issue | None) -> str | None:
    if issue is None or not issue.sentry_issue_id or settings.sentry_url is None or not settings.sentry_org:
        return None
    base = str(settings.sentry_url).rstrip("/")
    return f"{base}/organizations/{settings.sentry_org}/issues/{issue.sentry_issue_id}/"


def root_cause(event: ErrorEvent | None, candidate: FixCandidate) -> str:
    frame = event.crash_frame() if event else None
    exc = event.primary if event else None
    where = f"{frame.filename}:{frame.lineno} in {frame.function}" if frame else "unknown location"
    code = f": {frame.context_line.strip()}" if frame and frame.context_line else ""
    what = f" raised {exc.qualified_type}: {exc.value}" if exc else ""
    return scrub_text(f"{where}{code}{what} -> {candidate.patch.description}")


def _localised(frame: Frame, files: Sequence[str]) -> bool:
    paths = [p for p in (frame.filename, frame.abs_path or "") if p]
    return any(p == f or p.endswith("/" + f) for p in paths for f in files)


def lookup(store: Store, accounts: Accounts, settings: Settings, candidate_id: str) -> CandidateView:
    """The view of the candidate an id (or a unique prefix of one) names; NotFound if none."""
    candidate = store.get_candidate(resolve_candidate_id(accounts, candidate_id))
    if candidate is None:
        raise NotFound(f"candidate {candidate_id}", "no such candidate")
    return build(store, accounts, settings, candidate)


def build(store: Store, accounts: Accounts, settings: Settings, candidate: FixCandidate) -> CandidateView:
    issue = scrub_issue(store.get_issue(candidate.issue_fingerprint))
    event = store.get_event(issue.latest_event_id) if issue and issue.latest_event_id else None
    event = scrub_event(event) if event else None
    exc = event.primary if event else None
    frames = tuple(FrameView(f, f.in_app and _localised(f, candidate.patch.files))
                   for f in (exc.frames if exc else ()))
    others = tuple(Other(scrub_candidate(c), why_held(c, settings))
                   for c in store.list_candidates(issue_fingerprint=candidate.issue_fingerprint)
                   if c.id != candidate.id)
    reviews = tuple(replace(r, reason=scrub_text(r.reason)) for r in store.reviews_for(candidate.id))
    audit = tuple(replace(a, detail=scrub_text(a.detail)) for a in accounts.audit_for(candidate.id))
    hints = tuple(replace(h, text=scrub_text(h.text)) for h in store.hints_for(candidate.issue_fingerprint))
    return CandidateView(scrub_candidate(candidate), issue, event, frames, root_cause(event, candidate),
                         sentry_link(settings, issue), others, reviews, audit,
                         store.get_pull_request(candidate.id), hints)


@dataclass(frozen=True)
class QueueRow:
    candidate: FixCandidate
    issue: Issue | None


def queue(store: Store, *, status: CandidateStatus | None = CandidateStatus.AWAITING_REVIEW,
          repo: str | None = None, fix_class: str | None = None) -> list[QueueRow]:
    """Candidates with their issues, by the issue's priority then confidence, highest first."""
    issues: dict[str, Issue | None] = {}
    rows: list[QueueRow] = []
    for c in store.list_candidates(status):
        if c.issue_fingerprint not in issues:
            issues[c.issue_fingerprint] = scrub_issue(store.get_issue(c.issue_fingerprint))
        issue = issues[c.issue_fingerprint]
        if repo and (issue is None or issue.repo != repo):
            continue
        if fix_class and (issue is None or issue.fix_class != fix_class):
            continue
        rows.append(QueueRow(c, issue))
    rows.sort(key=lambda r: (-(r.issue.priority if r.issue else 0.0), -r.candidate.confidence, r.candidate.id))
    return rows


def iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def event_json(event: ErrorEvent | None) -> dict[str, Any] | None:
    if event is None:
        return None
    exc = event.primary
    return {"id": event.id, "release": event.release, "environment": event.environment,
            "type": exc.qualified_type if exc else None, "value": exc.value if exc else None,
            "received_at": iso(event.received_at)}
