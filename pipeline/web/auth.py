"""Who is asking: reviewer sessions, API tokens, CSRF tokens and the login rate limit.

Sessions are itsdangerous-signed cookies (HttpOnly, SameSite=Strict, Secure on https) holding the
reviewer's name and the session's CSRF token; the signature's timestamp is the last use, and every
authenticated page re-signs it, so a session idle for `review_ui.session_idle_s` is refused (idle
expiry). Before login, a signed CSRF cookie plays the same part for the login form (double submit).
A form post must carry the token in `csrf_token` and, when the browser sends an Origin, come from
this origin; anything else is 403. API clients send `Authorization: Bearer afx_...` (or a session
cookie plus the X-CSRF-Token header for writes).

The login limit counts wrong passwords in memory (one `autofix serve` process), per name and client
address together and, four times as generous, per client address alone (one client guessing many
names); past `login_max_failures` in the window, logins for that key are refused with 429 and a
Retry-After for `login_lockout_s`, and every failure already costs a delay that grows with the count.
"""

from __future__ import annotations

import hmac
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from fastapi import Request, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from pipeline.accounts import Accounts, dummy_verify, parse_token, token_matches, verify_password
from pipeline.settings import Settings

SESSION_COOKIE = "autofix_session"
CSRF_COOKIE = "autofix_csrf"
CSRF_HEADER = "x-csrf-token"
CLIENT_FACTOR = 4  # a client alone may fail this many times more, across names
FAILURE_DELAY_S = 0.25  # per failure so far, capped: a guesser is slowed before the lockout bites
MAX_DELAY_S = 2.0
PRE_LOGIN_MAX_AGE_S = 3600


@dataclass(frozen=True)
class Principal:
    name: str  # the reviewer, or "token:<name>" for an API token
    kind: Literal["session", "token"]
    csrf: str = ""


class NotAuthenticated(Exception):
    """No valid session or token: pages redirect to /login, the API answers 401."""

    def __init__(self, api: bool) -> None:
        self.api = api


class CsrfRefused(Exception):
    pass


