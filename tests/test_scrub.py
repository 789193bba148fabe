"""Secrets and PII out of events: each kind, where it hides, and scrubbing twice changing nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.records import ErrorEvent, ExceptionInfo, Frame
from pipeline.scrub import SECRET_MARKER, luhn_valid, scrub_event, scrub_text, scrub_url, scrub_value
from pipeline.sources.sentry import parse_api_event, parse_event

DATA = Path(__file__).parent / "data"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
GH = "ghp_" + "A1b2C3d4E5" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail jane.doe@example.com now", "mail [Filtered:email] now"),
        ("Authorization: Bearer abcdefghijklmnop", "Authorization: [Filtered:bearer]"),
        ("key AKIAIOSFODNN7EXAMPLE used", "key [Filtered:aws_key] used"),
        (f"clone with {GH}", "clone with [Filtered:github_token]"),
        ("pat github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "pat [Filtered:github_token]"),
        (f"session {JWT}", "session [Filtered:jwt]"),
        (
            "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIB\n-----END RSA PRIVATE KEY----- ok",
            "[Filtered:private_key] ok",
        ),
        ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN (truncated", "[Filtered:private_key]"),
        ("paid with 4111 1111 1111 1111.", "paid with [Filtered:card]."),
        ("paid with 4111-1111-1111-1112", "paid with 4111-1111-1111-1112"),  # fails the Luhn check
        ("from 203.0.113.7 via proxy", "from [Filtered:ip] via proxy"),
        ("login failed: password=hunter2 user=bob", f"login failed: password={SECRET_MARKER} user=bob"),
        ("db_password: 's3cr3t'", f"db_password: '{SECRET_MARKER}'"),
    ],
)
def test_each_secret_kind_in_free_text_becomes_a_marker(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


@pytest.mark.parametrize(
    "text",
    ["version 1.2.3 at ts 1700000000123", "token expired for user 42", "author: bob", "KeyError: 'o-4040'"],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert scrub_text(text) == text


def test_url_query_values_named_like_secrets_and_encoded_emails_are_removed() -> None:
    url = "https://shop.example.com/orders?token=abc123&page=2&email=jane%40example.com"
    assert (
        scrub_url(url)
        == f"https://shop.example.com/orders?token={SECRET_MARKER}&page=2&email=[Filtered:email]"
    )


def test_luhn_check_accepts_real_card_numbers_only() -> None:
    assert luhn_valid("4111111111111111") and luhn_valid("378282246310005")
    assert not luhn_valid("4111111111111112")


def _event_with_vars() -> ErrorEvent:
    frame = Frame(
        function="checkout",
        filename="shop/pay.py",
        context_line='charge(card, email="ops@example.com")',
        vars={
            "password": "'hunter2'",
            "user": {"email": "'jane@example.com'", "name": "'Jane'", "Session-Id": "'abc'"},
            "headers": [["Authorization", "Basic dXNlcjpwYXNz"], ["Accept", "text/html"]],
            "note": f"'sent {GH}'",
            "count": 3,
        },
    )
    return ErrorEvent(
        id="e1",
        source="sentry-event",
        platform="python",
        received_at=datetime(2024, 1, 1, tzinfo=UTC),
        exceptions=(
            ExceptionInfo(
                type="ValueError", value="bad card 4111111111111111 for jane@example.com", frames=(frame,)
            ),
        ),
        tags={"api_key": "k-123", "client_ip": "198.51.100.4", "region": "eu"},
        message="user jane@example.com failed",
        url="https://x.example.com/p?session=zzz",
        raw={"request": {"headers": {"Cookie": "sid=1"}}, "user": {"ip_address": "198.51.100.4"}},
    )


def test_frame_vars_are_scrubbed_recursively_by_key_and_by_content() -> None:
    frame = scrub_event(_event_with_vars()).exceptions[0].frames[0]
    assert frame.vars["password"] == SECRET_MARKER
    assert frame.vars["user"] == {
        "email": "'[Filtered:email]'",
        "name": "'Jane'",
        "Session-Id": SECRET_MARKER,
    }
    assert frame.vars["headers"] == [["Authorization", SECRET_MARKER], ["Accept", "text/html"]]
    assert frame.vars["note"] == "'sent [Filtered:github_token]'" and frame.vars["count"] == 3


def test_exception_values_messages_tags_url_and_raw_are_scrubbed() -> None:
    event = scrub_event(_event_with_vars())
    assert event.exceptions[0].value == "bad card [Filtered:card] for [Filtered:email]"
    assert event.message == "user [Filtered:email] failed"
    assert event.tags == {"api_key": SECRET_MARKER, "client_ip": "[Filtered:ip]", "region": "eu"}
    assert event.url == f"https://x.example.com/p?session={SECRET_MARKER}"
    assert event.raw == {
        "request": {"headers": {"Cookie": SECRET_MARKER}},
        "user": {"ip_address": "[Filtered:ip]"},
    }


def test_source_lines_are_code_and_stay_as_they_are() -> None:
    frame = scrub_event(_event_with_vars()).exceptions[0].frames[0]
    assert frame.context_line == 'charge(card, email="ops@example.com")'


def test_scrubbing_twice_changes_nothing() -> None:
    once = scrub_event(_event_with_vars())
    assert scrub_event(once) == once


@pytest.mark.parametrize("name", ["event_attribute_error.json", "event_chained_from.json"])
def test_recorded_sdk_events_lose_the_email_and_stay_stable(name: str) -> None:
    payload = json.loads((DATA / name).read_text())
    event = scrub_event(parse_event(payload, name))
    dumped = json.dumps(
        [
            event.message,
            event.tags,
            [e.value for e in event.exceptions],
            [f.vars for e in event.exceptions for f in e.frames],
            _without_code(event.raw),
        ]
    )
    assert "jane.doe@example.com" not in dumped
    assert "[Filtered:email]" in dumped
    assert scrub_event(event) == event


def _without_code(value: object) -> object:
    """Drops the source lines, which are repository code and deliberately kept."""
    if isinstance(value, dict):
        return {
            k: _without_code(v)
            for k, v in value.items()
            if k not in ("context_line", "pre_context", "post_context")
        }
    if isinstance(value, list):
        return [_without_code(v) for v in value]
    return value


def test_api_event_request_url_token_is_removed() -> None:
    event = scrub_event(
        parse_api_event(json.loads((DATA / "api_event_chained_from.json").read_text()), "api")
    )
    assert event.url == f"https://shop.example.com/orders/o-1001?token={SECRET_MARKER}"


def test_scrub_returns_a_new_event_and_leaves_the_input_alone() -> None:
    original = _event_with_vars()
    copy = replace(original)
    scrub_event(original)
    assert original == copy


def test_a_secret_key_with_nothing_in_it_keeps_its_value_so_the_frame_stays_replayable() -> None:
    fields = {"Signature1": None, "api_token": "None", "password": "''", "session": True, "secret": "s3cr3t"}
    assert scrub_value(fields) == {"Signature1": None, "api_token": "None", "password": "''", "session": True,
                                   "secret": "[Filtered:secret]"}
