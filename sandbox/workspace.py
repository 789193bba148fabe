"""Workspaces: a repo at a commit plus an optional patch, materialised as a detached git worktree.

A worktree shares the repo's object store, so opening one is cheap and leaves the caller's checkout
untouched. Patches are applied with `--index` so files they add count as part of the change;
files written with `write_file` (a reproduction test, say) are kept out of `diff()`.
Every git call is an explicit argv with a scrubbed environment: no shell, and no GIT_DIR or
similar inherited from whatever started us.
"""

from __future__ import annotations

import os
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
