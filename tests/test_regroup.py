"""`autofix regroup`: stored events move to today's fingerprints and clusters; issues merge and
split; events, candidates, reviews and pull requests all survive. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.adapters.sql_store import SqlStore
from pipeline.ingest import ingest_events, prepare
from pipeline.log_templates import Templates
from pipeline.ports import RegroupPlan
from pipeline.records import (
    CandidateStatus,
    Cost,
    ErrorEvent,
    FixCandidate,
    IssueStatus,
    Patch,
    PullRequest,
    Review,
)
from pipeline.regroup import regroup
from pipeline.source_lines import SourceLines
from pipeline.sources import load_path
from pipeline.sources.in_app import InAppRules

EVENTS = Path(__file__).resolve().parents[1] / "bench" / "grouping" / "events"
T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[SqlStore]:
    store = SqlStore(request.getfixturevalue(f"{request.param}_url"))
    yield store
    store.close()


def checkout_crash() -> list[ErrorEvent]:
    """One crash: a Sentry event (with locals) and the tracebacks three hosts logged."""
    return [*load_path(EVENTS / "grocer-checkout-1.json"),
            *(load_path(EVENTS / f"host-{h}-worker.log")[0] for h in "abc")]


def candidate_for(fingerprint: str, status: CandidateStatus = CandidateStatus.AWAITING_REVIEW) -> FixCandidate:
    return FixCandidate(fingerprint, Patch("template:zero_guard", "--- a/x\n+++ b/x\n", ("grocer/pricing.py",),
                                           "guard the zero"), None, 0.9, {"verified": 1.0}, Cost(), status, T0)


def test_a_configuration_change_merges_the_split_issues_of_one_crash_keeping_its_fix(store: SqlStore) -> None:
    # Configured for another app only, the grocer frames of the logs count as library code: the hosts'
    # tracebacks group on all their frames (the worker's too), apart from the Sentry event.
    wrong = InAppRules.of(["shop"])
    ingest_events(store, checkout_crash(), wrong)
    before = store.list_issues()
    assert sorted(i.count for i in before) == [1, 3]
    sentry_fp = prepare(checkout_crash()[0], wrong)[1].fingerprint
    log_fp = next(i.fingerprint for i in before if i.fingerprint != sentry_fp)
    store.set_issue_status(log_fp, IssueStatus.UNFIXABLE)  # judged alone, it could not be reproduced
    store.set_issue_status(sentry_fp, IssueStatus.AWAITING_REVIEW)
    fix = candidate_for(sentry_fp)
    store.save_candidate(fix)
    store.save_review(Review(fix.id, "approved", "ada", at=T0))
    store.save_pull_request(PullRequest(fix.id, "grocer", "autofix/zero", "t", "b", "file:///r", "abc123"))

    report = regroup(store, InAppRules(), Templates(), SourceLines())

    [issue] = store.list_issues()
    assert (issue.count, issue.status) == (4, IssueStatus.AWAITING_REVIEW)
    assert issue.cluster_id is not None and issue.fix_class == "zero-division"
    assert len(store.events_for_issue(issue.fingerprint)) == 4
    assert [c.id for c in store.list_candidates(issue_fingerprint=issue.fingerprint)] == [fix.id]
    assert [r.reviewer for r in store.reviews_for(fix.id)] == ["ada"]
    assert store.get_pull_request(fix.id) is not None
    assert (report.events, report.issues_before, report.issues_after) == (4, 2, 1)
    assert len(next(iter(report.merged.values()))) == 2


def test_an_issue_holding_two_crashes_splits_and_the_heir_keeps_its_candidates(store: SqlStore) -> None:
    quantity = load_path(EVENTS / "grocer-import-quantity-1.json") + load_path(EVENTS / "grocer-import-quantity-2.json")
    discount = load_path(EVENTS / "grocer-import-discount-1.json")
    # An older version grouped all three by their shared message "invalid value".
    for event in quantity + discount:
        grouped, issue = prepare(event, InAppRules())
        store.record_event(dataclasses.replace(grouped, fingerprint="old"),
                           dataclasses.replace(issue, fingerprint="old", status=IssueStatus.TRIAGED))
    store.save_candidate(candidate_for("old", CandidateStatus.HELD))

    report = regroup(store, InAppRules(), Templates(), SourceLines())

    issues = {i.count: i for i in store.list_issues()}
    assert sorted(issues) == [1, 2] and store.get_issue("old") is None
    assert issues[2].status is IssueStatus.TRIAGED and issues[1].status is IssueStatus.NEW
    assert [c.issue_fingerprint for c in store.list_candidates()] == [issues[2].fingerprint]
    assert report.split == {"old": sorted(i.fingerprint for i in issues.values())}
    assert {e.id for i in issues.values() for e in store.events_for_issue(i.fingerprint)} == {
        e.id for e in quantity + discount}


def test_a_dry_run_changes_nothing_and_a_second_regroup_moves_nothing(store: SqlStore) -> None:
    ingest_events(store, checkout_crash(), InAppRules.of(["shop"]))
    before = store.list_issues()
    planned = regroup(store, InAppRules(), dry_run=True)
    assert store.list_issues() == before and planned.moved == 3
    regroup(store, InAppRules())
    again = regroup(store, InAppRules())
    assert (again.moved, again.merged, again.split, again.candidates_moved) == (0, {}, {}, 0)


def test_regroup_fills_source_lines_learned_from_any_event_whatever_the_order(store: SqlStore) -> None:
    # structlog's dict tracebacks carry no source lines; stored first, they cannot group on arrival.
    dicts = [load_path(EVENTS / f"host-{h}-worker.log")[0] for h in "gh"]
    ingest_events(store, dicts + checkout_crash(), InAppRules())  # no memory of source lines at all
    assert len(store.list_issues()) == 2
    regroup(store, InAppRules(), Templates(), SourceLines())
    [issue] = store.list_issues()
    assert issue.count == 6
    stored = store.get_event(dicts[0].id)
    assert stored is not None and stored.primary is not None and stored.primary.frames[-1].context_line is None


def test_a_plan_that_breaks_a_reference_changes_nothing(store: SqlStore) -> None:
    ingest_events(store, checkout_crash()[:1], InAppRules())
    [issue] = store.list_issues()
    store.save_candidate(candidate_for(issue.fingerprint))
    bad = RegroupPlan(issues=(), candidates={}, removed=(issue.fingerprint,))  # its event still refers to it
    with pytest.raises(Exception, match="(?i)foreign key|violates"):
        store.apply_regroup(bad)
    assert store.get_issue(issue.fingerprint) is not None
