"""Who may post: an SDK's DSN public key, or a webhook's HMAC signature.

SDKs authenticate the way Sentry's Relay reads it: `X-Sentry-Auth: Sentry sentry_key=<public key>,
sentry_version=7, sentry_client=...` (or the same in `Authorization`), `?sentry_key=` in the query
string, or, for envelopes only, the `dsn` in the envelope header. Two of the first kinds at once is
refused, as Relay does. A DSN public key is not a secret (browsers ship it), so it identifies the
sender and the project rather than proving anything; unknown keys get 403.

Webhooks carry a hex HMAC-SHA256 of the raw body, keyed with a shared secret, compared in constant
time over the exact bytes received.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from pipeline.web.refusal import Refused


@dataclass(frozen=True)
class SdkAuth:
    sentry_key: str
    client: str | None = None  # "sentry.python/2.75.0"


def _pairs(text: str) -> dict[str, str]:
    pairs = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            pairs[name.strip()] = value.strip()
    return pairs


def _from_header(value: str) -> SdkAuth:
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "sentry":
        raise Refused(401, "bad x-sentry-auth header: expected 'Sentry sentry_key=...'")
    pairs = _pairs(rest)
    key = pairs.get("sentry_key")
    if not key:
        raise Refused(401, "bad x-sentry-auth header: no sentry_key")
    return SdkAuth(key, pairs.get("sentry_client"))


def header_auth(headers: Mapping[str, str], query: str) -> SdkAuth | None:
    """Credentials in the headers or the query string; None when there are none; 401 when several."""
    found: list[SdkAuth] = []
    header = headers.get("x-sentry-auth")
    if header:
        found.append(_from_header(header))
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("sentry "):
        found.append(_from_header(authorization))
    if "sentry_" in query:
        params = dict(parse_qsl(query))
        if params.get("sentry_key"):
            found.append(SdkAuth(params["sentry_key"], params.get("sentry_client")))
    if len(found) > 1:
        raise Refused(401, "multiple authorization payloads detected")
    return found[0] if found else None


def sdk_auth(headers: Mapping[str, str], query: str, envelope_dsn: str | None = None) -> SdkAuth:
    """The request's credentials, from wherever the SDK put them; 401 when none or several."""
    found = header_auth(headers, query)
    if found is not None:
        return found
    if envelope_dsn:
        key = urlsplit(envelope_dsn).username
        if key:
            return SdkAuth(key)
        raise Refused(401, "bad envelope authentication header: the dsn has no public key")
    raise Refused(401, "missing authorization information")


def check_key(auth: SdkAuth, accepted: frozenset[str]) -> None:
    if not accepted:
        raise Refused(403, "event submission rejected: no DSN keys are configured (AUTOFIX_SENTRY_DSN_KEYS)")
    # Public keys, so a set lookup (not a constant-time compare) gives nothing away.
    if auth.sentry_key not in accepted:
        raise Refused(403, "event submission rejected: unknown sentry_key")


def signature_of(body: bytes, secret: str) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(body: bytes, secret: str, given: str | None) -> bool:
    if not given:
        return False
    expected = signature_of(body, secret).encode()
    # Header values arrive as latin-1 text; compare bytes so a non-ASCII value is simply unequal.
    return hmac.compare_digest(expected, given.strip().lower().encode("latin-1", "replace"))
