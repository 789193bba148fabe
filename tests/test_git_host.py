"""The git code host against a real bare remote: pushed branches, idempotent commits, PR states."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from helpers_fix import WHEN, git, init_repo

from pipeline.adapters.git_host import GitCodeHost
from pipeline.errors import PatchDoesNotApply, TransientError
from pipeline.fixers.diffing import unified_diff
from pipeline.records import Patch, PullRequest
from pipeline.settings import RepoConfig

OLD = "def title(doc):\n    return doc.get('t').upper()\n"
NEW = "def title(doc):\n    return (doc.get('t') or '').upper()\n"
PATCH = Patch(strategy="template:get_fallback", diff=unified_diff("shop/app.py", OLD, NEW),
              files=("shop/app.py",), description="title: default to empty")


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    seed = init_repo(tmp_path / "seed", {"shop/app.py": OLD, "README": "shop\n"})
    bare = tmp_path / "remote.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    return bare


@pytest.fixture
def repo(remote: Path) -> RepoConfig:
    return RepoConfig(name="shop", remote_url=str(remote))


@pytest.fixture
def host(tmp_path: Path) -> GitCodeHost:
    return GitCodeHost(tmp_path / "work")


def _open(host: GitCodeHost, repo: RepoConfig, branch: str = "autofix/c1", candidate: str = "c1",
          patch: Patch = PATCH) -> PullRequest:
    return host.open_pull_request(repo, branch, patch, "Fix title crash", "body", candidate, WHEN)


def bare_git(remote: Path, *args: str) -> str:
    return git(remote, *args).stdout.strip()


def test_pull_request_is_a_pushed_branch_whose_commit_holds_the_patch(
    host: GitCodeHost, repo: RepoConfig, remote: Path, tmp_path: Path
) -> None:
    main = bare_git(remote, "rev-parse", "refs/heads/main")

    pr = _open(host, repo)

    assert (pr.branch, pr.repo, pr.state, pr.candidate_id) == ("autofix/c1", "shop", "open", "c1")
    assert bare_git(remote, "rev-parse", "refs/heads/autofix/c1") == pr.commit_sha
    assert bare_git(remote, "rev-parse", f"{pr.commit_sha}^") == main
    assert git(remote, "show", f"{pr.commit_sha}:shop/app.py").stdout == NEW
    assert bare_git(remote, "diff", "--name-only", main, pr.commit_sha) == "shop/app.py"
    message = bare_git(remote, "log", "-1", "--format=%an <%ae>|%aI|%cI|%B", pr.commit_sha)
    assert message.startswith("autofix <autofix@localhost>|2024-05-01T12:00:00+00:00|2024-05-01T12:00:00+00:00|")
    assert "Fix title crash\n\ntitle: default to empty\n\nAutofix-Candidate: c1" in message
    assert bare_git(remote, "rev-parse", "refs/heads/main") == main  # the default branch is untouched
    assert not (tmp_path / "work" / "publish" / "c1").exists()  # the scratch checkout is removed


def test_publishing_twice_with_the_same_creation_time_gives_the_same_commit(
    host: GitCodeHost, repo: RepoConfig, remote: Path
) -> None:
    first = _open(host, repo)
    second = _open(host, repo)
    assert second.commit_sha == first.commit_sha
    assert bare_git(remote, "rev-parse", "refs/heads/autofix/c1") == first.commit_sha
    later = host.open_pull_request(repo, "autofix/c1", PATCH, "Fix title crash", "body", "c1",
                                   WHEN + timedelta(seconds=1))
    assert later.commit_sha != first.commit_sha  # the date really is part of the commit


def test_state_is_open_then_merged_once_main_contains_the_commit(
    host: GitCodeHost, repo: RepoConfig, remote: Path, tmp_path: Path
) -> None:
    pr = _open(host, repo)
    assert host.pull_request_state(repo, pr) == "open"

    clone = tmp_path / "maintainer"
    git(tmp_path, "clone", "-q", str(remote), str(clone))
    git(clone, "merge", "-q", "--no-ff", "-m", "Merge autofix", "origin/autofix/c1")
    git(clone, "push", "-q", "origin", "main")

    assert host.pull_request_state(repo, pr) == "merged"


def test_state_is_closed_when_the_branch_is_deleted_without_merging(
    host: GitCodeHost, repo: RepoConfig, remote: Path
) -> None:
    pr = _open(host, repo)
    git(remote, "branch", "-D", "autofix/c1")
    assert host.pull_request_state(repo, pr) == "closed"


def test_merged_stays_merged_after_the_branch_is_deleted(
    host: GitCodeHost, repo: RepoConfig, remote: Path
) -> None:
    pr = _open(host, repo)
    git(remote, "update-ref", "refs/heads/main", pr.commit_sha)  # a fast-forward merge
    git(remote, "branch", "-D", "autofix/c1")
    assert host.pull_request_state(repo, pr) == "merged"


def test_patch_that_does_not_apply_is_a_permanent_error_and_pushes_nothing(
    host: GitCodeHost, repo: RepoConfig, remote: Path
) -> None:
    stale = Patch(strategy="llm", diff=unified_diff("shop/app.py", "something else\n", "x\n"),
                  files=("shop/app.py",), description="d")
    with pytest.raises(PatchDoesNotApply):
        _open(host, repo, patch=stale)
    assert "autofix/c1" not in bare_git(remote, "branch", "--list")


def test_unreachable_remote_is_a_transient_error(host: GitCodeHost, tmp_path: Path) -> None:
    gone = RepoConfig(name="gone", remote_url=str(tmp_path / "nowhere.git"))
    with pytest.raises(TransientError):
        _open(host, gone)
    pr = PullRequest(candidate_id="c1", repo="gone", branch="autofix/c1", title="t", body="b", url="u",
                     commit_sha="0" * 40)
    with pytest.raises(TransientError):
        host.pull_request_state(gone, pr)


def test_local_path_serves_as_the_remote_when_no_url_is_set(
    host: GitCodeHost, remote: Path
) -> None:
    pr = _open(host, RepoConfig(name="shop", path=remote))
    assert bare_git(remote, "rev-parse", "refs/heads/autofix/c1") == pr.commit_sha


def test_a_branch_starts_at_the_commit_the_patch_was_verified_on_even_after_main_moved(
    host: GitCodeHost, repo: RepoConfig, remote: Path, tmp_path: Path
) -> None:
    verified_on = bare_git(remote, "rev-parse", "refs/heads/main")
    later = tmp_path / "later"
    git(tmp_path, "clone", "-q", str(remote), str(later))
    (later / "README").write_text("shop, moved on\n")
    git(later, "commit", "-q", "-am", "main moves on")
    git(later, "push", "-q", "origin", "main")

    pr = host.open_pull_request(repo, "autofix/c2", PATCH, "Fix", "body", "c2", WHEN, base_sha=verified_on)

    assert bare_git(remote, "rev-parse", f"{pr.commit_sha}^") == verified_on
    assert git(remote, "show", f"{pr.commit_sha}:README").stdout == "shop\n"

    with pytest.raises(PatchDoesNotApply, match="is not on .*refusing to publish it on another"):
        host.open_pull_request(repo, "autofix/c3", PATCH, "Fix", "body", "c3", WHEN, base_sha="1" * 40)
