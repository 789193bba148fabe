"""The SQL store, run as one suite on a SQLite file and on a fresh PostgreSQL schema."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text
from structlog.testing import capture_logs

from pipeline.adapters.sql_engine import current_revision, head_revision, make_engine
from pipeline.adapters.sql_models import Base, VerificationRunRow
from pipeline.adapters.sql_store import SqlStore
from pipeline.errors import ConfigError, InvalidInput, StoreUnavailable
from pipeline.ports import Outcome
from pipeline.records import (
    CandidateStatus,
    Cost,
    ErrorEvent,
    ExceptionInfo,
    FixCandidate,
    Frame,
    Hint,
    Issue,
    IssueStatus,
    Patch,
    PullRequest,
    ReplayResult,
    ReplayStatus,
    Review,
    SandboxRun,
    Verification,
)
from pipeline.settings import Settings

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
CEST = timezone(timedelta(hours=2))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    store = SqlStore(store_url)
    yield store
    store.close()


def make_event(
    event_id: str = "e1", fingerprint: str = "fp1", at: datetime = T0, **changes: object
) -> ErrorEvent:
    frame = Frame(
        function="checkout",
        filename="shop/cart.py",
        abs_path="/app/shop/cart.py",
        module="shop.cart",
        lineno=42,
        context_line="    total = prices[item]",
        pre_context=("def checkout(prices, item):",),
        post_context=("    return total",),
        vars={"item": "'apple'", "prices": {"pear": 2}, "n": [1, None, 2.5]},
    )
    event = ErrorEvent(
        id=event_id,
        source="sentry-event",
        platform="python",
        exceptions=(
            ExceptionInfo(type="ValueError", value="bad", module="builtins", mechanism="generic"),
            ExceptionInfo(type="KeyError", value="'apple'", frames=(frame,)),
        ),
        received_at=at,
        release="shop@1.2.3",
        environment="production",
        tags={"server": "web-1"},
        message="checkout failed",
        fingerprint=fingerprint,
        url="https://shop.example/checkout",
        project="shop-backend",
        timestamp=at - timedelta(seconds=1),
        raw={"event_id": event_id, "nested": {"list": [1, 2, {"k": "v"}]}, "unicode": "naïve ✓"},
    )
    return dataclasses.replace(event, **changes)  # type: ignore[arg-type]


def make_issue(fingerprint: str = "fp1", at: datetime = T0, **changes: object) -> Issue:
    issue = Issue(
        fingerprint=fingerprint,
        title="KeyError: 'apple'",
        culprit="shop/cart.py in checkout",
        fix_class="missing-key",
        first_seen=at,
        last_seen=at,
        priority=0.5,
        repo="shop",
        project="shop-backend",
    )
    return dataclasses.replace(issue, **changes)  # type: ignore[arg-type]


def record(store: SqlStore, event_id: str, fingerprint: str = "fp1", at: datetime = T0) -> bool:
    return store.record_event(make_event(event_id, fingerprint, at), make_issue(fingerprint, at))


def make_candidate(
    fingerprint: str = "fp1", diff: str = "--- a/x\n+++ b/x\n", runs: int = 2, **changes: object
) -> FixCandidate:
    verification = Verification(
        runs=tuple(
            SandboxRun(
                kind=f"step_{i}",
                command=f"pytest -k t{i}",
                exit_code=i % 2,
                duration_s=1.5 + i,
                output_tail=f"out {i}",
                timed_out=i == 3,
            )
            for i in range(runs)
        ),
        reproduced=True,
        repro_passes_after=True,
        tests_pass_after=None,
        applied=True,
        reason="ok",
        replays=(
            ReplayResult("shop.cart.total", "crash", ReplayStatus.REPRODUCED, ReplayStatus.PASSED),
            ReplayResult("shop.api.checkout", "caller", ReplayStatus.REPRODUCED, ReplayStatus.OTHER_ERROR,
                         "TypeError: type NoneType doesn't define __round__ method"),
            ReplayResult("shop.api.serve", "caller", ReplayStatus.PASSED),
        ),
        not_replayable=("crash Cart.total (shop/cart.py:3): argument 'items' was scrubbed",),
        newly_failing=("tests/test_cart.py::test_total",),
        static_problems=("shop/cart.py: the patch adds an undefined name 'nope'",),
    )
    candidate = FixCandidate(
        issue_fingerprint=fingerprint,
        patch=Patch(
            strategy="template:missing-key",
            diff=diff,
            files=("shop/cart.py",),
            description="use .get",
            tokens=12,
        ),
        verification=verification,
        confidence=0.8,
        confidence_parts={"verified": 1.0, "size": 0.6},
        cost=Cost(tokens=100, seconds=3.5, usd=0.01),
        status=CandidateStatus.AWAITING_REVIEW,
        created_at=T0,
        base_commit="0123456789abcdef0123456789abcdef01234567",
    )
    return dataclasses.replace(candidate, **changes)  # type: ignore[arg-type]


# --- events and issues ---------------------------------------------------------------------------


def test_an_event_round_trips_with_its_raw_payload_and_utc_times(store: SqlStore) -> None:
    event = make_event(at=datetime(2024, 5, 1, 14, 0, tzinfo=CEST))
    assert store.record_event(event, make_issue()) is True

    stored = store.get_event("e1")

    assert stored == event
    assert stored is not None and stored.received_at.tzinfo is UTC
    assert stored.timestamp is not None and stored.timestamp.tzinfo is UTC
    assert stored.received_at == T0


def test_a_new_issue_is_stored_as_given_and_counts_its_first_event(store: SqlStore) -> None:
    record(store, "e1")

    assert store.get_issue("fp1") == make_issue(latest_event_id="e1")
    assert store.get_issue("unknown") is None
    assert store.get_event("unknown") is None


def test_duplicate_event_id_is_dropped_with_counts_unchanged(store: SqlStore) -> None:
    record(store, "e1")
    before = store.get_issue("fp1")

    later = T0 + timedelta(hours=1)
    again = make_event("e1", at=later, message="another payload")

    with capture_logs() as logs:
        assert store.record_event(again, make_issue(at=later)) is False
    assert [entry["event"] for entry in logs] == ["event.duplicate_dropped"]
    assert store.get_issue("fp1") == before
    assert store.get_event("e1") == make_event("e1")


def test_reoccurrence_counts_the_event_and_widens_first_and_last_seen(store: SqlStore) -> None:
    record(store, "e1")
    store.set_issue_status("fp1", IssueStatus.TRIAGED)

    record(store, "e2", at=T0 + timedelta(hours=2))
    record(store, "e3", at=T0 - timedelta(hours=1))  # an older event pulled late

    issue = store.get_issue("fp1")
    assert issue is not None
    assert (issue.count, issue.first_seen, issue.last_seen) == (
        3,
        T0 - timedelta(hours=1),
        T0 + timedelta(hours=2),
    )
    assert issue.latest_event_id == "e3"
    assert issue.status is IssueStatus.TRIAGED


def test_concurrent_inserts_of_one_event_id_count_it_once(store_url: str) -> None:
    stores = [SqlStore(store_url) for _ in range(4)]
    stores[0].migrate()
    barrier = threading.Barrier(len(stores))

    def insert(store: SqlStore) -> bool:
        barrier.wait()
        return record(store, "same-id")

    with ThreadPoolExecutor(len(stores)) as pool:
        results = sorted(pool.map(insert, stores))
    issue = stores[0].get_issue("fp1")
    for s in stores:
        s.close()

    assert results == [False, False, False, True]
    assert issue is not None and issue.count == 1


def test_an_event_whose_fingerprint_differs_from_its_issue_is_refused(store: SqlStore) -> None:
    with pytest.raises(InvalidInput, match="differs"):
        store.record_event(make_event(fingerprint="other"), make_issue())
    assert store.get_event("e1") is None and store.get_issue("fp1") is None


def test_events_for_an_issue_come_newest_first_and_limited(store: SqlStore) -> None:
    for minute in range(5):
        record(store, f"e{minute}", at=T0 + timedelta(minutes=minute))
    record(store, "elsewhere", fingerprint="fp2")

    events = store.events_for_issue("fp1", limit=3)

    assert [e.id for e in events] == ["e4", "e3", "e2"]
    assert [e.id for e in store.events_for_issue("fp2")] == ["elsewhere"]


def test_issue_status_and_fields_updates_persist(store: SqlStore) -> None:
    record(store, "e1")
    store.set_issue_status("fp1", IssueStatus.FIXING)
    assert store.get_issue("fp1") == make_issue(latest_event_id="e1", status=IssueStatus.FIXING)

    updated = make_issue(
        latest_event_id="e1", priority=0.9, title="new title", status=IssueStatus.AWAITING_REVIEW
    )
    store.update_issue(updated)
    assert store.get_issue("fp1") == updated

    with pytest.raises(InvalidInput):
        store.set_issue_status("unknown", IssueStatus.FIXING)


def test_issues_are_listed_by_priority_and_filtered_by_status(store: SqlStore) -> None:
    for fingerprint, priority in [("low", 0.1), ("high", 0.9), ("mid", 0.5)]:
        store.update_issue(make_issue(fingerprint, priority=priority))
    store.set_issue_status("mid", IssueStatus.TRIAGED)

    assert [i.fingerprint for i in store.list_issues()] == ["high", "mid", "low"]
    assert [i.fingerprint for i in store.list_issues(IssueStatus.TRIAGED)] == ["mid"]
    assert store.list_issues(IssueStatus.MERGED) == []


# --- candidates ------------------------------------------------------------------------------------


def test_a_candidate_round_trips_with_its_verification(store: SqlStore) -> None:
    record(store, "e1")
    candidate = make_candidate(created_at=datetime(2024, 5, 1, 14, 0, tzinfo=CEST), runs=4)
    unverified = make_candidate(diff="--- a/y\n+++ b/y\n", verification=None, status=CandidateStatus.HELD)

    store.save_candidate(candidate)
    store.save_candidate(unverified)

    assert store.get_candidate(candidate.id) == candidate
    assert store.get_candidate(unverified.id) == unverified
    stored = store.get_candidate(candidate.id)
    assert stored is not None and stored.created_at.tzinfo is UTC
    assert store.get_candidate("unknown") is None


def test_saving_a_candidate_again_replaces_its_verdict_and_runs_but_keeps_its_first_time_and_status(
    store: SqlStore, store_url: str
) -> None:
    record(store, "e1")
    first = make_candidate(runs=3, created_at=T0)
    store.save_candidate(first)
    store.set_candidate_status(first.id, CandidateStatus.APPROVED)  # a reviewer acted meanwhile
    second = make_candidate(runs=2, confidence=0.4, status=CandidateStatus.HELD, created_at=T0 + timedelta(hours=1))

    store.save_candidate(second)
    store.save_candidate(second)

    assert second.id == first.id
    assert store.get_candidate(first.id) == dataclasses.replace(second, created_at=T0,
                                                                status=CandidateStatus.APPROVED)
    held = make_candidate(diff="held", status=CandidateStatus.HELD, created_at=T0)
    store.save_candidate(held)
    store.save_candidate(dataclasses.replace(held, status=CandidateStatus.AWAITING_REVIEW,
                                             created_at=T0 + timedelta(hours=2)))
    promoted = store.get_candidate(held.id)
    assert promoted is not None and promoted.status is CandidateStatus.AWAITING_REVIEW and promoted.created_at == T0
    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(VerificationRunRow)) == 2 + 2  # second's, held's
    engine.dispose()


def test_candidates_are_listed_by_confidence_and_filtered(store: SqlStore) -> None:
    record(store, "e1")
    record(store, "e2", fingerprint="fp2")
    a = make_candidate(diff="a", confidence=0.5)
    b = make_candidate(diff="b", confidence=0.9, status=CandidateStatus.HELD)
    c = make_candidate("fp2", diff="c", confidence=0.7)
    for candidate in (a, b, c):
        store.save_candidate(candidate)

    assert [x.id for x in store.list_candidates()] == [b.id, c.id, a.id]
    assert [x.id for x in store.list_candidates(CandidateStatus.AWAITING_REVIEW)] == [c.id, a.id]
    assert [x.id for x in store.list_candidates(issue_fingerprint="fp1")] == [b.id, a.id]
    assert [x.id for x in store.list_candidates(CandidateStatus.HELD, "fp1")] == [b.id]
    assert store.list_candidates(CandidateStatus.HELD, "fp2") == []


def test_candidate_status_updates_persist(store: SqlStore) -> None:
    record(store, "e1")
    candidate = make_candidate()
    store.save_candidate(candidate)

    store.set_candidate_status(candidate.id, CandidateStatus.APPROVED)

    assert store.get_candidate(candidate.id) == dataclasses.replace(
        candidate, status=CandidateStatus.APPROVED
    )
    with pytest.raises(InvalidInput):
        store.set_candidate_status("unknown", CandidateStatus.APPROVED)


# --- reviews and pull requests -------------------------------------------------------------------


def test_reviews_round_trip_oldest_first_and_a_repeated_save_is_kept_once(store: SqlStore) -> None:
    record(store, "e1")
    candidate = make_candidate()
    store.save_candidate(candidate)
    rejected = Review(
        candidate.id, "rejected", "ann", "too broad", at=datetime(2024, 5, 2, 14, 0, tzinfo=CEST)
    )
    approved = Review(candidate.id, "approved", "bob", at=T0 + timedelta(days=2))

    for review in (approved, rejected, approved):
        store.save_review(review)

    assert store.reviews_for(candidate.id) == [rejected, approved]
    assert store.reviews_for("unknown") == []


def test_a_candidate_has_one_pull_request_whose_state_updates(store: SqlStore) -> None:
    record(store, "e1")
    one, two = make_candidate(diff="1"), make_candidate(diff="2")
    store.save_candidate(one)
    store.save_candidate(two)
    pr = PullRequest(
        one.id,
        "acme/shop",
        "autofix/1",
        "Fix KeyError",
        "body",
        "https://x/pr/7",
        "abc123",
        number=7,
        created_at=datetime(2024, 5, 3, 14, 0, tzinfo=CEST),
    )
    other = dataclasses.replace(pr, candidate_id=two.id, number=None, created_at=T0 + timedelta(days=3))

    store.save_pull_request(pr)
    store.save_pull_request(other)
    store.save_pull_request(dataclasses.replace(pr, state="merged"))

    assert store.get_pull_request(one.id) == dataclasses.replace(pr, state="merged")
    assert store.get_pull_request(two.id) == other
    assert store.get_pull_request("unknown") is None
    assert store.list_pull_requests() == [dataclasses.replace(pr, state="merged"), other]


def test_a_pull_request_keeps_its_base_merge_and_ci_feedback_state(store: SqlStore) -> None:
    record(store, "e1")
    first, second = make_candidate(diff="1"), make_candidate(diff="2")
    store.save_candidate(first)
    store.save_candidate(second)
    pr = PullRequest(first.id, "shop", "autofix/1", "t", "b", "https://x/pr/7", "c" * 40, number=7,
                     created_at=T0, base_sha="b" * 40)
    store.save_pull_request(pr)
    assert store.get_pull_request(first.id) == pr
    assert (pr.ci_rounds, pr.needs_human, pr.current_candidate_id) == (0, False, first.id)

    later = dataclasses.replace(pr, state="merged", merge_commit_sha="m" * 40, head_candidate_id=second.id,
                                ci_rounds=2, ci_checked_sha="d" * 40, needs_human=True,
                                regressed_at=datetime(2024, 6, 1, 14, 0, tzinfo=CEST))
    store.save_pull_request(later)

    stored = store.get_pull_request(first.id)
    assert stored == later and stored.regressed_at is not None and stored.regressed_at.tzinfo is UTC
    assert stored.current_candidate_id == second.id


def test_a_candidate_keeps_the_reproduction_it_was_verified_with(store: SqlStore) -> None:
    record(store, "e1")
    candidate = make_candidate(reproduction="def test_crash_does_not_recur():\n    pass\n")
    store.save_candidate(candidate)
    assert store.get_candidate(candidate.id) == candidate
    assert store.list_candidates()[0].reproduction == candidate.reproduction


def test_an_issues_pull_requests_are_found_through_their_candidates(store: SqlStore) -> None:
    record(store, "e1", "fp1")
    record(store, "e2", "fp2")
    mine, theirs = make_candidate("fp1"), make_candidate("fp2")
    for candidate in (mine, theirs):
        store.save_candidate(candidate)
        store.save_pull_request(PullRequest(candidate.id, "shop", f"b-{candidate.id}", "t", "b", "u", "s" * 40,
                                            created_at=T0))
    assert [pr.candidate_id for pr in store.pull_requests_for("fp1")] == [mine.id]
    assert store.pull_requests_for("nothing") == []


def test_a_hint_is_stored_once_per_source_and_ref_and_the_newest_come_back_oldest_first(store: SqlStore) -> None:
    record(store, "e1")
    hints = [Hint("fp1", "ci", f"CI failed {i}", f"ci:{i}", at=T0 + timedelta(minutes=i)) for i in range(7)]
    assert [store.add_hint(h) for h in hints] == [True] * 7
    assert store.add_hint(dataclasses.replace(hints[3], text="the same head again")) is False
    reviewer = Hint("fp1", "reviewer", "use the account's locale", "review:1", at=T0 + timedelta(hours=1))
    assert store.add_hint(reviewer) is True

    assert store.hints_for("fp1", limit=3) == [hints[5], hints[6], reviewer]
    assert store.hints_for("fp1", limit=20)[3] == hints[3]  # the first text kept
    assert store.hints_for("fp2") == []


def test_outcomes_join_reviews_and_pull_request_fates_to_class_and_strategy(store: SqlStore) -> None:
    record(store, "e1", "fp1")
    record(store, "e2", "fp2")
    store.update_issue(dataclasses.replace(make_issue("fp2"), fix_class="ZeroDivisionError"))
    approved, pushed = make_candidate("fp1", diff="1", confidence=0.9), make_candidate("fp1", diff="2")
    rejected = make_candidate("fp2", diff="3", confidence=0.7,
                              patch=Patch("template:zero_guard", "3", ("a.py",), "guard"))
    for candidate in (approved, pushed, rejected):
        store.save_candidate(candidate)
    store.save_review(Review(approved.id, "approved", "ann", at=T0))
    store.save_review(Review(rejected.id, "rejected", "bob", "wrong default", at=T0 + timedelta(hours=1)))
    store.save_pull_request(PullRequest(approved.id, "shop", "b", "t", "b", "u", "s" * 40, state="merged",
                                        created_at=T0, head_candidate_id=pushed.id,
                                        regressed_at=T0 + timedelta(days=1)))

    outcomes = store.outcomes()

    assert outcomes == [
        Outcome(approved.id, "missing-key", "template:missing-key", 0.9, "approved"),
        Outcome(rejected.id, "ZeroDivisionError", "template:zero_guard", 0.7, "rejected", "wrong default"),
        Outcome(pushed.id, "missing-key", "template:missing-key", 0.8, "merged"),  # the head's patch merged
        Outcome(pushed.id, "missing-key", "template:missing-key", 0.8, "regressed"),
    ]


# --- schema and connections ----------------------------------------------------------------------


def test_migrations_leave_alembic_current_at_head(store: SqlStore, store_url: str) -> None:
    store.list_issues()  # first use migrates
    SqlStore(store_url).migrate()  # a second store finds the schema at head and changes nothing

    head = head_revision()
    assert head is not None and head != "0001"  # later migrations chain onto the initial schema
    assert current_revision(store_url) == f"{head} (head)"


def test_migrations_create_exactly_the_schema_of_the_models(store: SqlStore, store_url: str) -> None:
    store.migrate()
    engine = make_engine(store_url)
    with engine.connect() as conn:
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    engine.dispose()
    assert differences == []


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_url: str) -> None:
    SqlStore(sqlite_url).migrate()
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        pragmas = [
            conn.execute(text(f"PRAGMA {name}")).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]
    engine.dispose()
    assert pragmas == ["wal", 1, 30_000]


def test_an_in_memory_sqlite_url_is_refused() -> None:
    with pytest.raises(ConfigError, match="in-memory"):
        SqlStore("sqlite://")


def test_an_unreachable_database_raises_store_unavailable() -> None:
    store = SqlStore("postgresql+psycopg://postgres@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable):
        store.list_issues()


def test_from_settings_creates_home_and_uses_its_sqlite_file(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "state" / "autofix", store_url=None)

    store = SqlStore.from_settings(settings)
    store.update_issue(make_issue())
    store.close()

    assert (tmp_path / "state" / "autofix" / "autofix.db").is_file()


def test_stores_starting_together_on_a_new_database_all_migrate(store_url: str) -> None:
    stores = [SqlStore(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(stores))

    def start(store: SqlStore) -> None:
        barrier.wait()
        store.migrate()

    with ThreadPoolExecutor(len(stores)) as pool:
        outcomes = [pool.submit(start, s) for s in stores]
    for s in stores:
        s.close()

    assert [outcome.exception() for outcome in outcomes] == [None] * len(stores)
    assert current_revision(store_url) == f"{head_revision()} (head)"


def test_setting_the_priority_leaves_a_concurrent_status_change_alone(store: SqlStore) -> None:
    record(store, "e1")
    stale = store.get_issue("fp1")
    store.set_issue_status("fp1", IssueStatus.FIXING)  # another worker moved on meanwhile
    assert stale is not None
    store.set_issue_priority(stale.fingerprint, 2.5)
    now = store.get_issue("fp1")
    assert now is not None and now.priority == 2.5 and now.status is IssueStatus.FIXING
