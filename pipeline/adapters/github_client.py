"""The GitHub API client (PyGitHub) built from Settings, and the one place its errors are translated.

Credentials: a GitHub App (github_app: app_id, private_key_path, installation_id; PyGitHub mints and
renews the installation token) or else AUTOFIX_GITHUB_TOKEN. AUTOFIX_GITHUB_API_URL points PyGitHub at
GitHub Enterprise (https://ghe.example.com/api/v3) or at a test server. PyGitHub's own retrying is
off: every call goes through `GitHubCalls`, which translates what comes back:

    401                                   CodeHostAuthFailed   (a ConfigError: fix the credentials)
    403 / 429 rate limit, the wait known  waited out in-process when at most max_rate_limit_wait_s, up
      (x-ratelimit-reset, retry-after)    to rate_limit_retries times; else RateLimited(retry_at)
    5xx, timeouts, refused connections    CodeHostUnavailable  (a TransientError)
    other 4xx                             CodeHostRefused(status, message)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import requests
import structlog
from github import Auth, Github, GithubException

from pipeline.errors import CodeHostAuthFailed, CodeHostRefused, CodeHostUnavailable, ConfigError, RateLimited
from pipeline.settings import GitHubClientConfig, Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")
# A secondary rate limit that names no wait: GitHub's guidance is to wait at least a minute.
DEFAULT_RATE_LIMIT_WAIT_S = 60.0


def github_auth(settings: Settings) -> Auth.Auth:
    app = settings.github_app
    if app.app_id is not None or app.installation_id is not None or app.private_key_path is not None:
        if app.app_id is None or app.installation_id is None or app.private_key_path is None:
            raise ConfigError("github_app needs app_id, installation_id and private_key_path together")
        try:
            key = app.private_key_path.expanduser().read_text()
        except OSError as exc:
            raise ConfigError(f"github_app.private_key_path {app.private_key_path}: {exc.strerror}") from exc
        return Auth.AppAuth(app.app_id, key).get_installation_auth(app.installation_id)
    if settings.github_token is not None:
        return Auth.Token(settings.github_token.get_secret_value())
    raise ConfigError("a repo has host = \"github\" but neither AUTOFIX_GITHUB_TOKEN nor github_app is set")


def make_github(settings: Settings) -> Github:
    config = settings.github_client
    return Github(
        auth=github_auth(settings),
        base_url=settings.github_api_url.rstrip("/"),
        timeout=config.timeout_s,
        retry=None,  # GitHubCalls decides what is retried, and how long to wait
        seconds_between_requests=config.seconds_between_requests or None,
        seconds_between_writes=config.seconds_between_writes or None,
        lazy=True,  # objects are fetched when read, inside GitHubCalls, not when made
    )


class GitHubCalls:
    """Runs one GitHub operation, waiting out short rate limits and translating every failure."""

    def __init__(self, config: GitHubClientConfig, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._sleep = sleep
        self._clock = clock

    def __call__(self, what: str, operation: Callable[[], T]) -> T:
        """`operation()`, retried after a rate limit; `what` names it in errors and logs."""
        attempt = 0
        while True:
            try:
                return operation()
            except GithubException as exc:
                wait = self._rate_limit_wait(exc)
                if wait is None:
                    raise _translated(exc, what) from exc
                attempt += 1
                if wait > self.config.max_rate_limit_wait_s or attempt > self.config.rate_limit_retries:
                    retry_at = datetime.fromtimestamp(self._clock() + wait, UTC)
                    raise RateLimited(f"GitHub rate limit on {what}", retry_at) from exc
                log.warning("github.rate_limited", what=what, wait_s=round(wait, 1), attempt=attempt)
                self._sleep(wait)
            except requests.RequestException as exc:
                raise CodeHostUnavailable(f"GitHub unreachable on {what}: {exc}") from exc

    def _rate_limit_wait(self, exc: GithubException) -> float | None:
        """Seconds until a retry can succeed, or None when the error is no rate limit."""
        headers = _lower(exc.headers)
        limited = exc.status == 429 or (
            exc.status == 403 and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers
                                   or "rate limit" in _message(exc).lower()))
        if not limited:
            return None
        if "retry-after" in headers:
            try:
                return max(0.0, float(headers["retry-after"]))
            except ValueError:
                return DEFAULT_RATE_LIMIT_WAIT_S
        if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
            try:
                return max(0.0, float(headers["x-ratelimit-reset"]) - self._clock()) + 1.0  # its clock may lead
            except ValueError:
                return DEFAULT_RATE_LIMIT_WAIT_S
        return DEFAULT_RATE_LIMIT_WAIT_S


def _lower(headers: Mapping[str, Any] | None) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in (headers or {}).items()}


def _message(exc: GithubException) -> str:
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("message") or exc.message or "")
    details = [str(e.get("message") or e.get("code")) for e in data.get("errors") or [] if isinstance(e, dict)]
    return "; ".join([message, *details]) if details else message


def _translated(exc: GithubException, what: str) -> Exception:
    message = _message(exc)
    if exc.status == 401:
        return CodeHostAuthFailed(
            f"GitHub refused the credentials on {what} (401 {message or 'Unauthorized'}): check "
            "AUTOFIX_GITHUB_TOKEN, or github_app's app_id, installation_id and private key"
        )
    if exc.status >= 500:
        return CodeHostUnavailable(f"GitHub failed on {what}: {exc.status} {message}")
    return CodeHostRefused(exc.status, message, f"GitHub refused {what}")
