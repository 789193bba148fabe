"""Tracebacks in log files -> ErrorEvents; fixtures written by the logging module (tests/data/)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.errors import InvalidInput
from pipeline.sources import load_path
from pipeline.sources.logs import parse_log_file, parse_log_text

DATA = Path(__file__).parent / "data"

CHAINS = [
    ["KeyError", "fixture_app.OrderNotFound"],
    ["json.decoder.JSONDecodeError", "ValueError"],
    ["AttributeError"],
]


def types(path: Path) -> list[list[str]]:
    return [[e.qualified_type for e in event.exceptions] for event in parse_log_file(path) if event.exceptions]


def test_each_traceback_is_one_event_with_its_chain_cause_first_and_the_group_skipped() -> None:
    assert types(DATA / "app.log") == CHAINS


def test_the_record_of_an_unreadable_exception_group_is_kept_as_an_error_message() -> None:
    messages = [e for e in parse_log_file(DATA / "app.log") if not e.exceptions]
    assert [(e.message, e.level, e.logger) for e in messages] == [("batch failed", "error", "shop")]


def test_every_line_behind_its_own_timestamp_prefix_parses_the_same() -> None:
    assert types(DATA / "app_cri.log") == CHAINS
    plain, prefixed = parse_log_file(DATA / "app.log"), parse_log_file(DATA / "app_cri.log")
    assert [e.exceptions for e in plain] == [e.exceptions for e in prefixed]
    assert [(e.message, e.level, e.logger) for e in plain] == [(e.message, e.level, e.logger) for e in prefixed]


def test_frames_carry_file_line_function_and_source_without_carets() -> None:
    explicit = parse_log_file(DATA / "app.log")[0]
    escaping = explicit.exceptions[-1]
    assert escaping.value == "order o-4040 not found for jane.doe@example.com"
    crash = escaping.frames[-1]
    assert (Path(crash.filename).name, crash.lineno, crash.function) == ("fixture_app.py", 29, "fetch_order")
    assert (
        crash.context_line
        == 'raise OrderNotFound(f"order {order_id} not found for jane.doe@example.com") from exc'
    )
    assert all(f.context_line and "^" not in f.context_line for e in explicit.exceptions for f in e.frames)


def test_standard_library_frames_are_not_in_app() -> None:
    cause = parse_log_file(DATA / "app.log")[1].exceptions[0]
    assert [f.in_app for f in cause.frames] == [True, False, False, False]


def test_events_are_log_python_events_with_the_record_timestamp() -> None:
    events = parse_log_file(DATA / "app.log")
    assert {(e.source, e.platform) for e in events} == {("log", "python")}
    assert all(e.timestamp is not None and e.timestamp.tzinfo is not None for e in events)
    cri = parse_log_file(DATA / "app_cri.log")
    assert cri[0].timestamp == datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)  # from the runtime's prefix
    assert events[1].raw["text"].splitlines()[0].endswith("parse failed: Traceback (most recent call last):")


def test_event_ids_are_stable_and_distinct() -> None:
    first, second = parse_log_file(DATA / "app.log"), parse_log_file(DATA / "app.log")
    assert [e.id for e in first] == [e.id for e in second]
    assert len({e.id for e in first}) == 4


TEXT = b"""\
2024-05-01 10:00:00,001 INFO ready
2024-05-01 10:00:01,002 ERROR [worker] Traceback (most recent call last):
2024-05-01 10:00:01,002 ERROR [worker]   File "/srv/app/jobs.py", line 12, in run
2024-05-01 10:00:01,002 ERROR [worker]     next(it)
2024-05-01 10:00:01,002 ERROR [worker] StopIteration
2024-05-01 10:00:02,003 INFO done
Traceback (most recent call last):
  File "/srv/app/jobs.py", line 20, in <module>
    main()
