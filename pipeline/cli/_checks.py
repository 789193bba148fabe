"""Argument checks the commands share, done before any work: one InvalidInput line each (exit 2)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import InvalidInput


def git_toplevel(path: Path) -> Path | None:
    """The top folder of the git checkout holding `path`, or None when it is in none."""
    from sandbox.workspace import GitError, git

    try:
        return Path(git(path, "rev-parse", "--show-toplevel").strip()).resolve()
    except (GitError, OSError):
        return None


def checkout(path: Path, option: str = "--repo") -> Path:
    """`path`, resolved, when it is the top folder of a git checkout with at least one commit."""
    where = f"{option} {path}"
    if not path.exists():
        raise InvalidInput(where, "no such folder")
    if not path.is_dir():
        raise InvalidInput(where, "not a folder")
    root = path.resolve()
    top = git_toplevel(root)
    if top is None:
        raise InvalidInput(where, "not a git checkout (patches are verified in a git worktree of its HEAD)")
    if top != root:
        raise InvalidInput(where, f"is inside the git checkout {top}; pass its top folder")
    from sandbox.workspace import GitError, git

    try:
        git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    except GitError:
        raise InvalidInput(where, "the checkout has no commit yet") from None
    return root


def existing_file(path: Path, option: str) -> Path:
    if not path.exists():
        raise InvalidInput(f"{option} {path}", "no such file")
    if not path.is_file():
        raise InvalidInput(f"{option} {path}", "not a file")
    return path


def path_maps(values: Sequence[str]) -> dict[str, str]:
    """`PREFIX=REPOPATH` pairs: a stack-trace path prefix and the repo-relative folder it stands for."""
    mappings: dict[str, str] = {}
    for value in values:
        prefix, sep, repo_path = value.partition("=")
        if not sep or not prefix.strip():
            raise InvalidInput(f"--path-map {value!r}", "expected PREFIX=REPOPATH, such as /app/=src/")
        if Path(repo_path).is_absolute():
            raise InvalidInput(f"--path-map {value!r}", "REPOPATH is relative to the repo's top folder")
        mappings[prefix] = repo_path
    return mappings


def empty_or_new_folder(path: Path, option: str) -> Path:
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InvalidInput(f"{option} {path}", "exists and is not an empty folder")
    return path
