"""The review UI: server-rendered pages (Jinja2, autoescaped) for the queue and each candidate.

Routes (stable; tests and scripts rely on them): GET/POST /login, POST /logout, GET /queue,
GET /candidates/{id}, POST /candidates/{id}/approve | /reject (reason) | /retry (hint). Every page
but /login needs a session (else a redirect to /login); every form carries the session's CSRF token.
Decisions go through pipeline.review's decide_* functions, the same ones the API and the CLI use.
`install(app, runtime)` mounts this module, the JSON API and their error handlers.
"""

from __future__ import annotations

import time
from functools import cache
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from pipeline import candidate_view
from pipeline.errors import AutofixError, NotFound
from pipeline.records import CandidateStatus
from pipeline.review import Actor, decide_approve, decide_reject, decide_retry, resolve_candidate_id
from pipeline.web.auth import CsrfRefused, NotAuthenticated, Principal, WebAuth, client_of
from pipeline.web.runtime import Runtime, runtime_of

router = APIRouter(include_in_schema=False)

COMMON_REASONS = (
    "hides the error instead of fixing its cause",
    "wrong place: the bug is elsewhere",
    "changes behaviour callers rely on",
    "too broad: changes more than the bug needs",
    "not a bug: the error is expected here",
    "the reproduction does not match the real failure",
)


@cache
def templates() -> Environment:
    return Environment(loader=PackageLoader("pipeline.web", "templates"), autoescape=select_autoescape(default=True),
                       undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def reset() -> None:
    templates.cache_clear()


def auth_of(request: Request) -> WebAuth:
    auth = request.app.state.review_auth
    assert isinstance(auth, WebAuth)
    return auth


def page_user(request: Request) -> Principal:
    return auth_of(request).page_user(request)


User = Annotated[Principal, Depends(page_user)]


def render(request: Request, name: str, user: Principal | None, status_code: int = 200, csrf: str | None = None,
           **context: Any) -> HTMLResponse:
    context.setdefault("flash", request.query_params.get("done"))
    context.setdefault("error", None)
    csrf = csrf if csrf is not None else user.csrf if user else ""
    html = templates().get_template(name).render(user=user, csrf=csrf, **context)
    response = HTMLResponse(html, status_code=status_code,
                            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY",
                                     "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; "
                                     "script-src 'unsafe-inline'; frame-ancestors 'none'"})
    if user is not None:
        auth_of(request).refresh(response, user)
    return response


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/queue"


# --- login ---------------------------------------------------------------------------------------


def _login_page(request: Request, status_code: int = 200, error: str | None = None, next_: str = "/queue",
                headers: dict[str, str] | None = None) -> HTMLResponse:
    auth = auth_of(request)
    token = auth.login_csrf(request)
    response = render(request, "login.html.j2", None, status_code, csrf=token, error=error, next=next_)
    for k, v in (headers or {}).items():
        response.headers[k] = v
    auth.set_login_csrf(response, token)
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/queue") -> Response:
    if auth_of(request).session_of(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, next_=_safe_next(next))


@router.post("/login")
def login(request: Request, username: Annotated[str, Form()] = "", password: Annotated[str, Form()] = "",
          csrf_token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = "/queue") -> Response:
    auth = auth_of(request)
    cookie_token = auth.login_csrf(request) if request.cookies.get("autofix_csrf") else ""
    auth.check_form(request, csrf_token, cookie_token)
    keys = auth.limiter.keys(username, client_of(request))
    wait = auth.limiter.retry_after(keys)
    if wait is not None:
        return _login_page(request, 429, f"too many failed logins: try again in {wait} s", _safe_next(next),
                           {"Retry-After": str(wait)})
    if not username or not auth.check_password(username, password):
        time.sleep(auth.limiter.failed(keys))  # sync route: a worker thread sleeps, not the event loop
        return _login_page(request, 401, "wrong name or password", _safe_next(next))
    auth.limiter.succeeded(keys)
    response = RedirectResponse(_safe_next(next), status_code=303)
    auth.start_session(response, username)
    return response


@router.post("/logout")
def logout(request: Request, user: User, csrf_token: Annotated[str, Form()] = "") -> Response:
    auth = auth_of(request)
    auth.check_form(request, csrf_token, user.csrf)
    response = RedirectResponse("/login", status_code=303)
    auth.end_session(response)
    return response


@router.get("/")
def home(user: User) -> Response:
    return RedirectResponse("/queue", status_code=303)


# --- queue and candidates ------------------------------------------------------------------------