"""


def test_type_without_message_and_a_consistent_prefix_on_every_line() -> None:
    [event] = parse_log_text(TEXT, "jobs.log")
    [exc] = event.exceptions
    assert (exc.type, exc.value, exc.module) == ("StopIteration", "", None)
    assert [(f.function, f.lineno, f.context_line) for f in exc.frames] == [("run", 12, "next(it)")]


def test_truncated_traceback_is_skipped_not_guessed() -> None:
    events = parse_log_text(TEXT, "jobs.log")
    assert len(events) == 1  # the second traceback has no exception line


def test_same_traceback_at_another_offset_is_another_event() -> None:
    block = b"Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    g()\nNameError: name 'g' is not defined\n"
    first, second = parse_log_text(block + b"noise\n" + block, "a.log")
    assert first.exceptions == second.exceptions and first.id != second.id
    assert first.primary is not None and first.primary.type == "NameError"


def test_log_without_tracebacks_gives_no_events(tmp_path: Path) -> None:
    path = tmp_path / "quiet.log"
    path.write_text("2024-05-01 INFO all good\n2024-05-01 WARNING disk 80% full\n")
    assert load_path(path) == []


def test_binary_file_is_invalid_input(tmp_path: Path) -> None:
    path = tmp_path / "core.log"
    path.write_bytes(b"\x7fELF\x00\x00\x01Traceback")
    with pytest.raises(InvalidInput, match="binary"):
        load_path(path)


def test_undecodable_bytes_do_not_cost_the_traceback() -> None:
    data = b"caf\xe9 crashed\nTraceback (most recent call last):\n  File \"a.py\", line 1, in f\n    x\nKeyError: 'k'\n"
    [event] = parse_log_text(data, "latin1.log")
    assert event.primary is not None and event.primary.type == "KeyError"


def test_load_path_reads_a_log_file_as_log() -> None:
    assert [e.source for e in load_path(DATA / "app.log")] == ["log"] * 4


# --- the log record a traceback belongs to -------------------------------------------------------


def test_a_traceback_carries_its_records_timestamp_level_logger_and_message() -> None:
    request, parse, lookup = [e for e in parse_log_file(DATA / "app.log") if e.exceptions]
    assert (request.message, request.level, request.logger) == ("request failed", "error", "shop")
    assert (parse.message, parse.logger) == ("parse failed", "shop")  # formatted into its own message
    assert lookup.message == "lookup failed"
    assert request.raw["record"].endswith("ERROR [shop] request failed")
    assert request.timestamp == datetime(2026, 11, 23, 20, 43, 5, 968000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("line", "level", "logger", "message"),
    [
        ("2024-05-01 12:00:00,123 ERROR [shop.web] boom", "error", "shop.web", "boom"),
        ("2024-05-01 12:00:00,123 ERROR 4242 [grocer.worker] job checkout failed", "error", "grocer.worker",
         "job checkout failed"),
        ("ERROR:shop.web:boom", "error", "shop.web", "boom"),
        ("2024-05-01 12:00:00,123 - shop.web - CRITICAL - disk full", "critical", "shop.web", "disk full"),
        ("[2024-05-01 12:00:00 +0000] [4242] [ERROR] Exception in worker process", "error", None,
         "Exception in worker process"),
        ("[2024-05-01 12:00:00,123] ERROR in views: Exception on /x [GET]", "error", "views", "Exception on /x [GET]"),
        ("2024-05-01 12:00:00 [error    ] job failed   job=checkout", "error", None, "job failed   job=checkout"),
        ("ERROR:    Exception in ASGI application", "error", None, "Exception in ASGI application"),
        ("2026-05-01T12:00:00.000000001Z stderr F 2026-05-01 12:00:00,1 WARNING [x] slow", "warning", "x", "slow"),
        ("2024-05-01 12:00:00 something happened", None, None, "something happened"),
    ],
)
def test_common_logging_layouts_give_level_logger_and_message(line: str, level: str | None, logger: str | None,
                                                               message: str) -> None:
    from pipeline.sources.log_records import parse_record

    record = parse_record(line)
    assert record is not None
    assert (record.level, record.logger, record.message) == (level, logger, message)


@pytest.mark.parametrize("line", ["  File \"a.py\", line 1, in f", "KeyError: 'x'", "Error: boom", "    x = 1", ""])
def test_traceback_and_continuation_lines_start_no_record(line: str) -> None:
    from pipeline.sources.log_records import parse_record

    assert parse_record(line) is None


def test_error_lines_without_a_traceback_are_message_events_and_others_are_not() -> None:
    text = b"""\
2024-05-01 10:00:00,001 INFO [shop] ready
2024-05-01 10:00:01,002 ERROR [shop.stock] stock reservation for EGG-6 timed out after 1500ms
2024-05-01 10:00:01,003 WARNING [shop] slow request
2024-05-01 10:00:02,003 ERROR [shop.web] request failed
Traceback (most recent call last):
  File "/srv/app/shop/web.py", line 3, in handle
    return 1 / 0
