"""Reviewer accounts, API tokens and the audit log of decisions: records, hashing, the port.

Passwords are stored as scrypt hashes (hashlib, RFC 7914; n=2**14, r=8, p=1, 16-byte salt) in the
self-describing form `scrypt$n$r$p$salt$hash`, compared in constant time. API tokens are 32 random
bytes shown once (`afx_<id>_<secret>`); only the SHA-256 of the secret is stored: a token carries
256 bits of entropy, so a slow hash adds nothing, and the lookup is by its public id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from pipeline.records import utcnow

_N, _R, _P = 2**14, 8, 1
TOKEN_PREFIX = "afx_"
MIN_PASSWORD = 8

AuditAction = Literal["approved", "rejected", "retried", "approve_failed"]
Via = Literal["ui", "api", "cli"]


@dataclass(frozen=True)
class Reviewer:
    name: str
    password_hash: str
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class ApiToken:
    id: str  # public part, used to find the row
    name: str  # whom or what it was made for
    secret_hash: str  # sha256 hex of the secret part
    created_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class AuditEntry:
    """One decision: who (a reviewer or a token's name), what, on which candidate, when, from where."""

    candidate_id: str
    actor: str
    action: AuditAction
    via: Via
    client: str = ""  # the client address for ui/api; the host user for cli
    detail: str = ""  # the reason, the hint, the PR link, or why approving failed
    at: datetime = field(default_factory=utcnow)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(password.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(got, expected)


def dummy_verify(password: str) -> None:
    """Spend the time a real check takes, so an unknown name answers as slowly as a wrong password."""
    verify_password(password, _DUMMY)


def new_token(name: str) -> tuple[str, ApiToken]:
    """(the token to show once, the record to store)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}{token_id}_{secret}", ApiToken(token_id, name, _sha256(secret))


def parse_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    token_id, sep, secret = token[len(TOKEN_PREFIX):].partition("_")
    return (token_id, secret) if sep and token_id and secret else None


def token_matches(secret: str, record: ApiToken) -> bool:
    return hmac.compare_digest(_sha256(secret), record.secret_hash)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode(), validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError("not base64") from exc


_DUMMY = f"scrypt${_N}${_R}${_P}${_b64(b'0' * 16)}${_b64(b'0' * 32)}"


class Accounts(Protocol):
    """Where reviewers, tokens and the audit log are kept (SqlStore implements it)."""

    def save_reviewer(self, reviewer: Reviewer) -> None:
        """Insert or replace (a new password) the reviewer of that name."""
        ...

    def get_reviewer(self, name: str) -> Reviewer | None: ...
    def save_token(self, token: ApiToken) -> None: ...
    def get_token(self, token_id: str) -> ApiToken | None: ...
    def add_audit(self, entry: AuditEntry) -> None: ...
    def audit_for(self, candidate_id: str) -> list[AuditEntry]:
        """The candidate's audit entries, oldest first."""
        ...

    def candidate_ids_with_prefix(self, prefix: str, limit: int = 10) -> Sequence[str]: ...
