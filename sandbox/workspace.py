"""Workspaces: a repo at a commit plus an optional patch, materialised as a detached git worktree.

Which commit: the one the event's release names (a tag or a sha) when it resolves in the repo, else
the head of the default branch (`commit_for_release`); verification, the templates' reading of
the source and publishing all use that one commit.

A worktree shares the repo's object store, so opening one is cheap and leaves the caller's checkout
untouched. Patches are applied with `--index` so files they add count as part of the change;
files written with `write_file` (a reproduction test, say) are kept out of `diff()`.
Every git call is an explicit argv with a scrubbed environment: no shell, and no GIT_DIR or
similar inherited from whatever started us.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import structlog

from pipeline.errors import InvalidInput, PatchDoesNotApply, PermanentError

log = structlog.get_logger(__name__)

# Output must not depend on the user's git configuration (colour, prefixes, external diff tools).
_DIFF_FLAGS = ("--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/")


class GitError(PermanentError):
    """A git command failed; where a more precise error fits, callers translate it into that."""

    def __init__(self, argv: list[str], output: str) -> None:
        super().__init__(f"{' '.join(argv)}: {output}")
        self.output = output


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def git(cwd: Path, *args: str, stdin: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run git in `cwd` and return stdout; raise GitError with git's own message on failure.

    `env` adds variables (author dates, say) on top of the scrubbed environment.
    """
    argv = ["git", "-c", "core.quotepath=off", *args]
    proc = subprocess.run(
        argv, cwd=cwd, input=stdin, capture_output=True, text=True, env={**_git_env(), **(env or {})},
        check=False,
    )
    if proc.returncode != 0:
        raise GitError(argv, (proc.stderr or proc.stdout).strip())
    return proc.stdout


@dataclass
class Workspace:
    """A detached worktree of `repo_root` at `base_commit`; `path` is where the files are."""

    path: Path
    repo_root: Path
    base_commit: str
    _extra_files: set[str] = field(default_factory=set)

    def apply(self, diff: str) -> None:
        """Apply a unified diff; PatchDoesNotApply (with git's message) leaves the tree unchanged."""
        if not diff.strip():
            raise PatchDoesNotApply("the patch is empty")
        text = diff if diff.endswith("\n") else diff + "\n"
        args = ("apply", "--index", "--whitespace=nowarn")
        try:
            git(self.path, *args, "--check", "-", stdin=text)
            git(self.path, *args, "-", stdin=text)
        except GitError as exc:
            raise PatchDoesNotApply(exc.output) from exc
        log.info("workspace.patch_applied", path=str(self.path), bytes=len(text))

    def read_bytes(self, rel: str) -> bytes | None:
        """A file's bytes as the worktree has them now; None when there is no such file."""
        target = self._inside(rel)
        return target.read_bytes() if target.is_file() else None

    def write_file(self, rel: str, text: str) -> Path:
        """Write a file that is not part of the patch (a reproduction test); diff() leaves it out."""
        target = self._inside(rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        self._extra_files.add(target.relative_to(self.path).as_posix())
        return target

    def diff(self) -> str:
        """The change from the base commit as a unified diff (a/ b/ prefixes), patch files only."""
        excluded = [f":(exclude,literal){p}" for p in sorted(self._extra_files)]
        # `git diff <commit>` compares the working tree, so files the patch added (now in the index)
        # show up, while untracked files never do.
        return git(self.path, "diff", *_DIFF_FLAGS, self.base_commit, "--", ".", *excluded)

    def _inside(self, rel: str) -> Path:
        pure = PurePosixPath(rel)
        if pure.is_absolute() or ".." in pure.parts or not pure.parts or rel.strip() in ("", "."):
            raise InvalidInput(rel, "workspace paths must be relative and stay inside the workspace")
        return self.path / pure


def _resolve_commit(repo_root: Path, ref: str) -> str:
    try:
        git(repo_root, "rev-parse", "--is-inside-work-tree")
    except GitError as exc:
        raise InvalidInput(str(repo_root), f"not a git repository: {exc.output}") from exc
    try:
        return git(repo_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip()
    except GitError as exc:
        raise InvalidInput(str(repo_root), f"{ref!r} does not name a commit") from exc


def _release_refs(release: str) -> list[str]:
    """Refs a release string may name: "shop@1.4.2" -> 1.4.2, v1.4.2, shop@1.4.2, shop-1.4.2, ..."""
    names = [release, f"v{release}"]
    if "@" in release:
        package, version = release.rsplit("@", 1)
        names = [version, f"v{version}", release, f"{package}-{version}", f"{package}-v{version}"]
    refs = [f"refs/tags/{n}" for n in names if n]
    refs += [n for n in names if re.fullmatch(r"[0-9a-f]{7,40}", n)]  # a release named by its sha
    return refs


def commit_for_release(repo_root: Path, release: str | None, default_branch: str | None) -> tuple[str, str]:
    """(commit, how it was chosen): the release's tag or sha where it resolves, else the default
    branch's head (the checkout's HEAD when no default branch is given)."""
    repo_root = repo_root.resolve()
    _resolve_commit(repo_root, "HEAD")  # a clear error when this is not a git checkout
    for ref in _release_refs(release) if release else []:
        try:
            return git(repo_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip(), \
                f"release {release} -> {ref.removeprefix('refs/tags/')}"
        except GitError:
            continue
    if default_branch:
        for ref in (f"refs/heads/{default_branch}", f"refs/remotes/origin/{default_branch}"):
            try:
                return git(repo_root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").strip(), \
                    f"head of {default_branch}" + (f" (release {release} names no tag or commit)" if release else "")
            except GitError:
                continue
        raise InvalidInput(str(repo_root), f"the default branch {default_branch!r} does not exist")
    return _resolve_commit(repo_root, "HEAD"), "HEAD of the checkout" + (
        f" (release {release} names no tag or commit)" if release else "")


@contextmanager
def open_workspace(repo_root: Path, base_dir: Path, ref: str = "HEAD") -> Iterator[Workspace]:
    """A fresh detached worktree of `repo_root` at `ref` under `base_dir`, removed on exit."""
    repo_root = repo_root.resolve()
    commit = _resolve_commit(repo_root, ref)
    base_dir.mkdir(parents=True, exist_ok=True)
    path = base_dir.resolve() / f"ws-{uuid.uuid4().hex[:12]}"
    try:
        git(repo_root, "worktree", "add", "--detach", str(path), commit)
    except GitError as exc:
        raise InvalidInput(str(repo_root), f"cannot add a worktree: {exc.output}") from exc
    log.info("workspace.opened", path=str(path), commit=commit)
    try:
        yield Workspace(path=path, repo_root=repo_root, base_commit=commit)
    finally:
        _remove(repo_root, path)


def _remove(repo_root: Path, path: Path) -> None:
    try:
        git(repo_root, "worktree", "remove", "--force", "--force", str(path))
    except GitError as exc:
        # Already gone, or git refused: delete the folder ourselves; prune forgets it either way.
        log.warning("workspace.remove_failed", path=str(path), error=exc.output)
        shutil.rmtree(path, ignore_errors=True)
    git(repo_root, "worktree", "prune")
    log.info("workspace.removed", path=str(path))
