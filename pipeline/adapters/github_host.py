"""GitHub as the code host: pull requests made through the API (PyGitHub), with no local clone.

Publishing reads the patched files from the base commit's trees and blobs, applies the patch in
memory (patching.py), and writes through the Git Data API: blobs, a tree on the base tree, a commit
whose author and committer dates are the candidate's creation time (so the same candidate always
makes the same commit), then the branch ref. A re-run after a crash meets 422 "Reference already
exists", checks that the branch head is autofix's commit for this candidate, and finds the pull
request it opened instead of opening a second. Labels and review requests are repeated on a re-run;
GitHub treats both as idempotent.

State comes from the pull request itself: `merged` (true for squash and rebase merges too, which
ancestry would miss) and `merge_commit_sha`. CI is read from the check runs and the combined commit
status of the commit autofix pushed last.

Every call goes through GitHubCalls (github_client.py), the one place GitHub's errors are translated.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any

import structlog
from github import Github, InputGitAuthor, InputGitTreeElement
from github.GitTree import GitTree
from github.PullRequest import PullRequest as GitHubPull
from github.Repository import Repository

from pipeline.adapters.github_client import GitHubCalls
from pipeline.adapters.patching import apply_to_contents, touched_paths
from pipeline.errors import CodeHostRefused, PermanentError
from pipeline.ports import CheckFailure, ChecksReport, PullRequestStatus
from pipeline.records import Patch, PullRequest
from pipeline.settings import PullRequestConfig, RepoConfig

log = structlog.get_logger(__name__)

AUTHOR = ("autofix", "autofix@localhost")
TRAILER = "Autofix-Candidate"
FAILED_CONCLUSIONS = frozenset({"failure", "timed_out", "action_required", "startup_failure"})
DETAILS_LIMIT = 4000  # characters of one check's output kept as feedback


def commit_message(title: str, patch: Patch, candidate_id: str) -> str:
    return f"{title}\n\n{patch.description}\n\n{TRAILER}: {candidate_id}\n"


class GitHubCodeHost:
    """The CodeHost and CIHost ports on one GitHub (or GitHub Enterprise) API."""

    def __init__(self, github: Github, calls: GitHubCalls, config: PullRequestConfig) -> None:
        self._github = github
        self._call = calls
        self._config = config

    def _repo(self, repo: RepoConfig) -> Repository:
        if not repo.github_repo:
            raise PermanentError(f"repo {repo.name!r} has no github_repo")
        return self._github.get_repo(repo.github_repo)  # lazy (see make_github): no request yet

    # --- publishing ------------------------------------------------------------------------------

    def open_pull_request(
        self, repo: RepoConfig, branch: str, patch: Patch, title: str, body: str, candidate_id: str,
        created_at: datetime, *, base_sha: str | None = None, files: Mapping[str, str] | None = None,
    ) -> PullRequest:
        gh = self._repo(repo)
        base = base_sha or self._call(f"reading {repo.default_branch} of {repo.github_repo}",
                                      lambda: gh.get_git_ref(f"heads/{repo.default_branch}").object.sha)
        sha = self._commit(gh, base, base, patch, files or {}, commit_message(title, patch, candidate_id),
                           created_at)
        head, base = self._create_branch(gh, repo, branch, sha, base, candidate_id)
        pull = self._find_or_open_pull(gh, repo, branch, title, body)
        self._label_and_request_reviews(gh, repo, pull)
        log.info("pull_request.opened", repo=repo.name, number=pull.number, branch=branch, sha=head)
        return PullRequest(candidate_id=candidate_id, repo=repo.name, branch=branch, title=title, body=body,
                           url=pull.html_url, commit_sha=head, number=pull.number, base_sha=base,
                           created_at=pull.created_at.astimezone(UTC))

    def _commit(self, gh: Repository, base_sha: str, parent_sha: str, patch: Patch, files: Mapping[str, str],
                message: str, created_at: datetime) -> str:
        """A commit on `parent_sha` whose tree is `base_sha`'s tree with the patch and `files` applied."""
        base_commit = self._call(f"reading commit {base_sha}", lambda: gh.get_git_commit(base_sha))
        base_tree = self._call(f"reading tree of {base_sha}", lambda: gh.get_git_tree(base_commit.tree.sha))
        originals = self._read(gh, base_tree, touched_paths(patch.diff))
        patched = apply_to_contents(patch.diff, {path: data for path, (_, data) in originals.items()})
        changes: dict[str, tuple[str, bytes | None]] = {
            path: (originals[path][0], data) for path, data in patched.items() if data != originals[path][1]}
        changes.update({path: ("100644", text.encode()) for path, text in files.items()})
        elements = [self._element(gh, path, mode, data) for path, (mode, data) in sorted(changes.items())]
        tree = self._call("creating a tree", lambda: gh.create_git_tree(elements, base_tree))
        parent = base_commit if parent_sha == base_sha else self._call(
            f"reading commit {parent_sha}", lambda: gh.get_git_commit(parent_sha))
        date = created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        who = InputGitAuthor(AUTHOR[0], AUTHOR[1], date)
        commit = self._call("creating a commit", lambda: gh.create_git_commit(message, tree, [parent], who, who))
        return commit.sha

    def _read(self, gh: Repository, root: GitTree, paths: list[str]) -> dict[str, tuple[str, bytes | None]]:
        """(mode, content) of each path in the tree, reading one folder listing at a time; None: absent."""
        listings: dict[str, dict[str, Any]] = {"": {e.path: e for e in root.tree}}

        def listing(folder: str) -> dict[str, Any]:
            if folder not in listings:
                parent, _, name = folder.rpartition("/")
                entry = listing(parent).get(name)
                if entry is None or entry.type != "tree":
                    listings[folder] = {}
                else:
                    tree = self._call(f"reading folder {folder}", partial(gh.get_git_tree, entry.sha))
                    listings[folder] = {e.path: e for e in tree.tree}
            return listings[folder]

        found: dict[str, tuple[str, bytes | None]] = {}
        for path in paths:
            folder, _, name = path.rpartition("/")
            entry = listing(folder).get(name)
            if entry is None or entry.type != "blob":
                found[path] = ("100644", None)
                continue
            blob = self._call(f"reading {path}", partial(gh.get_git_blob, entry.sha))
            data = base64.b64decode(blob.content) if blob.encoding == "base64" else blob.content.encode()
            found[path] = (entry.mode, data)
        return found

    def _element(self, gh: Repository, path: str, mode: str, data: bytes | None) -> InputGitTreeElement:
        if data is None:
            return InputGitTreeElement(path, mode, "blob", sha=None)  # GitHub deletes a path given no sha
        encoded = base64.b64encode(data).decode()
        blob = self._call(f"creating a blob for {path}", lambda: gh.create_git_blob(encoded, "base64"))
        return InputGitTreeElement(path, mode, "blob", sha=blob.sha)

    def _create_branch(self, gh: Repository, repo: RepoConfig, branch: str, sha: str, base: str,
                       candidate_id: str) -> tuple[str, str]:
        """Create the branch at `sha`: (head, base). If it exists already (a re-run), its own head and
        base, once its head is checked to be autofix's commit for this candidate."""
        try:
            self._call(f"creating branch {branch}", lambda: gh.create_git_ref(f"refs/heads/{branch}", sha))
            return sha, base
        except CodeHostRefused as exc:
            if exc.status != 422 or "already exists" not in exc.message.lower():
                raise
        head = self._call(f"reading branch {branch}", lambda: gh.get_git_ref(f"heads/{branch}").object.sha)
        commit = self._call(f"reading commit {head}", lambda: gh.get_git_commit(head))
        if f"{TRAILER}: {candidate_id}" not in commit.message or not commit.parents:
            raise PermanentError(f"branch {branch} exists on {repo.github_repo} and its head {head[:10]} is not "
                                 f"autofix's commit for candidate {candidate_id}")
        log.info("branch.found_existing", branch=branch, sha=head)
        return head, commit.parents[0].sha  # made before the default branch moved on, perhaps

    def _find_or_open_pull(self, gh: Repository, repo: RepoConfig, branch: str, title: str,
                           body: str) -> GitHubPull:
        head = f"{repo.github_repo.split('/')[0] if repo.github_repo else ''}:{branch}"

        def existing() -> GitHubPull | None:
            return next(iter(gh.get_pulls(state="all", head=head, base=repo.default_branch)), None)

        found = self._call(f"looking for a pull request from {branch}", existing)
        if found is not None:
            log.info("pull_request.found_existing", number=found.number, branch=branch)
            return found
        try:
            return self._call(f"opening a pull request from {branch}", lambda: gh.create_pull(
                base=repo.default_branch, head=branch, title=title, body=body, draft=self._config.draft))
        except CodeHostRefused as exc:
            again = self._call(f"looking for a pull request from {branch}", existing)
            if exc.status != 422 or again is None:
                raise
            return again  # opened meanwhile by a concurrent run

    def _label_and_request_reviews(self, gh: Repository, repo: RepoConfig, pull: GitHubPull) -> None:
        if self._config.labels:
            self._call(f"labelling #{pull.number}", lambda: pull.add_to_labels(*self._config.labels))
        if repo.reviewers or repo.team_reviewers:
            try:
                self._call(f"requesting reviews on #{pull.number}", lambda: pull.create_review_request(
                    reviewers=repo.reviewers, team_reviewers=repo.team_reviewers))
            except CodeHostRefused as exc:
                # A reviewer who cannot be asked (the author, no access) must not undo the pull request.
                log.warning("pull_request.reviewers_refused", number=pull.number, error=str(exc))

    # --- state and CI ----------------------------------------------------------------------------

    def _pull(self, repo: RepoConfig, pr: PullRequest) -> GitHubPull:
        gh = self._repo(repo)
        if pr.number is None:
            raise PermanentError(f"pull request of candidate {pr.candidate_id} has no number on GitHub")
        number = pr.number
        return self._call(f"reading pull request #{number}", lambda: gh.get_pull(number))

    def pull_request_state(self, repo: RepoConfig, pr: PullRequest) -> str:
        return self.pull_request_status(repo, pr).state

    def pull_request_status(self, repo: RepoConfig, pr: PullRequest) -> PullRequestStatus:
        pull = self._pull(repo, pr)
        if pull.merged or pull.merged_at is not None:
            return PullRequestStatus("merged", pull.merge_commit_sha, pull.head.sha)
        return PullRequestStatus("closed" if pull.state == "closed" else "open", None, pull.head.sha)

    def checks(self, repo: RepoConfig, pr: PullRequest) -> ChecksReport:
        """Check runs and commit statuses of the commit autofix pushed last."""
        gh, sha = self._repo(repo), pr.commit_sha
        commit = gh.get_commit(sha)  # lazy: no request until a list is read
        runs = self._call(f"reading check runs of {sha[:10]}", lambda: list(commit.get_check_runs()))
        combined = self._call(f"reading statuses of {sha[:10]}", lambda: commit.get_combined_status())
        pending = any(run.status != "completed" for run in runs) or any(
            s.state == "pending" for s in combined.statuses)
        failures = [CheckFailure("check_run", run.name, run.conclusion or "", _run_details(run.output),
                                 run.html_url or run.details_url)
                    for run in runs if run.status == "completed" and run.conclusion in FAILED_CONCLUSIONS]
        failures += [CheckFailure("status", s.context, s.state, (s.description or "")[:DETAILS_LIMIT],
                                  s.target_url) for s in combined.statuses if s.state in ("failure", "error")]
        return ChecksReport(sha, pending, tuple(failures))

    def push_commit(
        self, repo: RepoConfig, pr: PullRequest, patch: Patch, title: str, candidate_id: str,
        created_at: datetime, *, files: Mapping[str, str] | None = None,
    ) -> str:
        if pr.base_sha is None:
            raise PermanentError(f"pull request #{pr.number} has no recorded base commit")
        gh, branch, base = self._repo(repo), pr.branch, pr.base_sha
        ref = self._call(f"reading branch {branch}", lambda: gh.get_git_ref(f"heads/{branch}"))
        head = self._call(f"reading branch {branch}", lambda: ref.object.sha)
        if f"{TRAILER}: {candidate_id}" in self._call(f"reading commit {head}",
                                                       lambda: gh.get_git_commit(head).message):
            return head  # pushed before a crash: the same candidate is not committed twice
        sha = self._commit(gh, base, head, patch, files or {}, commit_message(title, patch, candidate_id),
                           created_at)
        self._call(f"moving branch {branch}", lambda: ref.edit(sha, force=False))
        log.info("pull_request.commit_pushed", number=pr.number, branch=branch, sha=sha)
        return sha

    def flag_for_human(self, repo: RepoConfig, pr: PullRequest, label: str, comment: str) -> None:
        pull = self._pull(repo, pr)
        self._call(f"labelling #{pull.number}", lambda: pull.add_to_labels(label))
        self._call(f"commenting on #{pull.number}", lambda: pull.create_issue_comment(comment))
        log.info("pull_request.flagged_for_human", number=pull.number, label=label)


def _run_details(output: Any) -> str:
    parts = [getattr(output, name, None) for name in ("title", "summary", "text")] if output else []
    return "\n".join(p for p in parts if p)[-DETAILS_LIMIT:]
