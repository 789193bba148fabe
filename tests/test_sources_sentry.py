"""Sentry shapes -> ErrorEvent, from payloads recorded with the real sentry-sdk (tests/data/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import InvalidInput, UnsupportedEvent
from pipeline.sources import load_path
from pipeline.sources.sentry import parse_api_event, parse_envelope, parse_event, parse_webhook

DATA = Path(__file__).parent / "data"


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / name).read_text())
    return loaded


def test_sdk_event_keeps_frames_locals_and_metadata() -> None:
    payload = fixture("event_attribute_error.json")
    event = parse_event(payload, "test")
    assert event.id == payload["event_id"]
    assert event.source == "sentry-event"
    assert (event.platform, event.release, event.environment) == ("python", "shop@1.4.2", "production")
    assert event.tags["order_id"] == "o-1001"
    assert event.timestamp is not None and event.timestamp.tzinfo is not None
    assert event.primary is not None and event.primary.type == "AttributeError"
    crash = event.crash_frame()
    assert crash is not None
    assert (crash.function, crash.module, crash.filename) == (
        "customer_name",
        "fixture_app",
        "fixture_app.py",
    )
    assert crash.context_line is not None and "customer.name" in crash.context_line
    assert isinstance(crash.lineno, int) and crash.pre_context and crash.in_app
    assert crash.vars["customer"] == "None"
    assert event.raw is payload


def test_explicit_chain_keeps_the_cause_first_and_the_escaping_exception_last() -> None:
    event = parse_event(fixture("event_chained_from.json"), "test")
    assert [e.qualified_type for e in event.exceptions] == ["KeyError", "fixture_app.OrderNotFound"]
    assert event.primary is not None and "o-4040" in event.primary.value


def test_implicit_chain_keeps_the_handled_exception_first() -> None:
    event = parse_event(fixture("event_chained_implicit.json"), "test")
    assert [e.qualified_type for e in event.exceptions] == ["json.decoder.JSONDecodeError", "ValueError"]


def test_library_frames_the_sdk_left_unmarked_are_not_in_app() -> None:
    cause = parse_event(fixture("event_chained_implicit.json"), "test").exceptions[0]
    assert [(f.function, f.in_app) for f in cause.frames] == [
        ("parse_quantity", True),
        ("loads", False),
        ("decode", False),
        ("raw_decode", False),
    ]


def test_message_event_keeps_its_message_and_has_no_exceptions() -> None:
    event = parse_event(fixture("event_message.json"), "test")
    assert event.message == "payment 8812 failed for order o-1001"
    assert event.exceptions == ()


def test_logentry_formatted_message_is_preferred() -> None:
    payload = {"event_id": "a" * 32, "logentry": {"message": "user %s failed", "formatted": "user 7 failed"}}
    assert parse_event(payload, "test").message == "user 7 failed"


@pytest.mark.parametrize(
    "name", ["event_attribute_error", "event_chained_from", "event_chained_implicit", "event_message"]
)
def test_envelope_gives_the_same_event_as_its_item_sent_alone(name: str) -> None:
    [from_envelope] = parse_envelope((DATA / f"{name}.envelope").read_bytes(), "test")
    alone = parse_event(fixture(f"{name}.json"), "test")
    assert from_envelope.source == "sentry-envelope"
    assert (from_envelope.id, from_envelope.exceptions, from_envelope.message) == (
        alone.id,
        alone.exceptions,
        alone.message,
    )


def _envelope(*items: tuple[dict[str, Any], bytes], header: bytes = b"{}") -> bytes:
    return b"\n".join([header] + [json.dumps(h).encode() + b"\n" + p for h, p in items]) + b"\n"


def test_envelope_item_without_length_runs_to_the_end_of_its_line() -> None:
    payload = json.dumps({"event_id": "b" * 32, "message": "boom"}).encode()
    data = _envelope(({"type": "session"}, b'{"sid":"x"}'), ({"type": "event"}, payload))
    [event] = parse_envelope(data, "test")
    assert (event.id, event.message) == ("b" * 32, "boom")


def test_envelope_item_length_counts_payload_bytes_even_with_newlines_inside() -> None:
    attachment = b"line one\nline two"
    payload = json.dumps({"message": "boom"}).encode()
    data = _envelope(
        ({"type": "attachment", "length": len(attachment)}, attachment),
        ({"type": "event", "length": len(payload)}, payload),
        header=json.dumps({"event_id": "c" * 32}).encode(),
    )
    [event] = parse_envelope(data, "test")
    assert event.id == "c" * 32  # from the envelope header: the item had none


def test_envelope_event_without_any_id_gets_a_stable_id_from_its_content() -> None:
    data = _envelope(({"type": "event"}, json.dumps({"message": "boom"}).encode()))
    first, second = parse_envelope(data, "a")[0], parse_envelope(data, "b")[0]
    assert first.id == second.id and len(first.id) == 12


def test_envelope_with_only_a_session_has_no_events() -> None:
    assert parse_envelope(_envelope(({"type": "session"}, b'{"sid":"x"}')), "test") == []


def test_envelope_whose_payload_is_shorter_than_its_length_is_invalid() -> None:
    data = b'{}\n{"type":"event","length":500}\n{"message":"boom"}\n'
    with pytest.raises(InvalidInput, match="length 500 but"):
        parse_envelope(data, "test")


def test_envelope_with_a_header_that_is_not_json_is_invalid() -> None:
    with pytest.raises(InvalidInput, match="envelope header is not JSON"):
        parse_envelope(b"not json\n", "test")


def test_api_event_reads_entries_camel_case_frames_and_tag_objects() -> None:
    payload = fixture("api_event_chained_from.json")
    event = parse_api_event(payload, "test")
    sdk_event = parse_event(fixture("event_chained_from.json"), "test")
    assert event.source == "sentry-api"
    assert event.id == sdk_event.id
    assert [e.type for e in event.exceptions] == ["KeyError", "OrderNotFound"]
    assert event.tags["order_id"] == "o-1001" and event.environment == "production"
    assert event.release == "shop@1.4.2"
    assert event.url == "https://shop.example.com/orders/o-1001?token=abc123"
    api_crash, sdk_crash = event.crash_frame(), sdk_event.crash_frame()
    assert api_crash is not None and sdk_crash is not None
    assert (api_crash.lineno, api_crash.context_line, api_crash.pre_context, api_crash.post_context) == (
        sdk_crash.lineno,
        sdk_crash.context_line,
        sdk_crash.pre_context,
        sdk_crash.post_context,
    )
    assert event.timestamp == sdk_event.timestamp


@pytest.mark.parametrize("name", ["webhook_event_alert.json", "webhook_error_created.json"])
def test_webhook_inner_event_is_parsed_and_raw_keeps_the_whole_webhook(name: str) -> None:
    payload = fixture(name)
    event = parse_webhook(payload, "test")
    assert event.source == "sentry-webhook"
    assert [e.type for e in event.exceptions] == ["KeyError", "OrderNotFound"]
    assert event.tags == {"customer_email": "jane.doe@example.com", "order_id": "o-1001"}
    assert event.raw is payload


def test_webhook_with_float_timestamp_is_read_as_utc() -> None:
    payload = {
        "action": "triggered",
        "data": {"event": {"event_id": "d" * 32, "message": "x", "timestamp": 1700000000.5}},
    }
    assert parse_webhook(payload, "t").timestamp == datetime(2023, 11, 14, 22, 13, 20, 500000, UTC)


def test_issue_webhook_without_an_event_is_unsupported_not_invalid() -> None:
    with pytest.raises(UnsupportedEvent):
        parse_webhook({"action": "created", "data": {"issue": {"id": "1"}}}, "test")


def test_event_with_an_id_but_nothing_to_fix_is_unsupported() -> None:
    with pytest.raises(UnsupportedEvent):
        parse_event({"event_id": "e" * 32, "type": "transaction"}, "test")


def _frames_payload(frame: dict[str, Any]) -> dict[str, Any]:
    frames = [{"function": "ok", "filename": "a.py"}] * 3 + [frame]
    return {"event_id": "f" * 32, "exception": {"values": [{"type": "E", "stacktrace": {"frames": frames}}]}}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "event is a list, expected an object"),
        (
            {"platform": "python"},
            "event has no 'exception' and no 'message' and no event id: not a Sentry event",
        ),
        ({"exception": {"values": "KeyError"}}, "exception.values is a string, expected a list"),
        (
            {"exception": {"values": [{"stacktrace": {}}]}},
            "exception.values[0] has neither 'type' nor 'value'",
        ),
        (
            _frames_payload({"lineno": 3}),
            "exception.values[0].stacktrace.frames[3] has no 'function', 'filename', 'module' or 'abs_path'",
        ),
        (
            _frames_payload({"function": "f", "lineno": "3"}),
            "exception.values[0].stacktrace.frames[3].lineno is a string, expected an integer",
        ),
        (
            _frames_payload({"function": "f", "vars": ["x"]}),
            "exception.values[0].stacktrace.frames[3].vars is a list, expected an object",
        ),
        ({"message": "x", "tags": "a=b"}, "tags is a string, expected an object or a list"),
        ({"message": "x", "tags": [["a"]]}, "tags[0] is a list, expected [key, value] or {key, value}"),
        ({"message": "x", "timestamp": "yesterday"}, "timestamp 'yesterday' is not a timestamp"),
    ],
)
def test_malformed_event_names_what_is_wrong(payload: Any, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_event(payload, "upload.json")
    assert info.value.source == "upload.json"
    assert info.value.reason == reason


def test_load_path_tells_every_recorded_shape_apart() -> None:
    sources = {
        path.name: [e.source for e in load_path(path)]
        for path in sorted(DATA.iterdir())
        if path.suffix in (".json", ".envelope")
    }
    assert sources == {
        "api_event_chained_from.json": ["sentry-api"],
        "event_attribute_error.envelope": ["sentry-envelope"],
        "event_attribute_error.json": ["sentry-event"],
        "event_chained_from.envelope": ["sentry-envelope"],
        "event_chained_from.json": ["sentry-event"],
        "event_chained_implicit.envelope": ["sentry-envelope"],
        "event_chained_implicit.json": ["sentry-event"],
        "event_message.envelope": ["sentry-envelope"],
        "event_message.json": ["sentry-event"],
        "webhook_error_created.json": ["sentry-webhook"],
        "webhook_event_alert.json": ["sentry-webhook"],
    }


def test_load_path_detects_an_envelope_by_content_whatever_its_name(tmp_path: Path) -> None:
    path = tmp_path / "capture.bin"
    path.write_bytes((DATA / "event_chained_from.envelope").read_bytes())
    assert [e.source for e in load_path(path)] == ["sentry-envelope"]


def test_load_path_reads_a_list_of_api_events(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps([fixture("api_event_chained_from.json")] * 2))
    assert [e.source for e in load_path(path)] == ["sentry-api", "sentry-api"]


def test_load_path_refuses_a_json_file_that_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "event.json"
    path.write_text('{"event_id": "abc", ')
    with pytest.raises(InvalidInput) as info:
        load_path(path)
    assert info.value.source == str(path) and info.value.reason.startswith("file is not JSON")


def test_load_path_refuses_a_json_file_of_an_unsupported_shape(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"name": "shop", "debug": true}')
    with pytest.raises(InvalidInput, match="unsupported JSON shape"):
        load_path(path)


def test_load_path_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot be read"):
        load_path(tmp_path / "nope.json")
