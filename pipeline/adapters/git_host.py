"""A code host that is just a git remote: the pull request is a pushed branch.

Commits are made with the candidate's creation time as author and committer date, so publishing the
same candidate twice (a redelivered task) produces the same commit and the push is a no-op. The
branch starts at the commit the candidate was verified on, not wherever the default branch has moved
since: what is pushed is exactly what was proven.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

import structlog

from pipeline.errors import ConfigError, PatchDoesNotApply, TransientError
from pipeline.ports import PullRequestStatus
from pipeline.records import Patch, PullRequest
from pipeline.settings import RepoConfig
from sandbox.workspace import GitError, git

log = structlog.get_logger(__name__)

AUTHOR = ("autofix", "autofix@localhost")


class GitCodeHost:
    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir

    def _remote(self, repo: RepoConfig) -> str:
        remote = repo.remote_url or (str(repo.path) if repo.path else None)
        if not remote:
            raise ConfigError(f"repo {repo.name!r} has neither remote_url nor path")
        return remote

    def open_pull_request(
        self,
        repo: RepoConfig,
        branch: str,
        patch: Patch,
        title: str,
        body: str,
        candidate_id: str,
        created_at: datetime,
        *,
        base_sha: str | None = None,
        files: Mapping[str, str] | None = None,
    ) -> PullRequest:
        """Push `branch` with one commit: the patch and `files`, on `base_sha` (else the default head)."""
        remote = self._remote(repo)
        checkout = self.work_dir / "publish" / candidate_id
        shutil.rmtree(checkout, ignore_errors=True)
        checkout.parent.mkdir(parents=True, exist_ok=True)
        try:
            git(checkout.parent, "clone", "--quiet", "--branch", repo.default_branch, remote, str(checkout))
        except GitError as exc:
            raise TransientError(f"cannot clone {remote}: {exc.output}") from exc
        try:
            start = ["HEAD"]
            if base_sha:
                try:
                    git(checkout, "cat-file", "-e", f"{base_sha}^{{commit}}")
                except GitError as exc:
                    raise PatchDoesNotApply(f"the commit the patch was verified on ({base_sha[:12]}) is not "
                                            f"on {remote}: refusing to publish it on another") from exc
                start = [base_sha]
            git(checkout, "checkout", "--quiet", "-B", branch, *start)
            try:
                git(checkout, "apply", "--index", "--whitespace=nowarn", "-", stdin=patch.diff)
            except GitError as exc:
                raise PatchDoesNotApply(exc.output) from exc
            base = git(checkout, "rev-parse", "HEAD^{commit}").strip() if base_sha is None else base_sha
            for rel, text in (files or {}).items():
                target = checkout / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
                git(checkout, "add", "--", rel)
            date = created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            identity = {
                "GIT_AUTHOR_NAME": AUTHOR[0],
                "GIT_AUTHOR_EMAIL": AUTHOR[1],
                "GIT_COMMITTER_NAME": AUTHOR[0],
                "GIT_COMMITTER_EMAIL": AUTHOR[1],
                "GIT_AUTHOR_DATE": date,
                "GIT_COMMITTER_DATE": date,
            }
            message = f"{title}\n\n{patch.description}\n\nAutofix-Candidate: {candidate_id}\n"
            git(checkout, "commit", "--quiet", "--no-verify", "-F", "-", stdin=message, env=identity)
            sha = git(checkout, "rev-parse", "HEAD").strip()
            git(checkout, "push", "--quiet", "--force", "origin", f"HEAD:refs/heads/{branch}")
        except GitError as exc:
            raise TransientError(f"git failed: {exc}") from exc
        finally:
            shutil.rmtree(checkout, ignore_errors=True)
        log.info("pull_request.opened", repo=repo.name, branch=branch, sha=sha)
        return PullRequest(
            candidate_id=candidate_id,
            repo=repo.name,
            branch=branch,
            title=title,
            body=body,
            url=f"{remote}#{branch}",
            commit_sha=sha,
            base_sha=base,
        )

    def pull_request_state(self, repo: RepoConfig, pr: PullRequest) -> str:
        return self.pull_request_status(repo, pr).state

    def pull_request_status(self, repo: RepoConfig, pr: PullRequest) -> PullRequestStatus:
        """merged if the default branch contains the commit; closed if the branch is gone; else open.

        A plain remote records no merges, so ancestry is all there is: a squash or rebase merge,
        which rewrites the commit, reads as closed here. On GitHub the host's own flag decides.
        """
        remote = self._remote(repo)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            heads = git(self.work_dir, "ls-remote", "--heads", remote)
        except GitError as exc:
            raise TransientError(f"cannot list branches of {remote}: {exc.output}") from exc
        refs = {line.split("\t")[1]: line.split("\t")[0] for line in heads.splitlines() if "\t" in line}
        default_sha, head = refs.get(f"refs/heads/{repo.default_branch}"), refs.get(f"refs/heads/{pr.branch}")
        if default_sha:
            probe = self.work_dir / "probe" / pr.candidate_id
            shutil.rmtree(probe, ignore_errors=True)
            probe.parent.mkdir(parents=True, exist_ok=True)
            try:
                git(probe.parent, "clone", "--quiet", "--bare", "--branch", repo.default_branch, remote, str(probe))
                merged = _is_ancestor(probe, pr.commit_sha, default_sha)
            except GitError as exc:
                raise TransientError(f"cannot clone {remote}: {exc.output}") from exc
            finally:
                shutil.rmtree(probe, ignore_errors=True)
            if merged:
                return PullRequestStatus("merged", merge_commit_sha=pr.commit_sha, head_sha=head)
        return PullRequestStatus("open" if head else "closed", head_sha=head)


def _is_ancestor(repo: Path, commit: str, tip: str) -> bool:
    """Whether `tip` contains `commit`; a commit the clone lacks (never merged) is not contained."""
    try:
        return git(repo, "merge-base", commit, tip).strip() == commit
    except GitError:
        return False