@router.get("/queue")
def queue_page(request: Request, user: User, repo: str = "", fix_class: str = "",
               status: str = CandidateStatus.AWAITING_REVIEW.value) -> Response:
    runtime = runtime_of(request)
    known = {s.value for s in CandidateStatus}
    chosen = CandidateStatus(status) if status in known else None  # "all" (or nonsense): every status
    rows = candidate_view.queue(runtime.deps.store, status=chosen, repo=repo or None, fix_class=fix_class or None)
    issues = runtime.deps.store.list_issues()
    repos = sorted({r.name for r in runtime.settings.repos} | {i.repo for i in issues if i.repo})
    classes = sorted({i.fix_class for i in issues})
    return render(request, "queue.html.j2", user, rows=rows, repos=repos, fix_classes=classes,
                  statuses=[s.value for s in CandidateStatus] + ["all"],
                  filters={"repo": repo, "fix_class": fix_class, "status": status})


def _candidate_page(request: Request, user: User, candidate_id: str, status_code: int = 200,
                    error: str | None = None) -> Response:
    runtime = runtime_of(request)
    view = candidate_view.lookup(runtime.deps.store, runtime.deps.accounts, runtime.settings, candidate_id)
    return render(request, "candidate.html.j2", user, status_code, view=view, error=error,
                  diff=candidate_view.diff_lines(view.candidate.patch.diff), reasons=COMMON_REASONS)


@router.get("/candidates/{candidate_id}")
def candidate_page(request: Request, user: User, candidate_id: str) -> Response:
    return _candidate_page(request, user, candidate_id)


def _decided(request: Request, user: Principal, candidate_id: str, done: str) -> Response:
    response = RedirectResponse(f"/candidates/{candidate_id}?done={quote(done)}", status_code=303)
    auth_of(request).refresh(response, user)
    return response


def _actor(request: Request, user: Principal) -> Actor:
    return Actor(user.name, "ui", client_of(request))


@router.post("/candidates/{candidate_id}/approve")
def approve(request: Request, user: User, candidate_id: str, csrf_token: Annotated[str, Form()] = "") -> Response:
    auth_of(request).check_form(request, csrf_token, user.csrf)
    runtime = runtime_of(request)
    deps = runtime.deps
    full = resolve_candidate_id(deps.accounts, candidate_id)
    try:
        pr = decide_approve(deps.store, deps.accounts, deps.code_host, runtime.settings, full, _actor(request, user))
    except AutofixError as exc:
        return _candidate_page(request, user, full, 409, f"not approved: {exc}")
    return _decided(request, user, full, f"approved: pull request {pr.url}")


@router.post("/candidates/{candidate_id}/reject")
def reject(request: Request, user: User, candidate_id: str, reason: Annotated[str, Form()] = "",
           csrf_token: Annotated[str, Form()] = "") -> Response:
    auth_of(request).check_form(request, csrf_token, user.csrf)
    deps = runtime_of(request).deps
    full = resolve_candidate_id(deps.accounts, candidate_id)
    try:
        decide_reject(deps.store, deps.accounts, full, _actor(request, user), reason)
    except AutofixError as exc:
        return _candidate_page(request, user, full, 409 if reason.strip() else 400, f"not rejected: {exc}")
    return _decided(request, user, full, "rejected")


@router.post("/candidates/{candidate_id}/retry")
def retry(request: Request, user: User, candidate_id: str, hint: Annotated[str, Form()] = "",
          csrf_token: Annotated[str, Form()] = "") -> Response:
    auth_of(request).check_form(request, csrf_token, user.csrf)
    deps = runtime_of(request).deps
    full = resolve_candidate_id(deps.accounts, candidate_id)
    try:
        decide_retry(deps.store, deps.accounts, full, _actor(request, user), hint)
    except AutofixError as exc:
        return _candidate_page(request, user, full, 409 if hint.strip() else 400, f"not retried: {exc}")
    return _decided(request, user, full, "set aside: the next attempt gets the hint")


# --- mounting ------------------------------------------------------------------------------------


async def _on_not_authenticated(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotAuthenticated)
    if exc.api or request.url.path.startswith("/v1/"):
        return JSONResponse({"detail": "authentication required: a session or an API token"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":  # a form posted after the session ended: come back to a page, not a POST
        target = "/queue"
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _on_csrf(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith("/v1/"):
        return JSONResponse({"detail": "CSRF check failed"}, status_code=403)
    return HTMLResponse("<!doctype html><title>403</title><p>Refused: the form's CSRF token is missing or wrong, "
                        "or it came from another site.</p>", status_code=403)


async def _on_not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotFound)
    path = request.url.path
    status = 404 if path.startswith(("/v1/", "/candidates/")) else 400
    return JSONResponse({"detail": exc.reason, "causes": []}, status_code=status)


def install(app: FastAPI, runtime: Runtime) -> None:
    """Mount the review UI and the JSON API on the app."""
    from pipeline.web import api

    app.state.review_auth = WebAuth(runtime.settings, runtime.deps.accounts)
    app.add_exception_handler(NotAuthenticated, _on_not_authenticated)
    app.add_exception_handler(CsrfRefused, _on_csrf)
    app.add_exception_handler(NotFound, _on_not_found)
    app.include_router(router)
    app.include_router(api.router)
