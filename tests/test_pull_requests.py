"""After approval, end to end on the example service: a pull request on GitHub (our own REST server on
127.0.0.1), CI failures fed back into a second attempt and pushed as a second commit, the cap handing
the pull request to a human, a squash merge synced as merged, and a recurrence in a release that
contains the merge reopening the issue. The store is SQLite, the sandbox bubblewrap, fixes are real.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from github_fake import FakeGitHub
from helpers_fix import git
from structlog.testing import capture_logs

from pipeline.ingest import ingest_paths
from pipeline.ports import CIHost, Store
from pipeline.pull_requests import awaiting_follow_up, follow_up, sync
from pipeline.records import CandidateStatus, FixCandidate, IssueStatus, PullRequest
from pipeline.regressions import check_recurrences
from pipeline.review import approve
from pipeline.settings import GitHubClientConfig, PullRequestConfig, RepoConfig, Settings
from pipeline.triage import prepare, triage
from pipeline.wiring import Deps

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EVENT = EXAMPLES / "events" / "3-profile-without-nickname.json"
TEST_COMMAND = "python -m pytest -q -p no:cacheprovider"


@dataclass
class World:
    fake: FakeGitHub
    settings: Settings
    deps: Deps
    repo: RepoConfig
    checkout: Path
    tmp: Path

    @property
    def store(self) -> Store:
        return self.deps.store

    @property
    def host(self) -> CIHost:
        host = self.deps.code_host_for(self.repo)
        assert isinstance(host, CIHost)
        return host

    def pr(self, candidate_id: str) -> PullRequest:
        pr = self.store.get_pull_request(candidate_id)
        assert pr is not None
        return pr

    def sync(self, candidate_id: str) -> str:
        return sync(self.store, self.host, self.settings, self.repo, self.pr(candidate_id))

    def follow_up(self, candidate_id: str) -> PullRequest | None:
        return follow_up(self.store, self.host, self.settings, self.deps.fixers, self.deps.sandbox_for, self.repo,
                         candidate_id, self.tmp / "work")

    def ingest_recurrence(self, event_id: str, release: str) -> set[str]:
        payload = json.loads(EVENT.read_text())
        payload.update(event_id=event_id, release=release)
        path = self.tmp / f"{event_id}.json"
        path.write_text(json.dumps(payload))
        return ingest_paths(self.store, [path], self.settings.in_app_packages).issues


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    from pipeline.demo import prepare_repo

    checkout = prepare_repo(EXAMPLES, tmp_path / "demo")[0]
    fake = FakeGitHub().start()
    # The local checkout is a clone of the GitHub repo: the same commits, so the commit a candidate is
    # verified on is one GitHub has.
    fake.seed_as_clone(checkout)
    repo = RepoConfig(name="shop", path=checkout, host="github", github_repo="acme/shop",
                      test_command=TEST_COMMAND, reviewers=["alice"])
    settings = Settings(
        home=tmp_path / "home", store_url=None, repos=[repo], in_app_packages=["shop"], sandbox="bwrap",
        github_token=fake.token, github_api_url=fake.base_url, public_base_url="https://autofix.example/",
        github_client=GitHubClientConfig(seconds_between_requests=0, seconds_between_writes=0),
        pull_requests=PullRequestConfig(ci_fix_cap=1, labels=["autofix"]),
    )
    (tmp_path / "work").mkdir()
    yield World(fake, settings, Deps(settings), repo, checkout, tmp_path)
    fake.stop()


def approved_pull_request(world: World) -> tuple[FixCandidate, PullRequest]:
    ingest_paths(world.store, [EVENT], world.settings.in_app_packages)
    triage(world.store, world.settings, world.deps.fixers, world.deps.sandbox_for, limit=5)
    [candidate] = world.store.list_candidates(CandidateStatus.AWAITING_REVIEW)
    return candidate, approve(world.store, world.deps.code_host, world.settings, candidate.id, "alice")


def fail_ci(world: World, sha: str, text: str) -> None:
    world.fake.add_check_run(sha, "lint", "success")
    world.fake.add_check_run(sha, "tests", "failure", title="1 test failed", summary="test_profile failed",
                             text=text)
    world.fake.add_status(sha, "ci/coverage", "failure", "coverage fell to 71%", "https://ci.example/cov/1")


def test_approval_publishes_the_fix_and_its_regression_test_with_a_link_back(world: World) -> None:
    candidate, pr = approved_pull_request(world)

    pull = world.fake.pull(pr.number or 0)
    assert pr.url == pull["html_url"] and world.pr(candidate.id) == pr
    for part in ("KeyError", "### Root cause", "### Evidence", "Verification log", "replays_before",
                 f"https://autofix.example/candidates/{candidate.id}"):
        assert part in pull["body"], part
    regression = f"tests/test_autofix_{candidate.issue_fingerprint[:12]}.py"
    assert f"`{regression}`" in pull["body"]
    assert world.fake.file_at(pr.commit_sha, regression) == (candidate.reproduction or "").encode()
    assert [label["name"] for label in pull["labels"]] == ["autofix"]
    assert [user["login"] for user in pull["requested_reviewers"]] == ["alice"]
    issue = world.store.get_issue(candidate.issue_fingerprint)
    assert issue is not None and issue.status is IssueStatus.PR_OPEN


def test_failing_ci_feeds_the_next_attempt_whose_fix_is_a_second_commit_then_the_cap_calls_a_human(
    world: World,
) -> None:
    first, pr = approved_pull_request(world)
    assert world.sync(first.id) == "unchanged"  # no checks yet

    fail_ci(world, pr.commit_sha, "AssertionError: display_name({'name': 'Ada'}) == 'Ada ()'")
    world.fake.add_check_run(pr.commit_sha, "docs", None, status="in_progress")
    assert world.sync(first.id) == "unchanged"  # a verdict is not in while a check still runs
    world.fake.check_runs[pr.commit_sha][-1].update(status="completed", conclusion="success")

    assert world.sync(first.id) == "ci_failed"
    assert world.sync(first.id) == "unchanged"  # read once per head commit
    [hint] = world.store.hints_for(first.issue_fingerprint)
    assert hint.source == "ci" and hint.ref == f"ci:{pr.commit_sha}" and hint.candidate_id == first.id
    for part in ("'tests' (failure)", "1 test failed", "display_name({'name': 'Ada'})",
                 "'ci/coverage' (failure) (https://ci.example/cov/1)", "coverage fell to 71%"):
        assert part in hint.text, part
    assert awaiting_follow_up(world.pr(first.id))

    with capture_logs() as logs:
        pushed = world.follow_up(first.id)

    assert pushed is not None and pushed.ci_rounds == 1 and pushed.commit_sha != pr.commit_sha
    attempt = next(e for e in logs if e["event"] == "issue.fix_attempted")
    assert (attempt["hints"], attempt["tried"]) == (1, 1)  # the CI output went in; the first patch stayed out
    second = world.store.get_candidate(pushed.current_candidate_id)
    assert second is not None and second.id != first.id and second.status is CandidateStatus.PUBLISHED
    assert second.patch.id != first.patch.id
    assert world.fake.refs["refs/heads/" + pr.branch] == pushed.commit_sha
    assert world.fake.commits[pushed.commit_sha]["parents"] == [pr.commit_sha]  # a new commit, same branch
    assert f"Autofix-Candidate: {second.id}" in world.fake.commits[pushed.commit_sha]["message"]
    assert len(world.fake.pulls) == 1 and not world.fake.comments
    assert world.follow_up(first.id) == pushed  # a redelivered follow-up does nothing
    issue = world.store.get_issue(first.issue_fingerprint)
    assert issue is not None and issue.status is IssueStatus.PR_OPEN

    fail_ci(world, pushed.commit_sha, "AssertionError: still wrong")
    assert world.sync(first.id) == "needs_human"  # one commit pushed after a failure: the cap

    pull = world.fake.pulls[pr.number or 0]
    assert "autofix:needs-human" in pull["labels"]
    [comment] = world.fake.comments[pr.number or 0]
    assert "needs a human decision" in comment and "AssertionError: still wrong" in comment
    assert "autofix pushed 1 commit" in comment
    assert world.pr(first.id).needs_human
    assert world.sync(first.id) == "unchanged" and len(world.fake.comments[pr.number or 0]) == 1


def test_no_new_verified_fix_after_a_ci_failure_hands_the_pull_request_to_a_human(world: World) -> None:
    first, pr = approved_pull_request(world)
    world.deps.fixers.clear()  # a deployment whose fixers have nothing more for this crash
    fail_ci(world, pr.commit_sha, "AssertionError")
    assert world.sync(first.id) == "ci_failed"

    flagged = world.follow_up(first.id)

    assert flagged is not None and flagged.needs_human and flagged.commit_sha == pr.commit_sha
    assert world.fake.refs["refs/heads/" + pr.branch] == pr.commit_sha
    [comment] = world.fake.comments[pr.number or 0]
    assert "found no new verified fix after CI failed: no fixer has a patch" in comment
    assert "autofix:needs-human" in world.fake.pulls[pr.number or 0]["labels"]
    assert world.follow_up(first.id) == flagged and len(world.fake.comments[pr.number or 0]) == 1


def test_a_squash_merge_is_synced_as_merged_and_a_recurrence_in_a_release_with_it_reopens_the_issue(
    world: World,
) -> None:
    candidate, pr = approved_pull_request(world)
    base = pr.base_sha or ""
    squash = world.fake.merge(pr.number or 0, "squash")

    assert world.sync(candidate.id) == "merged"
    merged = world.pr(candidate.id)
    assert (merged.state, merged.merge_commit_sha) == ("merged", squash)
    issue = world.store.get_issue(candidate.issue_fingerprint)
    assert issue is not None and issue.status is IssueStatus.MERGED
    assert [o.kind for o in world.store.outcomes()] == ["approved", "merged"]

    # The deployment's checkout fetches main and tags its releases: 1.4.2 before the fix, 1.5.0 after.
    world.fake.export_to(world.checkout)
    git(world.checkout, "tag", "v1.4.2", base)
    git(world.checkout, "tag", "v1.5.0", squash)

    touched = world.ingest_recurrence("0" * 32, "shop@1.4.2")  # an old build still running
    assert check_recurrences(world.store, world.settings, touched) == []
    assert world.store.get_issue(candidate.issue_fingerprint).status is IssueStatus.MERGED  # type: ignore[union-attr]

    touched = world.ingest_recurrence("1" * 32, "shop@1.5.0")
    with capture_logs() as logs:
        reopened = check_recurrences(world.store, world.settings, touched)

    assert reopened == [candidate.issue_fingerprint]
    issue = world.store.get_issue(candidate.issue_fingerprint)
    assert issue is not None and issue.status is IssueStatus.TRIAGED and issue.count == 3
    assert world.pr(candidate.id).regressed_at is not None
    assert world.store.get_candidate(candidate.id).status is CandidateStatus.REGRESSED  # type: ignore[union-attr]
    assert [e["release"] for e in logs if e["event"] == "fix.regressed"] == ["shop@1.5.0"]
    assert [o.kind for o in world.store.outcomes()] == ["approved", "merged", "regressed"]
    assert check_recurrences(world.store, world.settings, touched) == []  # once
    prepared = prepare(world.store, world.settings, issue, world.tmp / "work")
    assert not isinstance(prepared, str) and candidate.patch.id in prepared[1].tried
