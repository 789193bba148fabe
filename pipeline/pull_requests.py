"""Published pull requests after approval: their state, and CI feedback, kept in step with the host.

`sync` reads one open pull request from its code host. Merged (GitHub's flag, so squash and rebase
merges count) or closed: the pull request and its issue say so, with the merge commit kept, and
learning.py counts the outcome. Open on a host that runs CI: once every check on the commit autofix
pushed last has finished and one failed, the failure output becomes a hint for the issue's next
attempt and `follow_up` is due; at the cap (pull_requests.ci_fix_cap commits pushed after failures)
the pull request is labelled and the reviewer told in a comment that it needs a human decision.

`follow_up` attempts the issue again with its hints, never re-proposing a patch already published,
and pushes the first verified, admitted candidate to the same branch. Finding none also hands the
pull request to a human. A branch whose head is not autofix's last commit (someone pushed to it) is
theirs: its CI is not fed back.

Both are safe to run twice: a CI failure is read once per head commit (PullRequest.ci_checked_sha),
hints are stored once per head, a candidate already pushed is found on the branch, not pushed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Literal

import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined

from pipeline.flow import IterativeFixer
from pipeline.ports import ChecksReport, CIHost, CodeHost, Fixer, Store
from pipeline.publish import regression_test
from pipeline.records import CandidateStatus, Hint, IssueStatus, PullRequest
from pipeline.scrub import scrub_text
from pipeline.settings import RepoConfig, Settings
from pipeline.triage import SandboxFor, close_cluster, prepare, run_attempt

log = structlog.get_logger(__name__)

SyncAction = Literal["unchanged", "merged", "closed", "ci_failed", "needs_human"]
_CLOSING = {"merged": IssueStatus.MERGED, "closed": IssueStatus.CLOSED}
FEEDBACK_LIMIT = 8000  # characters of CI output kept as one hint


def _templates() -> Environment:
    return Environment(loader=PackageLoader("pipeline", "templates"), undefined=StrictUndefined,
                       keep_trailing_newline=True, autoescape=False)


def awaiting_follow_up(pr: PullRequest) -> bool:
    """CI failed on the commit autofix pushed last, and no new commit or human decision came since."""
    return pr.state == "open" and not pr.needs_human and pr.ci_checked_sha == pr.commit_sha


def sync(store: Store, host: CodeHost, settings: Settings, repo: RepoConfig, pr: PullRequest) -> SyncAction:
    """Bring one stored pull request up to date with its code host; says what changed."""
    status = host.pull_request_status(repo, pr)
    candidate = store.get_candidate(pr.candidate_id)
    if status.state in _CLOSING:
        if candidate is not None:  # the issues first: a rerun then still finds the pull request open
            close_cluster(store, candidate.issue_fingerprint, _CLOSING[status.state])  # merged: the whole cluster
        store.save_pull_request(replace(pr, state=status.state, merge_commit_sha=status.merge_commit_sha))
        log.info("pull_request.synced", candidate_id=pr.candidate_id, state=status.state,
                 merge_commit_sha=status.merge_commit_sha)
        return "merged" if status.state == "merged" else "closed"
    if not isinstance(host, CIHost) or candidate is None or pr.needs_human or awaiting_follow_up(pr):
        return "unchanged"
    if status.head_sha != pr.commit_sha:
        log.info("pull_request.branch_moved", candidate_id=pr.candidate_id, head=status.head_sha)
        return "unchanged"
    report = host.checks(repo, pr)
    if report.pending or not report.failures:
        return "unchanged"
    text = ci_feedback(report)
    if pr.ci_rounds >= settings.pull_requests.ci_fix_cap:
        escalate(store, host, settings, repo, pr, f"CI still fails after {pr.ci_rounds} fix(es) pushed "
                 f"by autofix, the most allowed (pull_requests.ci_fix_cap)", text)
        return "needs_human"
    store.add_hint(Hint(candidate.issue_fingerprint, "ci", text, f"ci:{report.sha}", pr.current_candidate_id))
    store.save_pull_request(replace(pr, ci_checked_sha=report.sha))
    log.info("pull_request.ci_failed", candidate_id=pr.candidate_id, sha=report.sha,
             failures=len(report.failures), round=pr.ci_rounds + 1)
    return "ci_failed"


def ci_feedback(report: ChecksReport) -> str:
    """The failing checks as a hint: names, conclusions, their output and links; secrets scrubbed."""
    lines = [f"CI failed on commit {report.sha[:12]} of the pull request:"]
    for failure in report.failures:
        kind = "check run" if failure.kind == "check_run" else "status"
        link = f" ({failure.url})" if failure.url else ""
        lines.append(f"- {kind} {failure.name!r} ({failure.conclusion}){link}:")
        lines.extend(f"    {line}" for line in failure.details.splitlines() or ["(no output)"])
    return scrub_text("\n".join(lines))[:FEEDBACK_LIMIT]


def escalate(store: Store, host: CIHost, settings: Settings, repo: RepoConfig, pr: PullRequest, why: str,
             feedback: str) -> PullRequest:
    """Label the pull request, tell its reviewer why a human must decide, stop feeding CI back."""
    comment = _templates().get_template("pr_needs_human.md.j2").render(
        why=why, rounds=pr.ci_rounds, feedback=feedback.replace("```", "'''"),  # stays inside its fence
        label=settings.pull_requests.needs_human_label)
    host.flag_for_human(repo, pr, settings.pull_requests.needs_human_label, comment)
    flagged = replace(pr, needs_human=True, ci_checked_sha=pr.commit_sha)
    store.save_pull_request(flagged)
    log.warning("pull_request.needs_human", candidate_id=pr.candidate_id, why=why)
    return flagged


def follow_up(store: Store, host: CIHost, settings: Settings, fixers: Sequence[Fixer], sandbox_for: SandboxFor,
              repo: RepoConfig, candidate_id: str, work_base: Path,
              iterative: Sequence[IterativeFixer] = ()) -> PullRequest | None:
    """Attempt the issue of a pull request whose CI failed again, and push the new fix to its branch."""
    pr = store.get_pull_request(candidate_id)
    first = store.get_candidate(candidate_id)
    if pr is None or first is None:
        return None
    _mark_published(store, pr)  # repairs a crash between saving the pull request and the candidate
    if not awaiting_follow_up(pr):
        return pr
    fingerprint = first.issue_fingerprint
    # An admitted candidate left by an attempt that crashed before pushing is pushed, not re-made.
    ready = store.list_candidates(CandidateStatus.AWAITING_REVIEW, fingerprint)
    if not ready:
        issue = store.get_issue(fingerprint)
        prepared = prepare(store, settings, issue, work_base) if issue is not None else "the issue is gone"
        if isinstance(prepared, str):
            return escalate(store, host, settings, repo, pr, f"autofix cannot attempt the issue again: {prepared}",
                            _last_feedback(store, fingerprint))
        fix_repo, request = prepared
        outcome = run_attempt(store, request, fixers, sandbox_for(fix_repo), iterative)
        ready = [c for c in outcome.candidates if c.status is CandidateStatus.AWAITING_REVIEW]
        if not ready:
            return escalate(store, host, settings, repo, pr, "autofix found no new verified fix after CI "
                            f"failed: {outcome.reason}", _last_feedback(store, fingerprint))
    candidate = ready[0]
    current = store.get_pull_request(candidate_id)
    if current is None or not awaiting_follow_up(current):
        return current  # a concurrent follow-up got there first
    issue = store.get_issue(fingerprint)
    files = regression_test(settings, repo, issue, candidate) if issue is not None else {}
    sha = host.push_commit(repo, current, candidate.patch, current.title, candidate.id, candidate.created_at,
                           files=files)
    pushed = replace(current, commit_sha=sha, head_candidate_id=candidate.id, ci_rounds=current.ci_rounds + 1)
    store.save_pull_request(pushed)
    _mark_published(store, pushed)
    log.info("pull_request.followed_up", candidate_id=candidate_id, new_candidate=candidate.id, sha=sha,
             round=pushed.ci_rounds)
    return pushed


def _mark_published(store: Store, pr: PullRequest) -> None:
    head = pr.head_candidate_id
    if head is None:
        return
    candidate = store.get_candidate(head)
    if candidate is not None and candidate.status is CandidateStatus.AWAITING_REVIEW:
        store.set_candidate_status(head, CandidateStatus.PUBLISHED)


def _last_feedback(store: Store, fingerprint: str) -> str:
    hints = [h for h in store.hints_for(fingerprint) if h.source == "ci"]
    return hints[-1].text if hints else ""
