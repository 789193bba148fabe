"""Pure parts of ingestion: the edge's envelope checks, repairs (NULs, timestamps), Sentry's issue,
service-hook and legacy webhook shapes, body decoding within limits, and the new scrubbing rules."""

from __future__ import annotations

import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import brotli
import pytest

from pipeline.errors import InvalidInput
from pipeline.records import ErrorEvent
from pipeline.scrub import scrub_text, scrub_value
from pipeline.sources import parse_event
from pipeline.sources.envelope import accept_envelope, accept_event, normalize_event_id, split_envelope
from pipeline.sources.sanitize import fix_timestamps, repair, strip_nul
from pipeline.sources.webhooks import (
    IssueChange,
    parse_issue_change,
    parse_legacy_webhook,
    parse_service_hook,
)
from pipeline.web.body import decode
from pipeline.web.refusal import Refused
from pipeline.web.sentry_auth import sdk_auth, signature_matches, signature_of

DATA = Path(__file__).resolve().parent / "data"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


# --- envelopes at the edge -----------------------------------------------------------------------


def test_a_recorded_envelope_is_accepted_with_its_event_id() -> None:
    recorded = (DATA / "event_attribute_error.envelope").read_bytes()
    accepted = accept_envelope(recorded)
    assert accepted.events == 1 and accepted.event_id == json.loads(recorded.split(b"\n")[0])["event_id"]
    assert accepted.dsn is None  # sentry-python sends its key in X-Sentry-Auth, not in the envelope
    with_dsn = b'{"dsn": "https://abc@o1.ingest.sentry.io/1"}\n' + recorded.split(b"\n", 1)[1]
    assert accept_envelope(with_dsn).dsn == "https://abc@o1.ingest.sentry.io/1"


def test_an_event_id_in_any_uuid_spelling_becomes_32_hex_digits() -> None:
    hex_id = uuid.uuid4().hex
    for spelling in (hex_id, hex_id.upper(), str(uuid.UUID(hex_id)), "{" + str(uuid.UUID(hex_id)) + "}"):
        assert normalize_event_id(spelling) == hex_id
    assert normalize_event_id("abc") is None and normalize_event_id(42) is None
    event = parse_event({"event_id": str(uuid.UUID(hex_id)), "message": "x"})
    assert event.id == hex_id


def test_an_envelope_whose_item_id_contradicts_its_header_is_refused() -> None:
    body = (json.dumps({"event_id": uuid.uuid4().hex}) + "\n" + '{"type":"event"}\n'
            + json.dumps({"event_id": uuid.uuid4().hex, "message": "x"}) + "\n").encode()
    with pytest.raises(InvalidInput, match="differs from the envelope's"):
        accept_envelope(body)


def test_an_item_length_must_be_a_byte_count() -> None:
    with pytest.raises(InvalidInput, match="has length '3', expected a byte count"):
        split_envelope(b'{}\n{"type":"event","length":"3"}\nabc\n')


def test_the_store_body_must_be_an_event_object() -> None:
    assert accept_event(b'{"message": "x"}').event_id is None
    with pytest.raises(InvalidInput, match="none of exception"):
        accept_event(b'{"extra": {}}')


# --- repairs -------------------------------------------------------------------------------------


def test_nul_characters_in_keys_and_strings_become_replacement_characters() -> None:
    clean, count = strip_nul({"a\x00": ["x\x00y", {"b": "\x00"}], "n": 1, "ok": "fine"})
    assert clean == {"a\ufffd": ["x\ufffdy", {"b": "\ufffd"}], "n": 1, "ok": "fine"} and count == 3


@pytest.mark.parametrize(("value", "why"), [
    (1e300, "is out of range"), ("9999-01-01T00:00:00Z", "is in the future"), (-5, "is before 2000"),
    ("soon", "is not a timestamp"), ("1e400", "is out of range"),
])
def test_absurd_timestamps_are_dropped_with_a_note(value: Any, why: str) -> None:
    event: dict[str, Any] = {"timestamp": value, "message": "x"}
    (note,) = fix_timestamps(event, NOW)
    assert why in note and "timestamp" not in event


