"""The JSON API under /v1/ for chat-ops and other tools: list, show, approve, reject, retry, stats.

Authenticated by an API token (`Authorization: Bearer afx_...`, made by `autofix token create`) or
a reviewer's session cookie (writes then need the X-CSRF-Token header). Described in the app's
OpenAPI document (/openapi.json) by the models below. Decisions go through pipeline.review's
decide_* functions, like the UI's and the CLI's; an impossible decision is a 409 with the reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from pipeline import candidate_view
from pipeline.errors import AutofixError, InvalidInput
from pipeline.records import CandidateStatus, PullRequest
from pipeline.render import candidate_json, issue_json
from pipeline.review import (
    Actor,
    ReviewError,
    decide_approve,
    decide_reject,
    decide_retry,
    resolve_candidate_id,
)
from pipeline.web.auth import Principal, client_of
from pipeline.web.runtime import runtime_of

bearer = HTTPBearer(auto_error=False, description="An API token from `autofix token create NAME`.")


def api_user(request: Request,
             _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None) -> Principal:
    from pipeline.web.review_pages import auth_of

    return auth_of(request).api_user(request)


ApiUser = Annotated[Principal, Depends(api_user)]
router = APIRouter(prefix="/v1", tags=["review"])


class Problem(BaseModel):
    detail: str


class CandidateSummary(BaseModel):
    id: str
    issue: str
    title: str | None
    repo: str | None
    fix_class: str | None
    priority: float | None
    strategy: str
    status: str
    confidence: float
    description: str
    files: list[str]


class PullRequestOut(BaseModel):
    url: str
    number: int | None
    branch: str
    state: str
    commit_sha: str


class AuditOut(BaseModel):
    at: str
    actor: str
    action: str
    via: str
    client: str
    detail: str


class OtherOut(BaseModel):
    id: str
    strategy: str
    status: str
    confidence: float
    why: str


class CandidateDetail(BaseModel):
    candidate: dict[str, Any] = Field(description="As `autofix queue --json` gives it: patch, verification runs...")
    issue: dict[str, Any] | None
    event: dict[str, Any] | None
    root_cause: str
    localised_frames: list[str]
    sentry_url: str | None
    others: list[OtherOut]
    pull_request: PullRequestOut | None
    audit: list[AuditOut]


class RejectIn(BaseModel):
    reason: str = Field(min_length=1, description="Why: reasons are how the gates learn.")


class RetryIn(BaseModel):
    hint: str = Field(min_length=1, description="What the next attempt should do differently.")


class Decision(BaseModel):
    candidate_id: str
    status: str
    pull_request: PullRequestOut | None = None


def _pr(pr: PullRequest | None) -> PullRequestOut | None:
    return None if pr is None else PullRequestOut(url=pr.url, number=pr.number, branch=pr.branch, state=pr.state,
                                                  commit_sha=pr.commit_sha)


def _conflict(exc: AutofixError) -> JSONResponse:
    return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=409)


ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 404: {"model": Problem}}
DECISION_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 403: {"model": Problem}, 409: {"model": Problem}}


@router.get("/candidates", response_model=list[CandidateSummary], responses=ERRORS)
def list_candidates(request: Request, user: ApiUser, status: str = CandidateStatus.AWAITING_REVIEW.value,
                    repo: str | None = None, fix_class: str | None = None) -> list[CandidateSummary]:
    """Candidates by priority then confidence; `status=all` for every status."""
    known = {s.value for s in CandidateStatus}
    if status != "all" and status not in known:
        raise InvalidInput("status", f"one of {', '.join(sorted(known))} or all")
    chosen = None if status == "all" else CandidateStatus(status)
    rows = candidate_view.queue(runtime_of(request).deps.store, status=chosen, repo=repo, fix_class=fix_class)
    return [CandidateSummary(id=r.candidate.id, issue=r.candidate.issue_fingerprint,
                             title=r.issue.title if r.issue else None, repo=r.issue.repo if r.issue else None,
                             fix_class=r.issue.fix_class if r.issue else None,
                             priority=r.issue.priority if r.issue else None, strategy=r.candidate.strategy,
                             status=r.candidate.status.value, confidence=r.candidate.confidence,
                             description=r.candidate.patch.description, files=list(r.candidate.patch.files))
            for r in rows]


@router.get("/candidates/{candidate_id}", response_model=CandidateDetail, responses=ERRORS)
def show_candidate(request: Request, user: ApiUser, candidate_id: str) -> CandidateDetail:
    """One candidate with its error, patch, every verification run, the others tried and the audit log.
    An id prefix is accepted when it names one candidate."""
    runtime = runtime_of(request)
    view = candidate_view.lookup(runtime.deps.store, runtime.deps.accounts, runtime.settings, candidate_id)
    return CandidateDetail(
        candidate=candidate_json(view.candidate), issue=issue_json(view.issue) if view.issue else None,
        event=candidate_view.event_json(view.event), root_cause=view.root_cause,
        localised_frames=[f"{fv.frame.filename}:{fv.frame.lineno} {fv.frame.function}" for fv in view.frames
                          if fv.localised],
        sentry_url=view.sentry_url,
        others=[OtherOut(id=o.candidate.id, strategy=o.candidate.strategy, status=o.candidate.status.value,
                         confidence=o.candidate.confidence, why=o.why) for o in view.others],
        pull_request=_pr(view.pull_request),
        audit=[AuditOut(at=a.at.isoformat(), actor=a.actor, action=a.action, via=a.via, client=a.client,
                        detail=a.detail) for a in view.audit],
    )


def _writer(request: Request, user: Principal) -> Actor:
    from pipeline.web.review_pages import auth_of

    auth_of(request).check_api_write(request, user)
    return Actor(user.name, "api", client_of(request))


@router.post("/candidates/{candidate_id}/approve", response_model=Decision, responses=DECISION_ERRORS)
def approve(request: Request, user: ApiUser, candidate_id: str) -> Decision | JSONResponse:
    """Approve: publishes the pull request on the repo's code host; repeating returns the same one."""
    actor = _writer(request, user)
    runtime = runtime_of(request)
    deps = runtime.deps
    full = resolve_candidate_id(deps.accounts, candidate_id)
    try:
        pr = decide_approve(deps.store, deps.accounts, deps.code_host, runtime.settings, full, actor)
    except ReviewError as exc:
        return _conflict(exc)
    except AutofixError as exc:  # the code host refused or is unreachable: the decision did not happen
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=502)
    return Decision(candidate_id=full, status="approved", pull_request=_pr(pr))


