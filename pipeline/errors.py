"""The error tree. Each error says by its type whether a retry can succeed.

    AutofixError
    ├── TransientError            a retry may succeed (Celery retries these with backoff)
    │   ├── SandboxUnavailable    the container engine / bubblewrap could not start a run
    │   ├── LLMUnavailable        the model endpoint timed out, refused, or rate-limited
    │   ├── StoreUnavailable      the database could not be reached
    │   └── SentryUnavailable     the Sentry API timed out, failed, or kept rate-limiting past the retries
    └── PermanentError            retrying the same input fails the same way
        ├── InvalidInput          a payload or file is malformed; carries where and why
        │   └── NotFound          what was asked for does not exist (a 404 from an API)
        ├── UnsupportedEvent      well-formed, but nothing autofix can work with
        ├── PatchDoesNotApply     a patch does not apply to the checkout it was made for
        ├── ConfigError           settings are missing or contradictory
        └── SandboxEscape         the sandbox self-test found isolation broken

A failing test is a Verification, never an exception. Errors from the libraries underneath are
translated exactly once, at the edge that calls them, with ``raise ... from exc``.
"""

from __future__ import annotations


class AutofixError(Exception):
    """Base of every error autofix raises on purpose."""


class TransientError(AutofixError):
    pass


class SandboxUnavailable(TransientError):
    pass


class LLMUnavailable(TransientError):
    pass


class StoreUnavailable(TransientError):
    pass


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


class SandboxEscape(PermanentError):
    pass
