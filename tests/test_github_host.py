"""The GitHub code host through PyGitHub against a GitHub REST API of our own on 127.0.0.1.

The server (github_fake.py) keeps real git objects in memory and answers in GitHub's documented
shapes; PyGitHub is pointed at it by base URL, as at GitHub Enterprise.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github_fake import FakeGitHub
from helpers_fix import WHEN
from structlog.testing import capture_logs

from pipeline.adapters.github_host import GitHubCodeHost
from pipeline.errors import (
    CodeHostAuthFailed,
    CodeHostRefused,
    CodeHostUnavailable,
    ConfigError,
    PatchDoesNotApply,
    PermanentError,
    RateLimited,
)
from pipeline.fixers.diffing import unified_diff
from pipeline.ports import CIHost
from pipeline.records import Patch, PullRequest
from pipeline.settings import (
    GitHubAppConfig,
    GitHubClientConfig,
    PullRequestConfig,
    RepoConfig,
    Settings,
)
from pipeline.wiring import Deps

OLD = "def title(doc):\n    return doc.get('t').upper()\n"
NEW = "def title(doc):\n    return (doc.get('t') or '').upper()\n"
OTHER = "def title(doc):\n    t = doc.get('t')\n    return t.upper() if t else ''\n"
PATCH = Patch(strategy="template:get_fallback", diff=unified_diff("shop/app.py", OLD, NEW),
              files=("shop/app.py",), description="title: default to empty")
REGRESSION = {"tests/test_autofix_fp1.py": "def test_title():\n    assert True\n"}
REPO = RepoConfig(name="shop", host="github", github_repo="acme/shop", reviewers=["alice"],
                  team_reviewers=["backend"])
FILES = {"shop/app.py": OLD, "shop/__init__.py": "", "README.md": "shop\n", "bin/run": "#!/bin/sh\n"}


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    server.seed(FILES)
    yield server
    server.stop()


def settings_for(fake: FakeGitHub, **changes: object) -> Settings:
    values: dict[str, object] = {
        "github_token": fake.token, "github_api_url": fake.base_url,
        "github_client": GitHubClientConfig(seconds_between_requests=0, seconds_between_writes=0,
                                            max_rate_limit_wait_s=5),
        "pull_requests": PullRequestConfig(draft=True, labels=["autofix", "bug"]),
        **changes,
    }
    return Settings(**values)  # type: ignore[arg-type]


def host_for(settings: Settings) -> GitHubCodeHost:
    host = Deps(settings).github_host
    assert isinstance(host, GitHubCodeHost)
    return host


@pytest.fixture
def host(fake: FakeGitHub) -> GitHubCodeHost:
    return host_for(settings_for(fake))


def publish(host: GitHubCodeHost, patch: Patch = PATCH, candidate: str = "c1") -> PullRequest:
    return host.open_pull_request(REPO, "autofix/c1", patch, "Fix title crash", "the body", candidate, WHEN,
                                  files=REGRESSION)


def test_approval_opens_a_draft_pull_request_from_a_commit_made_through_the_git_data_api(
    fake: FakeGitHub, host: GitHubCodeHost
) -> None:
    main = fake.refs["refs/heads/main"]

    pr = publish(host)

    assert fake.refs["refs/heads/autofix/c1"] == pr.commit_sha
    commit = fake.commits[pr.commit_sha]
    assert commit["parents"] == [main] and pr.base_sha == main
    assert fake.file_at(pr.commit_sha, "shop/app.py") == NEW.encode()
    assert fake.file_at(pr.commit_sha, "tests/test_autofix_fp1.py") == REGRESSION["tests/test_autofix_fp1.py"].encode()
    assert fake.paths_at(pr.commit_sha) - fake.paths_at(main) == {"tests/test_autofix_fp1.py"}
    assert fake.file_at(pr.commit_sha, "bin/run") == fake.file_at(main, "bin/run")  # the rest untouched
    assert commit["message"] == "Fix title crash\n\ntitle: default to empty\n\nAutofix-Candidate: c1\n"
    assert commit["author"] == {"name": "autofix", "email": "autofix@localhost", "date": "2024-05-01T12:00:00Z"}
    # Blobs, a tree on the base tree, a commit, the ref: no clone, no contents API.
    assert [b["encoding"] for b in fake.calls("POST", r"/git/blobs$")] == ["base64", "base64"]
    assert fake.calls("POST", r"/git/trees$")[0]["base_tree"] == commit_tree(fake, main)
    assert fake.calls("POST", r"/git/refs$") == [{"ref": "refs/heads/autofix/c1", "sha": pr.commit_sha}]

    pull = fake.pulls[1]
    assert (pr.number, pr.url, pr.state) == (1, "https://github.example/acme/shop/pull/1", "open")
    assert (pull["title"], pull["body"], pull["draft"]) == ("Fix title crash", "the body", True)
    assert (pull["head"]["ref"], pull["base"]["ref"]) == ("autofix/c1", "main")
    assert pull["labels"] == ["autofix", "bug"]
    assert (pull["requested_reviewers"], pull["requested_teams"]) == (["alice"], ["backend"])
    assert fake.refs["refs/heads/main"] == main


def commit_tree(fake: FakeGitHub, sha: str) -> str:
    tree: str = fake.commits[sha]["tree"]
    return tree


def test_a_file_mode_is_kept_and_a_deleted_file_leaves_the_tree(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    fake.seed({**FILES, "bin/run": "#!/bin/sh\necho old\n"}, message="scripts")
    deletion = Patch(strategy="llm", files=("README.md", "bin/run"),
                     diff="--- a/README.md\n+++ /dev/null\n@@ -1 +0,0 @@\n-shop\n"
                          + unified_diff("bin/run", "#!/bin/sh\necho old\n", "#!/bin/sh\necho new\n"),
                     description="d")
    pr = host.open_pull_request(REPO, "autofix/c2", deletion, "t", "b", "c2", WHEN)
    assert fake.file_at(pr.commit_sha, "README.md") is None
    assert fake.file_at(pr.commit_sha, "bin/run") == b"#!/bin/sh\necho new\n"


def test_a_rerun_after_a_crash_meets_the_existing_branch_and_finds_the_pull_request_it_opened(
    fake: FakeGitHub, host: GitHubCodeHost
) -> None:
    first = publish(host)
    fake.seed({**FILES, "CHANGES": "main moved on meanwhile\n"}, message="someone merged something")

    with capture_logs() as logs:
        again = publish(host)  # the worker died before the store saved the first answer

    assert again == first and again.base_sha == fake.commits[first.commit_sha]["parents"][0]
    assert len(fake.pulls) == 1
    assert len(fake.calls("POST", r"/git/refs$", status=422)) == 1  # "Reference already exists"
    assert len(fake.calls("POST", r"/pulls$")) == 1  # found by listing, not opened twice
    assert {"branch.found_existing", "pull_request.found_existing"} <= {e["event"] for e in logs}
    assert fake.pulls[1]["labels"] == ["autofix", "bug"]  # labels and reviews are asked again, harmlessly


def test_a_rerun_after_a_crash_between_branch_and_pull_request_opens_the_pull_request(
    fake: FakeGitHub, host: GitHubCodeHost
) -> None:
    fake.fail_next("POST", r"/pulls$", 502, {"message": "Server Error"})
    with pytest.raises(CodeHostUnavailable, match="502"):
        publish(host)
    assert "refs/heads/autofix/c1" in fake.refs and not fake.pulls

    pr = publish(host)
    assert pr.number == 1 and len(fake.pulls) == 1


def test_a_branch_of_the_same_name_that_autofix_did_not_make_is_left_alone(
    fake: FakeGitHub, host: GitHubCodeHost
) -> None:
    fake.seed({**FILES, "x.py": "x = 1\n"}, branch="autofix/c1", message="someone else's work")
    theirs = fake.refs["refs/heads/autofix/c1"]
    with pytest.raises(PermanentError, match="is not autofix's commit for candidate c1"):
        publish(host)
    assert fake.refs["refs/heads/autofix/c1"] == theirs and not fake.pulls


def test_bad_credentials_are_a_permanent_error_that_says_what_to_check(fake: FakeGitHub) -> None:
    host = host_for(settings_for(fake, github_token="ghp_wrong"))
    with pytest.raises(CodeHostAuthFailed, match="401 Bad credentials.*AUTOFIX_GITHUB_TOKEN") as caught:
        publish(host)
    assert isinstance(caught.value, ConfigError)
    assert set(fake.refs) == {"refs/heads/main"} and not fake.calls("POST", r"/git/blobs$")


def test_a_rate_limit_is_waited_out_until_its_reset_and_the_call_retried(
    fake: FakeGitHub, host: GitHubCodeHost
) -> None:
    fake.rate_limited("POST", r"/git/trees$", reset_in_s=1)

    with capture_logs() as logs:
        pr = publish(host)

    assert fake.refs["refs/heads/autofix/c1"] == pr.commit_sha
    trees = fake.calls("POST", r"/git/trees$")
    assert len(trees) == 2 and trees[0] == trees[1]
    waits = [e for e in logs if e["event"] == "github.rate_limited"]
    assert len(waits) == 1 and 0 < waits[0]["wait_s"] <= 3 and waits[0]["what"] == "creating a tree"


def test_a_secondary_rate_limit_is_waited_out_for_its_retry_after(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    fake.fail_next("POST", r"/pulls$", 403, {"message": "You have exceeded a secondary rate limit. Please wait "
                                             "a few minutes before you try again."}, lambda: {"retry-after": "1"})
    with capture_logs() as logs:
        pr = publish(host)
    assert pr.number == 1
    assert [e["wait_s"] for e in logs if e["event"] == "github.rate_limited"] == [1.0]


def test_a_rate_limit_longer_than_the_bounded_wait_is_a_transient_error_saying_when_to_retry(
    fake: FakeGitHub, host: GitHubCodeHost
) -> None:
    fake.rate_limited("POST", r"/git/blobs$", reset_in_s=600)
    with pytest.raises(RateLimited) as caught:
        publish(host)
    wait = (caught.value.retry_at - WHEN.now(caught.value.retry_at.tzinfo)).total_seconds()
    assert 590 < wait < 610
    assert len(fake.calls("POST", r"/git/blobs$")) == 1 and "refs/heads/autofix/c1" not in fake.refs


def test_server_errors_are_transient(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    fake.fail_next("GET", r"/git/ref/heads/main$", 503, {"message": "Service Unavailable"})
    with pytest.raises(CodeHostUnavailable, match="503"):
        publish(host)


def test_a_stale_patch_does_not_apply_and_nothing_is_pushed(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    stale = Patch(strategy="llm", diff=unified_diff("shop/app.py", "something else\n", "x\n"),
                  files=("shop/app.py",), description="d")
    with pytest.raises(PatchDoesNotApply):
        publish(host, stale)
    assert set(fake.refs) == {"refs/heads/main"}


def test_a_reviewer_who_cannot_be_asked_does_not_undo_the_pull_request(fake: FakeGitHub) -> None:
    host = host_for(settings_for(fake))
    stranger = REPO.model_copy(update={"reviewers": ["mallory"], "team_reviewers": []})
    with capture_logs() as logs:
        pr = host.open_pull_request(stranger, "autofix/c1", PATCH, "t", "b", "c1", WHEN)
    assert pr.number == 1 and fake.pulls[1]["requested_reviewers"] == []
    assert any(e["event"] == "pull_request.reviewers_refused" for e in logs)


def test_a_squash_merged_pull_request_is_merged_by_githubs_flag_with_its_merge_commit(
    fake: FakeGitHub, host: GitHubCodeHost
) -> None:
    pr = publish(host)
    assert host.pull_request_status(REPO, pr).state == "open"

    squash = fake.merge(1, "squash")

    status = host.pull_request_status(REPO, pr)
    assert (status.state, status.merge_commit_sha) == ("merged", squash)
    assert fake.commits[squash]["parents"] == [pr.base_sha]  # ancestry would never have found pr.commit_sha
    assert host.pull_request_state(REPO, pr) == "merged"


def test_a_rebase_merge_is_merged_and_a_closed_pull_request_is_closed(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    pr = publish(host)
    other = host.open_pull_request(REPO, "autofix/c9", PATCH, "t", "b", "c9", WHEN)
    fake.merge(1, "rebase")
    assert host.pull_request_state(REPO, pr) == "merged"

    fake.close(2)
    status = host.pull_request_status(REPO, other)
    assert (status.state, status.merge_commit_sha) == ("closed", None)


def test_failing_check_runs_and_statuses_are_read_with_their_output(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    pr = publish(host)
    fake.add_check_run(pr.commit_sha, "lint", "success")
    fake.add_check_run(pr.commit_sha, "tests", "failure", title="2 tests failed", summary="test_title failed",
                       text="AssertionError: expected 'T'")
    fake.add_status(pr.commit_sha, "ci/jenkins", "error", "build broke", "https://ci.example/7")

    report = host.checks(REPO, pr)

    assert report.sha == pr.commit_sha and not report.pending
    assert [(f.kind, f.name, f.conclusion) for f in report.failures] == [
        ("check_run", "tests", "failure"), ("status", "ci/jenkins", "error")]
    assert report.failures[0].details == "2 tests failed\ntest_title failed\nAssertionError: expected 'T'"
    assert report.failures[0].url == "https://github.example/acme/shop/runs/2"
    assert (report.failures[1].details, report.failures[1].url) == ("build broke", "https://ci.example/7")

    fake.add_check_run(pr.commit_sha, "slow", None, status="in_progress")
    assert host.checks(REPO, pr).pending


def test_a_pushed_commit_replaces_the_first_patch_on_the_same_branch_once(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    assert isinstance(host, CIHost)
    pr = publish(host)
    second = Patch(strategy="template:none_guard", diff=unified_diff("shop/app.py", OLD, OTHER),
                   files=("shop/app.py",), description="title: guard None")

    sha = host.push_commit(REPO, pr, second, "Fix title crash", "c2", WHEN + timedelta(hours=1), files=REGRESSION)

    assert fake.refs["refs/heads/autofix/c1"] == sha and fake.commits[sha]["parents"] == [pr.commit_sha]
    assert fake.file_at(sha, "shop/app.py") == OTHER.encode()  # the new patch on the base, not on the old one
    assert host.pull_request_status(REPO, pr).head_sha == sha
    assert host.push_commit(REPO, pr, second, "Fix title crash", "c2", WHEN + timedelta(hours=1)) == sha
    assert len(fake.calls("PATCH", r"/git/refs/heads/autofix/c1$")) == 1


def test_a_pull_request_is_flagged_for_a_human_with_a_label_and_a_comment(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    pr = publish(host)
    host.flag_for_human(REPO, pr, "autofix:needs-human", "CI still fails; this needs a human decision.")
    assert fake.pulls[1]["labels"] == ["autofix", "bug", "autofix:needs-human"]
    assert fake.comments[1] == ["CI still fails; this needs a human decision."]


def test_a_github_app_installation_token_is_minted_from_the_apps_private_key(
    fake: FakeGitHub, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "app.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    fake.app = (4242, public, 99)
    host = host_for(settings_for(fake, github_token=None, github_app=GitHubAppConfig(
        app_id=4242, installation_id=99, private_key_path=pem)))

    pr = publish(host)

    assert pr.number == 1 and len(fake.issued_tokens) == 1
    assert len(fake.calls("POST", r"/app/installations/99/access_tokens$")) == 1  # one token, reused


def test_a_github_repo_without_credentials_is_a_configuration_error(fake: FakeGitHub) -> None:
    with pytest.raises(ConfigError, match="AUTOFIX_GITHUB_TOKEN"):
        host_for(settings_for(fake, github_token=None))
    with pytest.raises(ConfigError, match="app_id, installation_id and private_key_path"):
        host_for(settings_for(fake, github_token=None, github_app=GitHubAppConfig(app_id=1)))


def test_blob_content_comes_back_wrapped_in_lines_and_still_decodes(fake: FakeGitHub, host: GitHubCodeHost) -> None:
    big = "".join(f"line {i}\n" for i in range(200))
    fake.seed({**FILES, "shop/app.py": big + OLD})
    patch = Patch(strategy="template:x", diff=unified_diff("shop/app.py", big + OLD, big + NEW),
                  files=("shop/app.py",), description="d")
    pr = host.open_pull_request(REPO, "autofix/big", patch, "t", "b", "c3", WHEN)
    assert fake.file_at(pr.commit_sha, "shop/app.py") == (big + NEW).encode()
    served = fake._blob_json(fake._flatten(commit_tree(fake, pr.base_sha or ""))["shop/app.py"][1])
    assert "\n" in served["content"].rstrip("\n")  # wrapped at 76 characters, as GitHub does
    assert base64.b64decode(served["content"]) == (big + OLD).encode()


def test_an_unreachable_api_is_transient_and_an_unknown_repo_is_refused(fake: FakeGitHub) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    nowhere = host_for(settings_for(fake, github_api_url=f"http://127.0.0.1:{closed}/api/v3",
                                    github_client=GitHubClientConfig(timeout_s=5, seconds_between_requests=0,
                                                                     seconds_between_writes=0)))
    with pytest.raises(CodeHostUnavailable, match="GitHub unreachable"):
        publish(nowhere)

    missing = REPO.model_copy(update={"github_repo": "acme/gone"})
    with pytest.raises(CodeHostRefused) as caught:
        host_for(settings_for(fake)).open_pull_request(missing, "autofix/c1", PATCH, "t", "b", "c1", WHEN)
    assert caught.value.status == 404 and isinstance(caught.value, PermanentError)
