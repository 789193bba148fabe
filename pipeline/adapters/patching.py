"""Apply a unified diff to file contents held in memory, for code hosts that publish without a clone.

`git apply` does the applying (the same applier verification used, so a patch that verified applies
the same way here), in a scratch folder holding only the files the diff touches. The folder is no
repository and git is told not to look above it, so nothing outside it is read or written.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from pipeline.errors import InvalidInput, PatchDoesNotApply
from sandbox.workspace import GitError, git


def touched_paths(diff: str) -> list[str]:
    """Repo-relative paths the diff reads or writes (a/ and b/ sides, /dev/null left out), in order."""
    found: list[str] = []
    for line in diff.splitlines():
        if not line.startswith(("--- ", "+++ ")):
            continue
        name = line[4:].split("\t", 1)[0].strip()
        if name == "/dev/null" or len(name) < 3 or name[1] != "/":
            continue
        path = name[2:]
        if path not in found:
            found.append(_safe(path))
    return found


def _safe(path: str) -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise InvalidInput("patch", f"path {path!r} leaves the repository")
    return pure.as_posix()


def apply_to_contents(diff: str, originals: Mapping[str, bytes | None]) -> dict[str, bytes | None]:
    """The content after the patch of each path in `originals` (None: absent before / deleted after)."""
    with tempfile.TemporaryDirectory(prefix="autofix-apply-") as scratch:
        root = Path(scratch)
        for rel, data in originals.items():
            if data is not None:
                target = root / _safe(rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
        text = diff if diff.endswith("\n") else diff + "\n"
        try:
            git(root, "apply", "--whitespace=nowarn", "-", stdin=text,
                env={"GIT_CEILING_DIRECTORIES": str(root.parent)})
        except GitError as exc:
            raise PatchDoesNotApply(exc.output) from exc
        return {rel: (root / rel).read_bytes() if (root / rel).is_file() else None for rel in originals}