def test_sane_timestamps_and_a_little_clock_drift_are_kept() -> None:
    event: dict[str, Any] = {"timestamp": NOW.timestamp() + 30, "datetime": "2020-01-01T00:00:00Z"}
    assert fix_timestamps(event, NOW) == [] and set(event) == {"timestamp", "datetime"}


def test_repair_looks_for_events_at_the_given_paths_only() -> None:
    document = {"data": {"error": {"timestamp": -1}}, "timestamp": -1}
    clean, notes = repair(document, (("data", "error"),), NOW)
    assert clean == {"data": {"error": {}}, "timestamp": -1} and len(notes) == 1


# --- webhook shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize(("action", "status", "expected"), [
    ("created", None, "unresolved"), ("resolved", None, "resolved"), ("archived", None, "ignored"),
    ("ignored", None, "ignored"), ("unresolved", None, "unresolved"), ("assigned", None, None),
    ("assigned", "resolved", "resolved"), ("issue.created", None, "unresolved"),
])
def test_an_issue_change_says_the_state_after_the_action(action: str, status: str | None,
                                                        expected: str | None) -> None:
    issue: dict[str, Any] = {"id": 12, "project": {"id": "1", "slug": "shop"}, "title": "KeyError: 'x'"}
    if status:
        issue["status"] = status
    change = parse_issue_change({"action": action, "data": {"issue": issue}})
    assert change == IssueChange(action.removeprefix("issue."), "12", expected, "shop", "KeyError: 'x'")


def test_a_service_hook_event_is_read_as_the_apis_event_with_its_group() -> None:
    event = json.loads((DATA / "api_event_chained_from.json").read_text())
    parsed = parse_service_hook({"project": {"slug": "shop"}, "group": {"id": "77"}, "event": event})
    assert isinstance(parsed, ErrorEvent) and parsed.sentry_issue_id == "77" and parsed.project == "shop"


def test_a_legacy_webhook_is_read_as_its_event_with_the_issue_id_and_project() -> None:
    event = json.loads((DATA / "event_attribute_error.json").read_text())
    parsed = parse_legacy_webhook({"id": 555, "project": "shop", "event": event})
    assert parsed.sentry_issue_id == "555" and parsed.project == "shop" and parsed.source == "sentry-webhook"
    assert parsed.id == event["event_id"]


def test_webhook_inner_events_carry_their_issue_id_and_numeric_project() -> None:
    from pipeline.sources import parse_webhook

    payload = json.loads((DATA / "webhook_event_alert.json").read_text())
    payload["data"]["event"]["project"] = 11
    event = parse_webhook(payload)
    assert event.sentry_issue_id == "4504082601" and event.project == "11"


# --- bodies and credentials ----------------------------------------------------------------------

DATA_BYTES = json.dumps({"k": "v" * 5000}).encode()


@pytest.mark.parametrize(("encoding", "encode"), [
    ("gzip", gzip.compress), ("x-gzip", gzip.compress), ("deflate", zlib.compress), ("br", brotli.compress),
    ("identity", lambda b: b), (None, lambda b: b), ("gzip, br", lambda b: brotli.compress(gzip.compress(b))),
])
def test_each_accepted_encoding_decodes_within_the_limit(encoding: str | None, encode: Any) -> None:
    assert decode(encode(DATA_BYTES), encoding, len(DATA_BYTES)) == DATA_BYTES
    with pytest.raises(Refused) as refused:
        decode(encode(DATA_BYTES), encoding, len(DATA_BYTES) - 1)
    assert refused.value.status == 413


def test_two_gzip_members_back_to_back_decode_as_one_body() -> None:
    assert decode(gzip.compress(b"ab") + gzip.compress(b"cd"), "gzip", 10) == b"abcd"


