"""The reviewer's decisions: approval publishes a pull request, rejection records why.

Both are safe to repeat: approving a published candidate returns its pull request; the branch and
commit are deterministic, so a crash between pushing and saving is repaired by approving again.
"""

from __future__ import annotations

import structlog

from pipeline.errors import PermanentError
from pipeline.ports import CodeHost, Store
from pipeline.publish import branch_name, pr_body, pr_title
from pipeline.records import CandidateStatus, IssueStatus, PullRequest, Review
from pipeline.settings import Settings

log = structlog.get_logger(__name__)

_DECIDABLE = {CandidateStatus.AWAITING_REVIEW, CandidateStatus.APPROVED}


class ReviewError(PermanentError):
    pass


def approve(store: Store, host: CodeHost, settings: Settings, candidate_id: str, reviewer: str) -> PullRequest:
    existing = store.get_pull_request(candidate_id)
    if existing is not None:
        return existing
    candidate = store.get_candidate(candidate_id)
    if candidate is None:
        raise ReviewError(f"no candidate {candidate_id}")
    if candidate.status not in _DECIDABLE:
        raise ReviewError(f"candidate {candidate_id} is {candidate.status.value}, not awaiting review")
    issue = store.get_issue(candidate.issue_fingerprint)
    if issue is None or issue.repo is None:
        raise ReviewError(f"candidate {candidate_id} belongs to no issue with a configured repo")
    repo = settings.repo_named(issue.repo)
    if candidate.status is CandidateStatus.AWAITING_REVIEW:
        store.save_review(Review(candidate_id, "approved", reviewer))
        store.set_candidate_status(candidate_id, CandidateStatus.APPROVED)
        store.set_issue_status(issue.fingerprint, IssueStatus.APPROVED)
    event_id = issue.latest_event_id or ""
    event = store.get_event(event_id)
    exc_type = event.primary.qualified_type if event and event.primary else issue.fix_class
    pr = host.open_pull_request(
        repo, branch_name(issue, candidate), candidate.patch, pr_title(issue, candidate),
        pr_body(issue, candidate, event_id, exc_type, reviewer), candidate_id, candidate.created_at,
        base_commit=candidate.base_commit or None,
    )
    store.save_pull_request(pr)
    store.set_candidate_status(candidate_id, CandidateStatus.PUBLISHED)
    store.set_issue_status(issue.fingerprint, IssueStatus.PR_OPEN)
    log.info("candidate.approved", candidate_id=candidate_id, branch=pr.branch)
    return pr


def reject(store: Store, candidate_id: str, reviewer: str, reason: str) -> None:
    if not reason.strip():
        raise ReviewError("a rejection needs a reason: reasons are how the gates learn")
    candidate = store.get_candidate(candidate_id)
    if candidate is None:
        raise ReviewError(f"no candidate {candidate_id}")
    if candidate.status is not CandidateStatus.AWAITING_REVIEW:
        raise ReviewError(f"candidate {candidate_id} is {candidate.status.value}, not awaiting review")
    store.save_review(Review(candidate_id, "rejected", reviewer, reason))
    store.set_candidate_status(candidate_id, CandidateStatus.REJECTED)
    others = store.list_candidates(CandidateStatus.AWAITING_REVIEW, candidate.issue_fingerprint)
    if not others:
        store.set_issue_status(candidate.issue_fingerprint, IssueStatus.REJECTED)
    log.info("candidate.rejected", candidate_id=candidate_id)
