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
