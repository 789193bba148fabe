"""Root-cause clusters in triage: one attempt per cluster, a fix offered once, every issue of the
cluster closed when that fix is merged; external failures recorded and never attempted."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.adapters.sql_store import SqlStore
from pipeline.demo import prepare_repo
from pipeline.ingest import ingest_paths
from pipeline.records import (
    CandidateStatus,
    Cost,
    FixCandidate,
    Issue,
    IssueStatus,
    LogCursor,
    Patch,
)
from pipeline.review import approve
from pipeline.settings import RepoConfig, Settings
from pipeline.sources.in_app import InAppRules
from pipeline.triage import close_cluster, pick, skip_reason, triage
from pipeline.wiring import Deps

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
T0 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[SqlStore]:
    store = SqlStore(request.getfixturevalue(f"{request.param}_url"))
    yield store
    store.close()


def issue(fp: str, fix_class: str = "zero-division", cluster: str | None = "c1", count: int = 1,
          status: IssueStatus = IssueStatus.NEW) -> Issue:
    return Issue(fp, f"title {fp}", "culprit", fix_class, T0, T0, count=count, status=status, cluster_id=cluster)


def candidate(fp: str, status: CandidateStatus) -> FixCandidate:
    return FixCandidate(fp, Patch("template:zero_guard", f"--- a/{fp}\n", ("x.py",), "d"), None, 0.9, {}, Cost(),
                        status, T0)


def test_the_store_lists_a_clusters_issues_and_sets_their_status_among_the_given_ones(store: SqlStore) -> None:
    for i in (issue("a", count=3), issue("b", status=IssueStatus.REJECTED), issue("c", status=IssueStatus.CLOSED),
              issue("d", cluster="other")):
        store.update_issue(i)
    assert [i.fingerprint for i in store.issues_in_cluster("c1")] == ["a", "b", "c"]
    changed = store.set_cluster_status("c1", IssueStatus.MERGED, [IssueStatus.NEW, IssueStatus.REJECTED])
    assert changed == ["a", "b"]
    assert [i.status for i in store.issues_in_cluster("c1")] == [IssueStatus.MERGED, IssueStatus.MERGED,
                                                                  IssueStatus.CLOSED]
    assert store.get_issue("d").status is IssueStatus.NEW  # type: ignore[union-attr]


def test_log_cursors_round_trip_and_are_replaced(store: SqlStore) -> None:
    assert store.get_log_cursor("/var/log/app.log") is None
    first = LogCursor("/var/log/app.log", 10, "ab", 3, 2**40, T0)
    store.save_log_cursor(first)
    store.save_log_cursor(dataclasses.replace(first, offset=5_000_000_000))
    assert store.get_log_cursor("/var/log/app.log") == dataclasses.replace(first, offset=5_000_000_000)


def test_events_are_listed_in_pages_by_id(store: SqlStore) -> None:
    ingest_paths(store, sorted((EXAMPLES / "events").glob("*.json")))
    first = store.list_events(limit=3)
    rest = store.list_events(after=first[-1].id, limit=10)
    ids = [e.id for e in first + rest]
    assert len(ids) == 5 and ids == sorted(ids)


def test_pick_attempts_one_issue_per_cluster_and_never_an_external_failure(store: SqlStore) -> None:
    store.update_issue(issue("small", count=1))
    store.update_issue(issue("big", count=9))
    store.update_issue(issue("alone", cluster="c2", count=2))
    store.update_issue(issue("timeout", fix_class="external", cluster="c3", count=50))
    assert [i.fingerprint for i in pick(store, 10)] == ["big", "alone"]
    assert "external failure" in (skip_reason(store, store.get_issue("timeout")) or "")  # type: ignore[arg-type]


def test_a_cluster_whose_fix_is_offered_is_not_attempted_again(store: SqlStore) -> None:
    store.update_issue(issue("fixed", status=IssueStatus.AWAITING_REVIEW))
    store.update_issue(issue("cousin"))
    offered = candidate("fixed", CandidateStatus.AWAITING_REVIEW)
    store.save_candidate(offered)
    assert pick(store, 10) == []
    assert offered.id in (skip_reason(store, store.get_issue("cousin")) or "")  # type: ignore[arg-type]
    store.set_candidate_status(offered.id, CandidateStatus.REJECTED)  # the offer is gone: try the cousin
    assert [i.fingerprint for i in pick(store, 10)] == ["cousin"]


def test_a_merged_fix_closes_every_issue_of_its_cluster_and_a_closed_one_only_its_own(store: SqlStore) -> None:
    for fp in ("a", "b", "c"):
        store.update_issue(issue(fp, status=IssueStatus.TRIAGED))
    store.update_issue(issue("x", cluster="c9", status=IssueStatus.PR_OPEN))
    store.update_issue(issue("y", cluster="c9"))
    assert close_cluster(store, "a", IssueStatus.MERGED) == ["a", "b", "c"]
    assert {i.status for i in store.issues_in_cluster("c1")} == {IssueStatus.MERGED}
    assert close_cluster(store, "x", IssueStatus.CLOSED) == ["x"]
    assert store.get_issue("y").status is IssueStatus.NEW  # type: ignore[union-attr]


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True, env=env).stdout


def test_one_fix_is_offered_for_a_cluster_and_merging_it_closes_the_wrapped_cousin_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile KeyError (Sentry, with locals) and the weekly digest's DigestError wrapping the same
    KeyError (a log) are two issues of one cluster: one candidate, one pull request, both closed."""
    # The task module needs a broker URL to import; the task itself runs here, in this process.
    monkeypatch.setenv("AUTOFIX_BROKER_URL", os.environ.get("AUTOFIX_TEST_BROKER_URL", "redis://127.0.0.1:6379/7"))
    import workers.app
    from workers.tasks import sync_pull_requests

    repo, remote = prepare_repo(EXAMPLES, tmp_path)
    settings = Settings(home=tmp_path / "home", repos=[RepoConfig(
        name="shop", path=repo, remote_url=str(remote), test_command="python -m pytest -q -p no:cacheprovider")])
    deps = Deps(settings)
    logged = tmp_path / "app.log"
    digest_only = (EXAMPLES / "logs" / "app.log").read_text().split("\n")
    logged.write_text("\n".join(digest_only[digest_only.index(next(x for x in digest_only if "weekly digest failed" in x)):]))
    ingest_paths(deps.store, [EXAMPLES / "events" / "3-profile-without-nickname.json", logged],
                 InAppRules.from_settings(settings))
    profile, digest = sorted(deps.store.list_issues(), key=lambda i: i.fix_class)
    assert (profile.fix_class, digest.fix_class) == ("missing-key", "raised")
    assert profile.cluster_id == digest.cluster_id is not None

    report = triage(deps.store, settings, deps.fixers, deps.sandbox_for, limit=10)

    assert list(report.outcomes) == [profile.fingerprint]
    assert report.outcomes[profile.fingerprint].status == "verified"
    assert report.skipped[digest.fingerprint].startswith(f"cluster {profile.cluster_id} already has a fix offered")
    assert deps.store.get_issue(digest.fingerprint).status is IssueStatus.TRIAGED  # type: ignore[union-attr]
    [offered] = deps.store.list_candidates(CandidateStatus.AWAITING_REVIEW)
    pr = approve(deps.store, deps.code_host, settings, offered.id, "ada")
    clone = tmp_path / "clone"
    _git(tmp_path, "clone", "-q", str(remote), str(clone))
    _git(clone, "merge", "-q", "--no-edit", f"origin/{pr.branch}")
    _git(clone, "push", "-q", "origin", "main")
    assert triage(deps.store, settings, deps.fixers, deps.sandbox_for).skipped[digest.fingerprint].startswith(
        f"cluster {profile.cluster_id} already has a fix offered")

    workers.app._deps = deps
    try:
        assert sync_pull_requests() == {offered.id: "merged"}
    finally:
        workers.app._deps = None
    assert {i.status for i in deps.store.issues_in_cluster(profile.cluster_id)} == {IssueStatus.MERGED}  # type: ignore[arg-type]


