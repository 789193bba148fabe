"""SentryClient: the SentryAPI port on Sentry's REST API (httpx), for `autofix pull`.

Endpoints (docs.sentry.io/api): GET /api/0/projects/{org}/{project}/ (the project's numeric id),
GET /api/0/organizations/{org}/issues/?project=ID&query=...&sort=...&limit=...&cursor=... (a page of
issues; `query` defaults to is:unresolved), GET /api/0/organizations/{org}/issues/{id}/events/
{latest|recommended|oldest}/ (one event, in the API's `entries` shape). Authentication is a bearer
token (AUTOFIX_SENTRY_API_TOKEN).

Pagination follows the Link header: `<url>; rel="next"; results="true"; cursor="0:100:0"`; a next
link with results="false" is the end. Rate limits: a 429 is retried after its Retry-After (seconds or
an HTTP date), else until X-Sentry-Rate-Limit-Reset (UTC epoch seconds), else with exponential
backoff; when a response says X-Sentry-Rate-Limit-Remaining: 0, the next request waits for the
reset instead of being refused. Transport errors and 5xx are retried the same way. httpx's errors
are translated here, once: past the retries SentryUnavailable (transient); 401 and 403 ConfigError
(the token); 404 NotFound; other 4xx InvalidInput.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from pipeline.errors import ConfigError, InvalidInput, NotFound, SentryUnavailable
from pipeline.ports import ApiEvent, EventChoice, IssuePage, SentryIssue
from pipeline.records import ErrorEvent
from pipeline.settings import Settings
from pipeline.sources import parse_api_event
from pipeline.sources._fields import parse_timestamp

log = structlog.get_logger(__name__)

MAX_WAIT_S = 120.0  # never sleep longer than this for one rate-limit window


class SentryClient:
    def __init__(
        self, base_url: str, org: str, token: str, *, transport: httpx.BaseTransport | None = None,
        timeout_s: float = 30.0, max_attempts: int = 5, backoff_s: float = 1.0,
        sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.time,
    ) -> None:
        self.org = org
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/0/",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json",
                     "User-Agent": "autofix (sentry pull)"},
            timeout=timeout_s, transport=transport,
        )
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._clock = clock
        self._not_before = 0.0  # epoch seconds: the window is spent until then
        self._project_ids: dict[str, str] = {}

    @classmethod
    def from_settings(cls, settings: Settings, org: str | None = None) -> SentryClient:
        token = settings.sentry_api_token
        if not settings.sentry_url or token is None:
            raise ConfigError("the Sentry API needs AUTOFIX_SENTRY_URL and AUTOFIX_SENTRY_API_TOKEN")
        org = org or settings.sentry_org
        if not org:
            raise ConfigError("no Sentry organization: give ORG/PROJECT or set AUTOFIX_SENTRY_ORG")
        return cls(settings.sentry_url, org, token.get_secret_value())

    def close(self) -> None:
        self._http.close()

    # --- the port --------------------------------------------------------------------------------

    def issues(
        self, project: str, *, query: str = "is:unresolved", sort: str = "date", cursor: str | None = None,
        per_page: int = 100,
    ) -> IssuePage:
        params: dict[str, Any] = {"project": self.project_id(project), "query": query, "sort": sort,
                                  "limit": per_page}
        if cursor:
            params["cursor"] = cursor
        response = self._get(f"organizations/{self.org}/issues/", params)
        rows = _json(response)
        if not isinstance(rows, list):
            raise InvalidInput(str(response.url), "the issue list is not a JSON list")
        return IssuePage(tuple(_issue(row, project) for row in rows if isinstance(row, Mapping)),
                         _next_cursor(response))

    def issue_event(self, issue_id: str, which: EventChoice = "recommended") -> ApiEvent:
        response = self._get(f"organizations/{self.org}/issues/{issue_id}/events/{which}/")
        payload = _json(response)
        if not isinstance(payload, Mapping):
            raise InvalidInput(str(response.url), "the event is not a JSON object")
        return ApiEvent(issue_id=str(issue_id), body=response.content, payload=payload)

    # --- conveniences ------------------------------------------------------------------------------

    def project_id(self, project: str) -> str:
        """The numeric id the issues endpoint filters on; a numeric `project` is taken as one."""
        if project.isdigit():
            return project
        if project not in self._project_ids:
            body = _json(self._get(f"projects/{self.org}/{project}/"))
            if not isinstance(body, Mapping) or body.get("id") is None:
                raise InvalidInput(f"project {project}", "the API's project has no id")
            self._project_ids[project] = str(body["id"])
        return self._project_ids[project]

    def latest_event(self, issue_id: str) -> ErrorEvent:
        return self._event(issue_id, "latest")

    def recommended_event(self, issue_id: str) -> ErrorEvent:
        return self._event(issue_id, "recommended")

    def _event(self, issue_id: str, which: EventChoice) -> ErrorEvent:
        fetched = self.issue_event(issue_id, which)
        return parse_api_event(fetched.payload, f"Sentry issue {issue_id} {which} event",
                               sentry_issue_id=fetched.issue_id)

    # --- requests --------------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> httpx.Response:
        last = "no attempt"
        for attempt in range(self._max_attempts):
            self._wait_for_window()
            try:
                response = self._http.get(path, params=params)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
                self._pause(self._backoff(attempt), "sentry_api.transport_error", path, last)
                continue
            self._note_limits(response.headers)
            status = response.status_code
            if status == 429:
                last = "429 rate limited"
                self._pause(self._retry_delay(response, attempt), "sentry_api.rate_limited", path, last)
                continue
            if status >= 500:
                last = f"{status} {_detail(response)}"
                self._pause(self._backoff(attempt), "sentry_api.server_error", path, last)
                continue
            if status in (401, 403):
                raise ConfigError(f"the Sentry API refused the token ({status}) for {path}: {_detail(response)}")
            if status == 404:
                raise NotFound(f"Sentry API {path}", f"404: {_detail(response)}")
            if status >= 400:
                raise InvalidInput(f"Sentry API {path}", f"{status}: {_detail(response)}")
            return response
        raise SentryUnavailable(f"Sentry API {path}: gave up after {self._max_attempts} attempts ({last})")

    def _pause(self, seconds: float, event: str, path: str, why: str) -> None:
        log.warning(event, path=path, wait_s=round(seconds, 2), error=why)
        self._sleep(seconds)

    def _backoff(self, attempt: int) -> float:
        return float(min(self._backoff_s * 2**attempt, MAX_WAIT_S))

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float:
        retry_after = response.headers.get("retry-after")
        if retry_after:
            seconds = _seconds_from(retry_after, self._clock())
            if seconds is not None:
                return min(max(seconds, 0.0), MAX_WAIT_S)
        reset = _float(response.headers.get("x-sentry-rate-limit-reset"))
        if reset is not None and reset > self._clock():
            return min(reset - self._clock(), MAX_WAIT_S)
        return self._backoff(attempt)

    def _note_limits(self, headers: httpx.Headers) -> None:
        remaining = _float(headers.get("x-sentry-rate-limit-remaining"))
        reset = _float(headers.get("x-sentry-rate-limit-reset"))
        if remaining is not None and remaining <= 0 and reset is not None:
            self._not_before = reset

    def _wait_for_window(self) -> None:
        wait = self._not_before - self._clock()
        if wait > 0:
            self._pause(min(wait, MAX_WAIT_S), "sentry_api.window_spent", "-", "X-Sentry-Rate-Limit-Remaining: 0")
        self._not_before = 0.0


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise InvalidInput(str(response.url), f"the API answered {response.status_code} with non-JSON") from exc


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", body))[:200] if isinstance(body, Mapping) else str(body)[:200]


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _seconds_from(retry_after: str, now: float) -> float | None:
    seconds = _float(retry_after)
    if seconds is not None:
        return seconds
    try:
        return parsedate_to_datetime(retry_after).timestamp() - now
    except (TypeError, ValueError):
        return None


def _next_cursor(response: httpx.Response) -> str | None:
    link = response.links.get("next")
    if not link or link.get("results") != "true":
        return None
    return link.get("cursor") or httpx.URL(link.get("url", "")).params.get("cursor")


def _issue(row: Mapping[str, Any], project: str) -> SentryIssue:
    project_info = row.get("project")
    slug = project_info.get("slug") if isinstance(project_info, Mapping) else None
    return SentryIssue(
        id=str(row.get("id", "")),
        short_id=str(row.get("shortId", "")),
        title=str(row.get("title", "")),
        culprit=str(row.get("culprit") or ""),
        status=str(row.get("status", "unresolved")),
        project=str(slug or project),
        count=int(row["count"]) if str(row.get("count", "")).isdigit() else 0,
        permalink=row.get("permalink") if isinstance(row.get("permalink"), str) else None,
        first_seen=_when(row.get("firstSeen")),
        last_seen=_when(row.get("lastSeen")),
    )


def _when(value: Any) -> Any:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None
