"""Scrubbing: secrets and personal data out of an event before it reaches a model, a page or the store.

Two rules. A value under a key that names a secret (password, token, cookie, dsn, authorization...)
is replaced whole, whatever its shape: so are request headers, whether sent as an object or as
[name, value] pairs. In every other string, known secret and PII shapes (passwords inside URLs,
`Authorization:` and `Cookie:` header lines, private key blocks, JWTs, bearer tokens, AWS and GitHub
keys, `key=value` credentials, emails, Luhn-valid card numbers, IPv4 addresses) become markers like
"[Filtered:email]". Markers match no rule, so scrubbing twice
changes nothing. Source lines (context_line, pre/post_context) are code from the repository and
are left as they are: the repository is what gets patched, and patches must apply to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipeline.records import ErrorEvent, ExceptionInfo, Frame

SECRET_MARKER = "[Filtered:secret]"

# Keys compared after lower-casing and dropping "-" and "_": "X-Auth-Token" -> "xauthtoken".
_SECRET_KEY = re.compile(
    r"pass(word|wd)?$|^pw?d$|secret|token|apikey|authori[sz]ation|^auth|auth$|cookie|session|csrf|xsrf"
    r"|^dsn$|privatekey|creditcard|cardnumber|^ccnum|^cvv|^cvc|^ssn$|signature|credentials?$"
)
_CODE_KEYS = frozenset({"context_line", "pre_context", "post_context", "context"})

# Card numbers start with 2-6 (Mastercard, Amex, Visa, Discover...); this spares most epoch times.
_CARD_CANDIDATE = re.compile(r"(?<![\d.])[2-6](?:[ -]?\d){12,18}(?!\d|\.\d)")
# scheme://user:password@host: the password goes, the user and host stay (markers contain no "@").
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s/?#@:]*):(?!\[Filtered)[^\s/?#@]*@")
# "Authorization: Basic dXNl...", "'Cookie': 'sid=...; theme=dark'": the whole value, to the quote or
# the end of the line, since header values have spaces and several parts.
_HEADER_LINE = re.compile(
    r"(?im)\b((?:proxy-)?authorization|(?:set-)?cookie)(['\"]?\s*[:=]\s*+)(['\"]?+)(?!\[Filtered)([^'\"\r\n]+)"
)
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "private_key",
        re.compile(r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:.*?-----END[A-Z ]*PRIVATE KEY-----|.*)", re.DOTALL),
    ),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")),
    ("bearer", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*")),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b")),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b")),
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")),
    (
        "ip",
        re.compile(
            r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
        ),
    ),
)
# "password=hunter2", "api_key: abc" inside free text: keep the key, drop the value.
_KEY_VALUE = re.compile(
    r"(?i)\b(?P<key>[\w-]*(?:password|passwd|secret|token|api[_-]?key|apikey|sessionid|csrf[\w-]*|auth)"
    r"['\"]?\s*[=:]\s*['\"]?)(?P<value>(?!\[Filtered)[^\s&'\",;}]+)"
)


def scrub_event(event: ErrorEvent) -> ErrorEvent:
    """The event with secrets and PII replaced by markers; scrubbing twice changes nothing."""
    return replace(
        event,
        exceptions=tuple(_scrub_exception(e) for e in event.exceptions),
        message=scrub_text(event.message) if event.message is not None else None,
        tags={k: (SECRET_MARKER if is_secret_key(k) else scrub_text(v)) for k, v in event.tags.items()},
        url=scrub_url(event.url) if event.url is not None else None,
        raw=scrub_value(event.raw),
    )


@lru_cache(maxsize=4096)  # keys repeat across events; the cache is bounded, the answer pure
def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key.lower().replace("-", "").replace("_", "")))


# Every rule below needs one of these to match at all (":" for URLs, headers and key=value, "@" for
# emails, a digit for IPs and cards...): text with none of them is returned as it is, unscanned.
_MAYBE_SECRET = re.compile(
    r"(?i)[@=:\d]|-----begin|eyj|bearer|a[sk]ia|agpa|aida|aroa|anpa|anva|aipa|gh[pousr]_|github_pat_|cookie|authori[sz]"
)


# A text each pattern needs in order to match at all, found in one scan of the lower-cased text;
# the regular expressions then run only for the kinds it could be. Most strings need few or none.
_NEEDLE_KIND = {"-----begin": "private_key", "eyj": "jwt", "bearer": "bearer", "gh": "github_token",
                "github_pat_": "github_token", "@": "email", ".": "ip", "://": "url_password",
                "cookie": "header", "authoriz": "header", "authoris": "header", "=": "key_value",
                ":": "key_value", **dict.fromkeys(("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa"),
                                                  "aws_key")}
_NEEDLES = re.compile("|".join(re.escape(n) for n in sorted(_NEEDLE_KIND, key=len, reverse=True)))
_DIGIT = re.compile(r"\d")


def scrub_text(text: str) -> str:
    if not _MAYBE_SECRET.search(text):
        return text
    kinds = {_NEEDLE_KIND[needle] for needle in _NEEDLES.findall(text.lower())}
    if "url_password" in kinds:  # before emails: user:password@host
        text = _URL_PASSWORD.sub(lambda m: f"{m[1]}:{SECRET_MARKER}@", text)
    for kind, pattern in _PATTERNS:
        if kind in kinds:
            text = pattern.sub(f"[Filtered:{kind}]", text)
    if "header" in kinds:  # after bearer
        text = _HEADER_LINE.sub(lambda m: f"{m[1]}{m[2]}{m[3]}{SECRET_MARKER}", text)
    if "key_value" in kinds:
        text = _KEY_VALUE.sub(lambda m: m["key"] + SECRET_MARKER, text)
    return _CARD_CANDIDATE.sub(_mask_card, text) if _DIGIT.search(text) else text


def scrub_url(url: str) -> str:
    """Query parameters named like secrets lose their values; the rest of the URL is scrubbed as text."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    # Values are scrubbed decoded: "jane%40example.com" hides an email from the text patterns.
    scrubbed = [(k, SECRET_MARKER if is_secret_key(k) else scrub_text(v)) for k, v in pairs]
    if scrubbed != pairs:
        url = urlunsplit(parts._replace(query=urlencode(scrubbed, safe="[]:")))
    return scrub_text(url)