def test_a_batch_of_events_is_recorded_as_one_at_a_time_would_be(store: SqlStore) -> None:
    from pipeline.errors import InvalidInput
    from pipeline.ingest import prepare

    events = [*load_path_all("1-checkout-coupon-null.json"), *load_path_all("2-checkout-coupon-absent.json")]
    pairs = [prepare(e, InAppRules()) for e in events]
    assert store.record_events(pairs[:1]) == [True]
    assert store.record_events([pairs[0], pairs[1], pairs[1]]) == [False, True, False]
    [issue] = store.list_issues()
    assert issue.count == 2 and issue.latest_event_id == events[1].id
    wrong = (dataclasses.replace(pairs[0][0], id="other", fingerprint="x"), pairs[0][1])
    with pytest.raises(InvalidInput, match="differs from its issue"):
        store.record_events([wrong])
    assert store.record_events([]) == []


def load_path_all(name: str) -> list:  # type: ignore[type-arg]
    from pipeline.sources import load_path

    return load_path(EXAMPLES / "events" / name)


def test_an_issue_stored_before_clusters_gets_one_from_its_next_event(store: SqlStore) -> None:
    from pipeline.ingest import prepare

    first, second = (prepare(e, InAppRules()) for e in load_path_all("1-checkout-coupon-null.json")
                     + load_path_all("2-checkout-coupon-absent.json"))
    store.record_event(first[0], dataclasses.replace(first[1], cluster_id=None))
    assert store.get_issue(first[1].fingerprint).cluster_id is None  # type: ignore[union-attr]
    store.record_event(*second)
    assert store.get_issue(first[1].fingerprint).cluster_id == second[1].cluster_id  # type: ignore[union-attr]
