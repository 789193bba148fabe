"""The reviewer's decisions: approval publishes a pull request, rejection records why, a retry
turns a reviewer's hint into the next attempt's context.

Approval is safe to repeat: approving a published candidate returns its pull request; the branch and
commit are deterministic, so a crash between pushing and saving is repaired by approving again.

The UI, the JSON API and the CLI all decide through `decide_*` here: the same checks, the same
records, and one audit entry per decision (who, what, when, from where).
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from pipeline.accounts import Accounts, AuditEntry, Via
from pipeline.errors import AutofixError, InvalidInput, NotFound, PermanentError
from pipeline.ports import CodeHost, Store
from pipeline.publish import branch_name, candidate_url, pr_body, pr_title, publish_base, regression_test
from pipeline.records import CandidateStatus, Hint, IssueStatus, PullRequest, Review, short_id
from pipeline.scrub import scrub_text
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
    files = regression_test(settings, repo, issue, candidate)
    body = pr_body(issue, candidate, event_id, exc_type, reviewer, candidate_url(settings, candidate_id),
                   next(iter(files), None))
    pr = host.open_pull_request(
        repo, branch_name(issue, candidate), candidate.patch, pr_title(issue, candidate), body, candidate_id,
        candidate.created_at, base_sha=publish_base(candidate), files=files,
    )
    store.save_pull_request(pr)
    store.set_candidate_status(candidate_id, CandidateStatus.PUBLISHED)
    store.set_issue_status(issue.fingerprint, IssueStatus.PR_OPEN)
    log.info("candidate.approved", candidate_id=candidate_id, branch=pr.branch)
    return pr


def require_reason(reason: str) -> None:
    if not reason.strip():
        raise ReviewError("a rejection needs a reason: reasons are how the gates learn")


def reject(store: Store, candidate_id: str, reviewer: str, reason: str) -> None:
    require_reason(reason)
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


RETRY_REASON = "retry with a hint"
MAX_HINT = 4000


def retry(store: Store, candidate_id: str, reviewer: str, hint: str) -> Hint:
    """Set the candidate aside with the reviewer's hint for the issue's next attempt.

    The candidate is rejected (its patch is never proposed again; the reason says it was a retry)
    and the issue goes back to triaged, so the next triage run attempts it with the hint in its
    context (FixRequest.hints). The hint is scrubbed and bounded: it is data, never instructions.
    """
    text = scrub_text(hint.strip())[:MAX_HINT]
    if not text:
        raise ReviewError("a retry needs a hint: what should the next attempt do differently?")
    candidate = store.get_candidate(candidate_id)
    if candidate is None:
        raise ReviewError(f"no candidate {candidate_id}")
    reject(store, candidate_id, reviewer, f"{RETRY_REASON}: {text}"[:500])
    record = Hint(candidate.issue_fingerprint, "reviewer", text, f"reviewer:{candidate_id}:{short_id(text)}",
                  candidate_id)
    store.add_hint(record)
    store.set_issue_status(candidate.issue_fingerprint, IssueStatus.TRIAGED)
    log.info("candidate.retried", candidate_id=candidate_id)
    return record


# --- one code path for the UI, the API and the CLI ------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """Who decides, through what, from where (a client address, or the host user for the CLI)."""

    name: str
    via: Via
    client: str = ""


def host_user() -> str:
    """Who runs a CLI decision, for the audit log ("" when the system cannot say)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return ""


class AmbiguousId(InvalidInput):
    def __init__(self, prefix: str, matches: list[str]) -> None:
        super().__init__(f"candidate id {prefix!r}", f"ambiguous prefix, matches {', '.join(matches)}")
        self.matches = matches


def resolve_candidate_id(accounts: Accounts, prefix: str) -> str:
    """The one candidate id starting with `prefix`; NotFound, or AmbiguousId naming the matches."""
    prefix = prefix.strip()
    if not prefix:
        raise InvalidInput("candidate id", "empty")
    matches = list(accounts.candidate_ids_with_prefix(prefix))
    if prefix in matches:
        return prefix
    if not matches:
        raise NotFound(f"candidate id {prefix!r}", "no candidate has this id or prefix")
    if len(matches) > 1:
        raise AmbiguousId(prefix, matches)
    return matches[0]


def decide_approve(store: Store, accounts: Accounts, host: CodeHost, settings: Settings, candidate_id: str,
                   actor: Actor) -> PullRequest:
    try:
        pr = approve(store, host, settings, candidate_id, actor.name)
    except ReviewError:
        raise  # nothing was decided: the candidate is not one to approve
    except AutofixError as exc:  # approved, but the code host failed: approving again resumes
        accounts.add_audit(AuditEntry(candidate_id, actor.name, "approve_failed", actor.via, actor.client,
                                      " ".join(str(exc).split())[:500]))
        raise
    accounts.add_audit(AuditEntry(candidate_id, actor.name, "approved", actor.via, actor.client, pr.url))
    return pr


def decide_reject(store: Store, accounts: Accounts, candidate_id: str, actor: Actor, reason: str) -> None:
    reason = scrub_text(reason.strip())[:500]
    reject(store, candidate_id, actor.name, reason)
    accounts.add_audit(AuditEntry(candidate_id, actor.name, "rejected", actor.via, actor.client, reason))


def decide_retry(store: Store, accounts: Accounts, candidate_id: str, actor: Actor, hint: str) -> Hint:
    record = retry(store, candidate_id, actor.name, hint)
    accounts.add_audit(AuditEntry(candidate_id, actor.name, "retried", actor.via, actor.client, record.text))
    return record
