"""The pull-request tasks in real worker processes, against our GitHub REST server on 127.0.0.1:
publish, a CI failure read by the periodic sync and followed up with a second commit by the fix
queue, the cap handing the pull request to a human, then a squash merge synced as merged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
from github_fake import FakeGitHub
from test_workers import EVENT, TEST_COMMAND, Deployment, broker, client, send, wait_for  # noqa: F401  (fixtures used below)

from pipeline.records import CandidateStatus, IssueStatus


@dataclass
class GitHubDeployment(Deployment):
    fake: FakeGitHub = field(default_factory=FakeGitHub)

    def configure(self, test_command: str) -> None:
        super().configure(test_command)
        self.fake.seed_as_clone(self.root / "repo")  # the checkout is a clone: same commits
        with (self.root / "autofix.toml").open("a") as toml:
            toml.write('host = "github"\ngithub_repo = "acme/shop"\nreviewers = ["alice"]\n\n'
                       "[github_client]\nseconds_between_requests = 0\nseconds_between_writes = 0\n\n"
                       "[pull_requests]\nci_fix_cap = 1\n")

    def env(self) -> dict[str, str]:
        return {**super().env(), "AUTOFIX_GITHUB_TOKEN": self.fake.token,
                "AUTOFIX_GITHUB_API_URL": self.fake.base_url}


@pytest.fixture
def github_deployment(tmp_path: Path, broker: redis.Redis) -> Iterator[GitHubDeployment]:  # noqa: F811
    deployment = GitHubDeployment(tmp_path)
    deployment.fake.start()
    yield deployment
    for worker in deployment.workers:
        worker.stop()
    deployment.fake.stop()


def fail_ci(fake: FakeGitHub, sha: str, text: str) -> None:
    fake.add_check_run(sha, "tests", "failure", title="1 test failed", text=text)


@pytest.mark.slow
def test_ci_feedback_runs_in_the_workers_from_the_periodic_sync_to_a_second_commit_and_a_human(
    github_deployment: GitHubDeployment, client: Any  # noqa: F811
) -> None:
    deployment, fake = github_deployment, github_deployment.fake
    deployment.configure(TEST_COMMAND)
    worker = deployment.start_worker()
    ingested = send(client, "ingest_event", json.loads(EVENT.read_text()), EVENT.name).get(timeout=30)
    (fingerprint,) = ingested["enqueued"]
    store = deployment.store()
    [first] = wait_for("a candidate awaiting review",
                       lambda: store.list_candidates(CandidateStatus.AWAITING_REVIEW, fingerprint))

    published = send(client, "publish_candidate", first.id, "alice").get(timeout=60)
    pr = store.get_pull_request(first.id)
    assert pr is not None and pr.number == 1 and published["url"] == pr.url
    assert fake.refs[f"refs/heads/{pr.branch}"] == pr.commit_sha

    fail_ci(fake, pr.commit_sha, "AssertionError: display_name({'name': 'Ada'})")
    assert send(client, "sync_pull_requests").get(timeout=60) == {first.id: "ci_failed"}
    second_sha = wait_for("the follow-up's commit on the branch",
                          lambda: (sha := fake.refs[f"refs/heads/{pr.branch}"]) != pr.commit_sha and sha, 180)
    pushed = wait_for("the pull request to record it",
                      lambda: (p := store.get_pull_request(first.id)) and p.commit_sha == second_sha and p)
    assert pushed.ci_rounds == 1 and fake.commits[second_sha]["parents"] == [pr.commit_sha]
    # The worker logs the follow-up just after it saves it: wait for the line, not only for the row.
    wait_for("the worker's follow-up log line", lambda: worker.events("pull_request.followed_up"))
    assert len(worker.events("pull_request.followed_up")) == 1

    fail_ci(fake, second_sha, "AssertionError: still wrong")
    assert send(client, "sync_pull_requests").get(timeout=60) == {first.id: "needs_human"}
    assert "autofix:needs-human" in fake.pulls[1]["labels"] and len(fake.comments[1]) == 1
    assert send(client, "sync_pull_requests").get(timeout=60) == {}

    fake.merge(1, "squash")
    assert send(client, "sync_pull_requests").get(timeout=60) == {first.id: "merged"}
    merged = store.get_pull_request(first.id)
    assert merged is not None and merged.merge_commit_sha == fake.pulls[1]["merge_commit_sha"]
    issue = store.get_issue(fingerprint)
    assert issue is not None and issue.status is IssueStatus.MERGED
    kinds = [o.kind for o in store.outcomes()]
    assert kinds == ["approved", "merged"]
    assert store.get_candidate(merged.current_candidate_id).status is CandidateStatus.PUBLISHED  # type: ignore[union-attr]
    store.close()