@router.post("/candidates/{candidate_id}/reject", response_model=Decision, responses=DECISION_ERRORS)
def reject(request: Request, user: ApiUser, candidate_id: str, body: RejectIn) -> Decision | JSONResponse:
    """Reject with a reason."""
    actor = _writer(request, user)
    deps = runtime_of(request).deps
    full = resolve_candidate_id(deps.accounts, candidate_id)
    try:
        decide_reject(deps.store, deps.accounts, full, actor, body.reason)
    except ReviewError as exc:
        return _conflict(exc)
    return Decision(candidate_id=full, status="rejected")


@router.post("/candidates/{candidate_id}/retry", response_model=Decision, responses=DECISION_ERRORS)
def retry(request: Request, user: ApiUser, candidate_id: str, body: RetryIn) -> Decision | JSONResponse:
    """Set the candidate aside; the hint goes into the issue's next attempt."""
    actor = _writer(request, user)
    deps = runtime_of(request).deps
    full = resolve_candidate_id(deps.accounts, candidate_id)
    try:
        decide_retry(deps.store, deps.accounts, full, actor, body.hint)
    except ReviewError as exc:
        return _conflict(exc)
    return Decision(candidate_id=full, status="retried")


@router.get("/stats", responses=ERRORS)
def stats(request: Request, user: ApiUser) -> dict[str, Any]:
    """Acceptance per fix class and strategy, calibration, rejection reasons (as `autofix stats --json`)."""
    from pipeline.cli.stats import stats_json
    from pipeline.learning import stats as compute_stats

    runtime = runtime_of(request)
    settings = runtime.settings
    return stats_json(compute_stats(runtime.deps.store.outcomes(), settings.learning, settings.gate), settings)
