"""Claims in the store (SQLite and PostgreSQL): one running attempt per issue, budgets checked in the
same transaction, attempts ended column by column, lost ones reaped."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from test_store import T0, record

from pipeline.adapters.sql_store import SqlStore
from pipeline.records import Attempt, AttemptStatus, Budgets, ClaimRefused, Cost, IssueStatus

ROOMY = Budgets(max_concurrent=10, max_per_issue=10)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[SqlStore]:
    store = SqlStore(request.getfixturevalue(f"{request.param}_url"))
    yield store
    store.close()


def test_of_many_claims_on_one_issue_at_once_exactly_one_starts(store: SqlStore) -> None:
    record(store, "e1")
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: store.claim_attempt("fp1", ROOMY), range(8)))

    started = [c for c in claims if isinstance(c, Attempt)]
    assert len(started) == 1
    assert {c.reason for c in claims if isinstance(c, ClaimRefused)} == {"another attempt of this issue is running"}
    issue = store.get_issue("fp1")
    assert issue is not None and issue.status is IssueStatus.FIXING


def test_the_concurrency_bound_holds_across_issues_claimed_at_once(store: SqlStore) -> None:
    for i in range(6):
        record(store, f"e{i}", f"fp{i}")
    bound = Budgets(max_concurrent=2, max_per_issue=10)
    with ThreadPoolExecutor(6) as pool:
        claims = list(pool.map(lambda i: store.claim_attempt(f"fp{i}", bound), range(6)))

    assert sum(isinstance(c, Attempt) for c in claims) == 2
    assert all(c.budget for c in claims if isinstance(c, ClaimRefused))


def test_an_attempt_ends_without_touching_what_arrived_meanwhile_and_its_redelivery_takes_it_over(
    store: SqlStore,
) -> None:
    record(store, "e1")
    claim = store.claim_attempt("fp1", ROOMY, task_id="task-1", repo="shop")
    assert isinstance(claim, Attempt)
    assert store.claim_attempt("fp1", ROOMY, task_id="task-1") == claim  # the same task, redelivered
    record(store, "e2", at=T0 + timedelta(hours=1))  # an event during the attempt

    assert store.finish_attempt(claim.id, AttemptStatus.DONE, IssueStatus.AWAITING_REVIEW, outcome="verified",
                                cost=Cost(tokens=120, seconds=3.5, usd=0.01), sandbox_runs=4)
    assert not store.finish_attempt(claim.id, AttemptStatus.FAILED, IssueStatus.TRIAGED)  # over already

    issue = store.get_issue("fp1")
    assert issue is not None and (issue.status, issue.count, issue.latest_event_id, issue.repo) == (
        IssueStatus.AWAITING_REVIEW, 2, "e2", "shop")
    assert issue.last_seen == T0 + timedelta(hours=1)
    (ended,) = store.list_attempts("fp1")
    assert (ended.status, ended.outcome, ended.cost.tokens, ended.sandbox_runs) == (AttemptStatus.DONE, "verified",
                                                                                   120, 4)
    assert store.attempt_spend() == (120, 0.01)


def test_a_backoff_the_attempt_cap_and_the_daily_budgets_refuse_claims(store: SqlStore) -> None:
    for i in range(3):
        record(store, f"e{i}", f"fp{i}")
    first = store.claim_attempt("fp0", ROOMY)
    assert isinstance(first, Attempt)
    store.finish_attempt(first.id, AttemptStatus.FAILED, IssueStatus.TRIAGED, error="boom",
                         cost=Cost(tokens=500, usd=2.0), retry_after=first.started_at + timedelta(hours=1))
    refused = store.claim_attempt("fp0", ROOMY)
    assert isinstance(refused, ClaimRefused) and refused.reason.startswith("backing off until")
    assert store.backing_off() == {"fp0"}

    once = Budgets(max_concurrent=10, max_per_issue=1)
    later = first.started_at + timedelta(hours=2)
    capped = store.claim_attempt("fp0", once, now=later)
    assert isinstance(capped, ClaimRefused) and "the most per issue" in capped.reason and not capped.budget

    tokens = store.claim_attempt("fp1", Budgets(daily_tokens=500), now=later)
    assert isinstance(tokens, ClaimRefused) and tokens.budget and "token budget" in tokens.reason
    usd = store.claim_attempt("fp1", Budgets(daily_usd=2.0), now=later)
    assert isinstance(usd, ClaimRefused) and usd.budget and "cost budget" in usd.reason
    assert isinstance(store.claim_attempt("fp1", Budgets(daily_tokens=500), now=later + timedelta(days=1)), Attempt)


def test_an_attempt_whose_lease_ran_out_is_reaped_and_its_issue_can_be_claimed_again(store: SqlStore) -> None:
    record(store, "e1")
    lost = store.claim_attempt("fp1", ROOMY, task_id="dead")
    assert isinstance(lost, Attempt)

    assert store.reap_attempts(lease_s=3600, now=lost.started_at + timedelta(minutes=5)) == []
    assert store.reap_attempts(lease_s=3600, now=lost.started_at + timedelta(hours=2)) == ["fp1"]

    reaped = store.get_attempt(lost.id)
    assert reaped is not None and reaped.status is AttemptStatus.LOST
    assert isinstance(store.claim_attempt("fp1", ROOMY), Attempt)
