"""Unified diffs that `git apply` accepts, and their size."""

from __future__ import annotations

import difflib


def unified_diff(path: str, old: str, new: str, context: int = 3) -> str:
    """A diff of one file relative to the repo root, with a/ and b/ prefixes."""
    out: list[str] = []
    for line in difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}", n=context
    ):
        # difflib leaves the last line bare when the file has no final newline; git wants the marker.
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


def changed_lines(diff: str) -> int:
    """Lines added plus lines removed, headers excluded."""
    return sum(
        1
        for line in diff.splitlines()
        if line[:1] in "+-" and not line.startswith(("+++ ", "--- "))
    )


def diff_files(diff: str) -> tuple[str, ...]:
    """Repo-relative paths a diff touches, in order."""
    files: list[str] = []
    for line in diff.splitlines():
        if line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
            path = line[4:].split("\t")[0].strip()
            files.append(path[2:] if path.startswith("b/") else path)
    return tuple(dict.fromkeys(files))
