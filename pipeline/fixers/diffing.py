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
    """Repo-relative paths a diff touches (changed, added or deleted), in order."""
    files: list[str] = []
    old: str | None = None
    for line in diff.splitlines():
        if line.startswith("--- "):
            old = line[4:].split("\t")[0].strip()
        elif line.startswith("+++ "):
            new = line[4:].split("\t")[0].strip()
            path = old if new == "/dev/null" and old is not None else new
            if path != "/dev/null":
                files.append(path[2:] if path.startswith(("a/", "b/")) else path)
    return tuple(dict.fromkeys(files))
