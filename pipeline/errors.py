"""The error tree. Each error says by its type whether a retry can succeed.

    AutofixError
    ├── TransientError            a retry may succeed (Celery retries these with backoff)
    │   ├── SandboxRunFailed      the container engine failed a run it had accepted (API error mid-run)
    │   ├── LLMUnavailable        the model endpoint timed out, refused, or rate-limited
    │   ├── StoreUnavailable      the database could not be reached
    │   └── CodeHostUnavailable   the code host timed out, answered 5xx, or is unreachable
    │       └── RateLimited       the code host's rate limit outlasts our bounded wait; carries retry_at
    │   └── SentryUnavailable     the Sentry API timed out, failed, or kept rate-limiting past the retries
    └── PermanentError            retrying the same input fails the same way
        ├── InvalidInput          a payload or file is malformed; carries where and why
        │   └── NotFound          what was asked for does not exist (a 404 from an API)
        ├── UnsupportedEvent      well-formed, but nothing autofix can work with
        ├── PatchDoesNotApply     a patch does not apply to the checkout it was made for
        ├── ConfigError           settings are missing or contradictory
        │   ├── SandboxUnavailable  the chosen sandbox backend cannot run here (not installed, no
        │                           engine answers, no image); fixing it takes a person, not a retry
        │   └── CodeHostAuthFailed  the code host refused our credentials (401)
        ├── CodeHostRefused       the code host refused a request for good (403, 404, 422)
        └── SandboxEscape         the sandbox self-test found isolation broken

A failing test is a Verification, never an exception. Errors from the libraries underneath are
translated exactly once, at the edge that calls them, with ``raise ... from exc``.
"""

from __future__ import annotations

from datetime import datetime


class AutofixError(Exception):
    """Base of every error autofix raises on purpose."""


class TransientError(AutofixError):
    pass


class SandboxRunFailed(TransientError):
    pass


class LLMUnavailable(TransientError):
    pass


class StoreUnavailable(TransientError):
    pass


class CodeHostUnavailable(TransientError):
    pass


class RateLimited(CodeHostUnavailable):
    """Rate limited for longer than we wait in-process; `retry_at` says when a retry can succeed."""

    def __init__(self, message: str, retry_at: datetime) -> None:
        super().__init__(f"{message} (retry after {retry_at.isoformat(timespec='seconds')})")
        self.retry_at = retry_at


class SentryUnavailable(TransientError):
    pass


class PermanentError(AutofixError):
    pass


class InvalidInput(PermanentError):
    """Malformed input. ``source`` names the file or request, ``reason`` says what is wrong."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class NotFound(InvalidInput):
    pass


class UnsupportedEvent(PermanentError):
    pass


class PatchDoesNotApply(PermanentError):
    pass


class ConfigError(PermanentError):
    pass


class SandboxUnavailable(ConfigError):
    pass


class SandboxEscape(PermanentError):
    pass


class CodeHostAuthFailed(ConfigError):
    pass


class CodeHostRefused(PermanentError):
    """`status` is the HTTP status; `message` the host's own words (GitHub's "message" field)."""

    def __init__(self, status: int, message: str, what: str) -> None:
        super().__init__(f"{what}: {status} {message}")
        self.status = status
        self.message = message