def scrub_value(value: Any, key: str | None = None) -> Any:
    """Recursively scrub JSON-like data (frame vars, raw payloads)."""
    if key is not None and is_secret_key(key) and not _holds_nothing(value):
        return SECRET_MARKER
    if key in _CODE_KEYS:
        return value
    if isinstance(value, str):
        return scrub_url(value) if key == "url" else scrub_text(value)
    if isinstance(value, Mapping):
        return {k: scrub_value(v, k if isinstance(k, str) else None) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub_item(item) for item in value]
    return value


# Values with nothing to hide, as Python or as the repr strings sentry-sdk sends: a form's unsigned
# `{"Signature1": None}` stays replayable.
_EMPTY_REPRS = frozenset({"None", "True", "False", "''", '""', ""})


def _holds_nothing(value: Any) -> bool:
    return value is None or isinstance(value, bool) or (isinstance(value, str) and value in _EMPTY_REPRS)


def _scrub_item(item: Any) -> Any:
    # Headers, tags and query strings often come as [name, value] pairs: judge the value by the name.
    if (
        isinstance(item, (list, tuple))
        and len(item) == 2
        and isinstance(item[0], str)
        and is_secret_key(item[0])
    ):
        return [item[0], SECRET_MARKER]
    return scrub_value(item)


def _scrub_exception(exc: ExceptionInfo) -> ExceptionInfo:
    return replace(exc, value=scrub_text(exc.value), frames=tuple(_scrub_frame(f) for f in exc.frames))


def _scrub_frame(frame: Frame) -> Frame:
    return replace(frame, vars=scrub_value(frame.vars)) if frame.vars else frame


def _mask_card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "[Filtered:card]" if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group()


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0
