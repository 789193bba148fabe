"""Unified diffs that `git apply` accepts, and their size."""

from __future__ import annotations

import difflib
import re


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


_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+\d+(?:,\d+)? @@")


def changed_old_lines(diff: str) -> dict[str, set[int]]:
    """Per repo path, the lines of the old file a diff removes or changes, and for pure additions the
    old line they follow (the first line when they come before it)."""
    changed: dict[str, set[int]] = {}
    path: str | None = None
    old_line = 0
    for line in diff.splitlines():
        if line.startswith("--- "):
            path = None
            continue
        if line.startswith("+++ "):
            name = line[4:].split("\t")[0].strip()
            path = name[2:] if name.startswith(("a/", "b/")) else name
            continue
        match = _HUNK.match(line)
        if match:
            old_line = int(match.group(1))
            continue
        if path is None or path == "/dev/null":
            continue
        if line.startswith("-"):
            changed.setdefault(path, set()).add(old_line)
            old_line += 1
        elif line.startswith("+"):
            changed.setdefault(path, set()).add(max(old_line - 1, 1))
        elif line.startswith(" "):
            old_line += 1
    return changed
