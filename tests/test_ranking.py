"""Triage's rank: events, users affected, recency, trend and fixability, from an issue's stored events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pipeline.adapters.sql_store import SqlStore
from pipeline.records import ErrorEvent, ExceptionInfo, Frame, Issue
from pipeline.triage import Signals, pick, priority, rank, signals

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def issue(fingerprint: str = "fp", count: int = 10, last_seen: datetime = NOW) -> Issue:
    return Issue(fingerprint, "t", "c", "KeyError", NOW - timedelta(days=30), last_seen, count=count)


def test_each_signal_moves_the_rank_the_way_it_should() -> None:
    base = issue()
    quiet = Signals()
    assert rank(base, quiet, NOW) == priority(base)  # active now, nobody known, flat: events x fixability
    assert rank(base, Signals(users=7), NOW) > rank(base, quiet, NOW)  # more people hit
    assert rank(base, Signals(last_day=9, previous_day=1), NOW) > rank(base, quiet, NOW)  # growing
    assert rank(base, Signals(last_day=1, previous_day=9), NOW) < rank(base, quiet, NOW)  # fading
    stale = replace(base, last_seen=NOW - timedelta(days=14))
    assert rank(stale, quiet, NOW) == round(priority(base) * 0.25, 4)  # two idle weeks: a quarter
    assert rank(replace(base, count=100), quiet, NOW) > rank(base, quiet, NOW)


def _event(event_id: str, fingerprint: str, at: datetime, user: str | None) -> ErrorEvent:
    frame = Frame("f", "app/m.py", module="app.m", lineno=3, in_app=True)
    raw = {"user": {"id": user}} if user else {}
    return ErrorEvent(event_id, "sentry-event", "python", (ExceptionInfo("KeyError", "'k'", frames=(frame,)),),
                      at, fingerprint=fingerprint, raw=raw)


def test_signals_come_from_the_stored_events_and_pick_ranks_by_them(sqlite_url: str) -> None:
    store = SqlStore(sqlite_url)
    for i in range(6):  # many users, growing
        store.record_event(_event(f"a{i}", "wide", NOW - timedelta(hours=i), f"u{i}"), issue("wide", 1))
    for i in range(6):  # one user, all events the day before
        store.record_event(_event(f"b{i}", "narrow", NOW - timedelta(hours=30 + i), "u0"), issue("narrow", 1))

    assert signals(store, issue("wide"), NOW) == Signals(users=6, last_day=6, previous_day=0)
    assert signals(store, issue("narrow"), NOW) == Signals(users=1, last_day=0, previous_day=6)
    assert [i.fingerprint for i in pick(store, 2, now=NOW)] == ["wide", "narrow"]  # same count and class
    store.close()
