"""Triage: ranking and choosing the event to fix from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.records import ErrorEvent, ExceptionInfo, Frame, Issue
from pipeline.triage import best_event, priority

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _event(event_id: str, at: datetime, vars: dict[str, object]) -> ErrorEvent:
    frame = Frame("f", "app/m.py", module="app.m", lineno=3, vars=vars)
    return ErrorEvent(event_id, "log" if not vars else "sentry-event", "python",
                      (ExceptionInfo("ZeroDivisionError", "division by zero", frames=(frame,)),), at)


def test_the_event_with_captured_locals_is_chosen_over_a_newer_log_traceback() -> None:
    with_vars = _event("sentry", T0, {"count": "0"})
    newer_log = _event("log", T0 + timedelta(hours=1), {})
    assert best_event([newer_log, with_vars]) is with_vars


def test_among_events_with_locals_the_newest_is_chosen() -> None:
    old, new = _event("old", T0, {"x": "1"}), _event("new", T0 + timedelta(minutes=5), {"x": "2"})
    assert best_event([old, new]) is new
    assert best_event([]) is None


def test_frequent_fixable_issues_rank_above_rare_unfixable_ones() -> None:
    def issue(fix_class: str, count: int) -> Issue:
        return Issue("fp-" + fix_class, "t", "c", fix_class, T0, T0, count=count)

    assert priority(issue("missing-key", 50)) > priority(issue("missing-key", 2)) > priority(issue("recursion", 2))
    assert priority(issue("external", 500)) == 0.0


def test_an_older_event_whose_frames_hold_no_scrubbed_value_is_chosen_over_a_newer_scrubbed_one() -> None:
    clean = _event("clean", T0, {"customer": {"name": "'Alan'"}})
    scrubbed = _event("scrubbed", T0 + timedelta(minutes=5), {"customer": {"email": "'[Filtered:email]'"}})
    assert best_event([clean, scrubbed]) is clean