def test_a_bomb_is_stopped_at_the_limit_without_expanding_it() -> None:
    bomb = gzip.compress(b"\0" * 100_000_000)
    with pytest.raises(Refused, match="over the limit of 1000000"):
        decode(bomb, "gzip", 1_000_000)


def test_credentials_are_read_from_the_header_the_query_or_the_envelope() -> None:
    assert sdk_auth({"x-sentry-auth": "Sentry sentry_version=7, sentry_key=abc, sentry_client=py/2"}, "").sentry_key == "abc"
    assert sdk_auth({"authorization": "Sentry sentry_key=abc"}, "").sentry_key == "abc"
    assert sdk_auth({}, "sentry_key=abc&sentry_version=7").sentry_key == "abc"
    assert sdk_auth({}, "", "https://abc@o1.ingest.sentry.io/1").sentry_key == "abc"
    with pytest.raises(Refused, match="multiple"):
        sdk_auth({"x-sentry-auth": "Sentry sentry_key=a"}, "sentry_key=b")


def test_signatures_match_only_the_exact_bytes_and_secret() -> None:
    body = "Grüße".encode()
    good = signature_of(body, "s3cret")
    assert signature_matches(body, "s3cret", good) and signature_matches(body, "s3cret", good.upper())
    assert not signature_matches(body + b" ", "s3cret", good)
    assert not signature_matches(body, "other", good)
    assert not signature_matches(body, "s3cret", None) and not signature_matches(body, "s3cret", "\u00fc" * 64)


# --- scrubbing additions -------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("postgres://admin:hunter2@db.internal:5432/shop", "postgres://admin:[Filtered:secret]@db.internal:5432/shop"),
    ("redis://:pw@cache:6379/0", "redis://:[Filtered:secret]@cache:6379/0"),
    ("connect failed: amqp://guest:guest@rabbit//", "connect failed: amqp://guest:[Filtered:secret]@rabbit//"),
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: [Filtered:secret]"),
    ("{'Cookie': 'sessionid=abc; theme=dark', 'Accept': '*/*'}",
     "{'Cookie': '[Filtered:secret]', 'Accept': '*/*'}"),
    ("Set-Cookie: sid=xyz; HttpOnly\nVary: Accept", "Set-Cookie: [Filtered:secret]\nVary: Accept"),
    ("proxy-authorization=Digest abc", "proxy-authorization=[Filtered:secret]"),
])
def test_url_passwords_and_credential_headers_in_text_are_scrubbed(text: str, expected: str) -> None:
    assert scrub_text(text) == expected
    assert scrub_text(expected) == expected  # twice changes nothing


def test_authorization_and_cookie_headers_in_request_data_are_scrubbed_in_every_shape() -> None:
    request = {
        "url": "https://user:pass@shop.example.com/checkout",
        "headers": {"Authorization": "Bearer abc.def", "Cookie": "sid=1", "Accept": "text/html"},
        "cookies": {"theme": "dark"},
        "env": {"HTTP_AUTHORIZATION": "Basic eA=="},
    }
    api_request = {"headers": [["Authorization", "Token xyz"], ["Cookie", "a=b"], ["Host", "shop"]],
                   "cookies": [["theme", "dark"]]}
    scrubbed, api_scrubbed = scrub_value(request), scrub_value(api_request)
    assert scrubbed["url"] == "https://user:[Filtered:secret]@shop.example.com/checkout"
    assert scrubbed["headers"] == {"Authorization": "[Filtered:secret]", "Cookie": "[Filtered:secret]",
                                   "Accept": "text/html"}
    assert scrubbed["cookies"] == "[Filtered:secret]" and scrubbed["env"]["HTTP_AUTHORIZATION"] == "[Filtered:secret]"
    assert api_scrubbed["headers"] == [["Authorization", "[Filtered:secret]"], ["Cookie", "[Filtered:secret]"],
                                       ["Host", "shop"]]
    assert api_scrubbed["cookies"] == "[Filtered:secret]"