ZeroDivisionError: division by zero
2024-05-01 10:00:03,004 CRITICAL [shop.db] connection pool exhausted
"""
    events = parse_log_text(text, "app.log")
    assert [(e.message, e.level, e.logger, bool(e.exceptions)) for e in events] == [
        ("stock reservation for EGG-6 timed out after 1500ms", "error", "shop.stock", False),
        ("request failed", "error", "shop.web", True),
        ("connection pool exhausted", "critical", "shop.db", False),
    ]


# --- JSON lines ------------------------------------------------------------------------------------


def test_structlog_and_python_json_logger_lines_with_an_exception_become_tracebacks(tmp_path: Path) -> None:
    import json
    import logging

    import structlog
    from pythonjsonlogger.json import JsonFormatter

    path = tmp_path / "app.jsonl"
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger("jsontest.worker")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        {}["sku"]
    except KeyError:
        logger.exception("job %s failed", "import")
    handler.close()
    render = structlog.processors.JSONRenderer()
    with path.open("a") as out:
        for formatter in (structlog.processors.format_exc_info, structlog.processors.dict_tracebacks):
            try:
                {}["sku"]
            except KeyError as exc:
                entry = formatter(None, "error", {"event": "job failed", "level": "error", "logger": "shop.jobs",
                                                  "exc_info": (type(exc), exc, exc.__traceback__)})
            out.write(render(None, "error", entry) + "\n")
        out.write(json.dumps({"event": "cache warm", "level": "info"}) + "\n")
        out.write(json.dumps({"event": "quota exceeded for tenant 7", "level": "error", "logger": "shop"}) + "\n")
    events = parse_log_file(path)
    assert [(e.logger, e.level, e.message) for e in events] == [
        ("jsontest.worker", "error", "job import failed"),
        ("shop.jobs", "error", "job failed"),
        ("shop.jobs", "error", "job failed"),
        ("shop", "error", "quota exceeded for tenant 7"),
    ]
    text, as_text, as_dicts = (e.primary for e in events[:3])
    assert text is not None and as_text is not None and as_dicts is not None
    assert (text.type, text.value) == (as_text.type, as_text.value) == (as_dicts.type, as_dicts.value) == (
        "KeyError", "'sku'")
    assert as_text.frames[-1].context_line == '{}["sku"]' and as_dicts.frames[-1].context_line is None
    assert as_dicts.frames[-1].function == as_text.frames[-1].function
    assert not events[3].exceptions


# --- a file that is still being written ------------------------------------------------------------

GROWING = TEXT.replace(b"Traceback (most recent call last):\n  File \"/srv/app/jobs.py\", line 20, in <module>\n    main()\n", b"")


def test_a_partial_scan_stops_before_a_record_that_may_still_grow() -> None:
    from pipeline.sources.logs import scan_log

    whole = parse_log_text(GROWING, "jobs.log")
    cut = GROWING.index(b"StopIteration") + 5  # the exception line is half written
    partial = scan_log(GROWING[:cut], "jobs.log", head=None, final=False)
    assert partial.events == []
    assert GROWING[: partial.consumed].endswith(b"INFO ready\n")
    rest = scan_log(GROWING[partial.consumed :], "jobs.log", head=_head(GROWING), base_offset=partial.consumed,
                    final=True)
    assert [e.id for e in rest.events] == [e.id for e in whole]


def test_a_traceback_at_the_end_waits_for_a_chained_exception_that_may_follow() -> None:
    from pipeline.sources.logs import scan_log

    block = b"Traceback (most recent call last):\n  File \"a.py\", line 1, in f\n    g()\nKeyError: 'k'\n"
    assert scan_log(block, "a.log", final=False).events == []
    assert len(scan_log(block, "a.log", final=True).events) == 1
    assert len(scan_log(block + b"2024-05-01 10:00:00 INFO next\n", "a.log", final=False).events) == 1


def _head(data: bytes) -> str:
    from pipeline.sources.logs import head_of

    return head_of(data)


def test_event_ids_do_not_depend_on_the_rotation_suffix_of_the_file_name(tmp_path: Path) -> None:
    (tmp_path / "app.log").write_bytes(TEXT)
    (tmp_path / "app.log.1").write_bytes(TEXT)
    (tmp_path / "other.log").write_bytes(TEXT)
    ids = [[e.id for e in parse_log_file(tmp_path / name)] for name in ("app.log", "app.log.1", "other.log")]
    assert ids[0] == ids[1] != ids[2]


def test_an_error_line_before_a_held_traceback_is_not_lost() -> None:
    from pipeline.sources.logs import scan_log

    data = (b"2024-05-01 10:00:00,000 ERROR [a] disk almost full\n"
            b"2024-05-01 10:00:01,000 ERROR [b] Traceback (most recent call last):\n"
            b"2024-05-01 10:00:01,000 ERROR [b]   File \"a.py\", line 1, in f\n")
    partial = scan_log(data, "a.log", final=False)
    assert [e.message for e in partial.events] == ["disk almost full"]
    assert data[partial.consumed :].startswith(b"2024-05-01 10:00:01,000 ERROR [b] Traceback")