def secret_key(settings: Settings) -> str:
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    path: Path = settings.home / "session.key"
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class LoginLimiter:
    def __init__(self, max_failures: int, window_s: float, lockout_s: float) -> None:
        self.max_failures, self.window_s, self.lockout_s = max_failures, window_s, lockout_s
        self._failures: dict[str, deque[float]] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def keys(name: str, client: str) -> tuple[tuple[str, int], ...]:
        """The counters a login attempt is charged to, with how many of their failures lock them."""
        return ((f"name:{name.strip().lower()}|client:{client}", 1), (f"client:{client}", CLIENT_FACTOR))

    def retry_after(self, keys: tuple[tuple[str, int], ...]) -> int | None:
        """Seconds until a login with any of these keys may be tried again; None: now."""
        now = time.monotonic()
        with self._lock:
            waits = [until - now for k, _ in keys if (until := self._locked_until.get(k, 0.0)) > now]
        return int(max(waits)) + 1 if waits else None

    def failed(self, keys: tuple[tuple[str, int], ...]) -> float:
        """Count a failure; the delay to serve it with (it grows with the failures so far)."""
        now = time.monotonic()
        worst = 0
        with self._lock:
            for key, factor in keys:
                times = self._failures.setdefault(key, deque())
                times.append(now)
                while times and times[0] < now - self.window_s:
                    times.popleft()
                worst = max(worst, len(times) // factor)
                if len(times) >= self.max_failures * factor:
                    self._locked_until[key] = now + self.lockout_s
                    times.clear()
        return min(MAX_DELAY_S, FAILURE_DELAY_S * worst)

    def succeeded(self, keys: tuple[tuple[str, int], ...]) -> None:
        with self._lock:
            self._failures.pop(keys[0][0], None)  # the name's counter; the client's keeps counting


class WebAuth:
    """Sessions, tokens and CSRF for one app."""

    def __init__(self, settings: Settings, accounts: Accounts) -> None:
        self.settings = settings
        self.accounts = accounts
        key = secret_key(settings)
        self._sessions = URLSafeTimedSerializer(key, salt="autofix.session")
        self._pre = URLSafeTimedSerializer(key, salt="autofix.csrf")
        cfg = settings.review_ui
        self.idle_s = cfg.session_idle_s
        self.limiter = LoginLimiter(cfg.login_max_failures, cfg.login_window_s, cfg.login_lockout_s)
        base = settings.public_base_url or ""
        self.secure = cfg.secure_cookies if cfg.secure_cookies is not None else base.startswith("https://")

    # --- who ---------------------------------------------------------------------------------------

    def session_of(self, request: Request) -> Principal | None:
        raw = request.cookies.get(SESSION_COOKIE)
        if not raw:
            return None
        try:
            data = self._sessions.loads(raw, max_age=self.idle_s)
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("u"), str) or not isinstance(data.get("c"), str):
            return None
        if self.accounts.get_reviewer(data["u"]) is None:  # removed since: the session ends with it
            return None
        return Principal(data["u"], "session", data["c"])

    def token_of(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value:
            return None
        parsed = parse_token(value.strip())
        if parsed is None:
            return None
        record = self.accounts.get_token(parsed[0])
        if record is None or not token_matches(parsed[1], record):
            return None
        return Principal(f"token:{record.name}", "token")

    def page_user(self, request: Request) -> Principal:
        principal = self.session_of(request)
        if principal is None:
            raise NotAuthenticated(api=False)
        return principal

    def api_user(self, request: Request) -> Principal:
        principal = self.token_of(request) or self.session_of(request)
        if principal is None:
            raise NotAuthenticated(api=True)
        return principal

    def check_password(self, name: str, password: str) -> bool:
        reviewer = self.accounts.get_reviewer(name)
        if reviewer is None:
            dummy_verify(password)
            return False
        return verify_password(password, reviewer.password_hash)

    # --- cookies -----------------------------------------------------------------------------------

    def start_session(self, response: Response, name: str) -> None:
        self._set(response, SESSION_COOKIE, self._sessions.dumps({"u": name, "c": secrets.token_urlsafe(24)}),
                  self.idle_s)
        response.delete_cookie(CSRF_COOKIE, path="/")

    def refresh(self, response: Response, principal: Principal) -> None:
        """Re-sign the session: its idle clock starts again."""
        if principal.kind == "session":
            self._set(response, SESSION_COOKIE, self._sessions.dumps({"u": principal.name, "c": principal.csrf}),
                      self.idle_s)

    def end_session(self, response: Response) -> None:
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=self.secure)

    def login_csrf(self, request: Request) -> str:
        """The pre-login CSRF token of this browser (the cookie's, else a new one to set)."""
        raw = request.cookies.get(CSRF_COOKIE)
        if raw:
            try:
                value = self._pre.loads(raw, max_age=PRE_LOGIN_MAX_AGE_S)
                if isinstance(value, str):
                    return value
            except (SignatureExpired, BadSignature):
                pass
        return secrets.token_urlsafe(24)

    def set_login_csrf(self, response: Response, token: str) -> None:
        self._set(response, CSRF_COOKIE, self._pre.dumps(token), PRE_LOGIN_MAX_AGE_S)

    def _set(self, response: Response, name: str, value: str, max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True, samesite="strict",
                            secure=self.secure)

    # --- CSRF ---------------------------------------------------------------------------------------

    def check_form(self, request: Request, sent: str, expected: str) -> None:
        """403 unless the form's token is this session's (or this browser's) and the origin is ours."""
        check_origin(request)
        if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
            raise CsrfRefused()

    def check_api_write(self, request: Request, principal: Principal) -> None:
        """A session-authenticated API write needs the CSRF header; a bearer token does not."""
        if principal.kind == "session":
            self.check_form(request, request.headers.get(CSRF_HEADER, ""), principal.csrf)


def check_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None:
        return
    host = request.headers.get("host", "")
    if origin == "null" or urlsplit(origin).netloc != host:
        raise CsrfRefused()


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""
