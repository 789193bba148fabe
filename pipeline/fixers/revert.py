"""The revert fixer: when the lines that crash were changed by a recent commit of the release, undo
that commit's hunks inside the crashing function (a partial revert), as one candidate per suspect.

The suspects come from `git blame` at the release's commit: the commit that last changed the crash
line first, then the other commits that last changed lines of the crashing function, newest first.
A suspect must be reachable from the release's commit (the event's release must name a tag or a
commit: without one there is no telling what shipped), younger than `revert.max_age_days` counted
back from the crash, and have a parent in which the function already existed (reverting the commit
that added the function would delete it). Only the suspect's hunks that overlap the function are
reverted, and only when each still sits in the release as the suspect left it; anything that later
commits reworked makes the revert ambiguous and the suspect is skipped. The patch is verified like
any other.

Every git call goes through sandbox.workspace.git (an explicit argv, a scrubbed environment).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import structlog

from pipeline.errors import InvalidInput
from pipeline.fixers.diffing import unified_diff
from pipeline.pysource import Undecodable, decode_source
from pipeline.records import CodeContext, ErrorEvent, Issue, Location, Patch, Review
from pipeline.settings import RevertConfig
from sandbox.workspace import GitError, commit_for_release, git

log = structlog.get_logger(__name__)

_HEADER = re.compile(r"^([0-9a-f]{40}) (\d+) (\d+)")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_CLOCK_SKEW_DAYS = 1.0  # a commit dated this much after the crash still counts (clocks differ)


@dataclass(frozen=True)
class BlameLine:
    sha: str
    orig_line: int  # the line's number in `sha`'s version of the file
    final_line: int  # its number in the blamed revision
    committed: datetime
    summary: str
    filename: str  # the file's path in `sha`
    boundary: bool  # a root commit (or the edge of a shallow history): nothing before it to restore


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    removed: tuple[str, ...]
    added: tuple[str, ...]


def blame(root: Path, commit: str, path: str) -> list[BlameLine]:
    """`git blame --line-porcelain` of the whole file at `commit`, one record per line."""
    out = git(root, "blame", "--line-porcelain", commit, "--", path)
    lines: list[BlameLine] = []
    fields: dict[str, str] = {}
    head: re.Match[str] | None = None
    for raw in out.splitlines():
        if raw.startswith("\t"):
            if head is not None:
                lines.append(BlameLine(
                    head.group(1), int(head.group(2)), int(head.group(3)),
                    datetime.fromtimestamp(int(fields.get("committer-time", "0")), UTC),
                    fields.get("summary", ""), fields.get("filename", path), "boundary" in fields))
            head, fields = None, {}
            continue
        match = _HEADER.match(raw)
        if match and head is None:
            head = match
            continue
        key, _, value = raw.partition(" ")
        fields[key] = value
    return lines


def parse_hunks(diff: str) -> list[Hunk]:
    """The hunks of a `git diff -U0` of one file."""
    hunks: list[Hunk] = []
    current: list[list[str]] | None = None
    numbers: tuple[int, int, int, int] = (0, 0, 0, 0)

    def close() -> None:
        if current is not None:
            hunks.append(Hunk(*numbers, tuple(current[0]), tuple(current[1])))

    for line in diff.splitlines():
        match = _HUNK.match(line)
        if match:
            close()
            a, b, c, d = match.groups()
            numbers = (int(a), int(b) if b is not None else 1, int(c), int(d) if d is not None else 1)
            current = [[], []]
        elif current is not None and line.startswith("-"):
            current[0].append(line[1:])
        elif current is not None and line.startswith("+"):
            current[1].append(line[1:])
    close()
    return hunks


def function_span(source: str, qualname: str) -> tuple[int, int] | None:
    """First and last line (decorators included) of the function `qualname` names, or None."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    wanted = qualname.split(".")

    def walk(body: Sequence[ast.stmt], prefix: tuple[str, ...]) -> tuple[int, int] | None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = (*prefix, node.name)
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                        list(name) == wanted or list(name[-len(wanted):]) == wanted):
                    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                    return start, node.end_lineno or node.lineno
                found = walk(node.body, name)
                if found:
                    return found
        return None

    return walk(tree.body, ())


def in_release(root: Path, sha: str, release_commit: str) -> bool:
    """Whether `sha` is reachable from the release's commit."""
    try:
        git(root, "merge-base", "--is-ancestor", sha, release_commit)
    except GitError:
        return False
    return True


class RevertFixer:
    """Proposes partial reverts of the recent release commits that last changed the crashing function."""

    name = "revert"

    def __init__(self, config: RevertConfig | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.config = config or RevertConfig()
        self._now = now or (lambda: datetime.now(UTC))

    def propose(self, issue: Issue, event: ErrorEvent, context: CodeContext, history: Sequence[Review]) -> list[Patch]:
        crash = context.crash
        if not self.config.enabled or crash is None or crash.role != "crash" or not event.release:
            return []
        root = Path(context.repo_root)
        try:
            release_commit, how = commit_for_release(root, event.release, None)
        except (InvalidInput, GitError) as exc:
            log.info("revert.no_release", reason=str(exc))
            return []
        if not how.startswith("release "):
            log.info("revert.release_unresolved", release=event.release)
            return []  # the release names no tag or commit: what shipped is unknown
        try:
            source = decode_source((root / crash.path).read_bytes(), crash.path)
            shipped = git(root, "show", f"{release_commit}:{crash.path}")
            lines = blame(root, release_commit, crash.path)
        except (Undecodable, OSError, GitError) as exc:
            log.info("revert.unreadable", path=crash.path, reason=str(exc))
            return []
        if shipped != source:
            log.info("revert.tree_is_not_the_release", path=crash.path)
            return []  # the checkout the fixers read is not the release: a patch would not apply
        span = function_span(source, crash.function) or (crash.start_line, crash.end_line)
        if not span[0] or not span[0] <= crash.line <= span[1]:
            return []
        patches: list[Patch] = []
        for suspect in self._suspects(root, release_commit, lines, crash, span, event):
            patch = self._revert(root, suspect, lines, source, crash, span, event)
            if patch is not None:
                patches.append(patch)
            if len(patches) >= self.config.max_patches:
                break
        log.info("revert.proposed", patches=len(patches), path=crash.path, line=crash.line)
        return patches

    def _age_days(self, event: ErrorEvent, committed: datetime) -> float:
        reference = event.timestamp or event.received_at or self._now()
        if reference.tzinfo is None:
            reference = reference.replace(tzinfo=UTC)
        return (reference - committed).total_seconds() / 86400

    def _suspects(self, root: Path, release_commit: str, lines: list[BlameLine], crash: Location,
                  span: tuple[int, int], event: ErrorEvent) -> list[BlameLine]:
        inside = [b for b in lines if span[0] <= b.final_line <= span[1]]
        on_line = [b for b in inside if b.final_line == crash.line]
        newest = sorted(inside, key=lambda b: b.committed, reverse=True)
        suspects: dict[str, BlameLine] = {}
        for b in (*on_line, *newest):
            if b.sha in suspects or b.boundary:
                continue
            age = self._age_days(event, b.committed)
            if not -_CLOCK_SKEW_DAYS <= age <= self.config.max_age_days:
                continue
            if not in_release(root, b.sha, release_commit):
                continue
            suspects[b.sha] = b
        return list(suspects.values())

    def _revert(self, root: Path, suspect: BlameLine, lines: list[BlameLine], source: str, crash: Location,
                span: tuple[int, int], event: ErrorEvent) -> Patch | None:
        sha, path_then = suspect.sha, suspect.filename
        try:
            then = git(root, "show", f"{sha}:{path_then}")
            before = git(root, "show", f"{sha}^:{path_then}")
            diff = git(root, "diff", "-U0", "--no-color", "--no-ext-diff", "--no-textconv", f"{sha}^", sha,
                       "--", path_then)
        except GitError:
            return None  # a root commit, or the file did not exist before it
        span_then = function_span(then, crash.function)
        if span_then is None or function_span(before, crash.function) is None:
            return None  # the commit added the function: reverting it would delete the function
        hunks = [h for h in parse_hunks(diff) if _overlaps(h, span_then)]
        if not hunks:
            return None
        newline = "\r\n" if "\r\n" in source else "\n"
        release = source.splitlines(keepends=True)
        then_lines = then.splitlines()
        where = {b.orig_line: b.final_line for b in lines if b.sha == sha}
        edits: list[tuple[int, int, list[str]]] = []  # (first index, end index, replacement)
        for hunk in hunks:
            restored = [f"{text}{newline}" for text in hunk.removed]
            if hunk.new_len:
                finals = [where.get(n) for n in range(hunk.new_start, hunk.new_start + hunk.new_len)]
                if None in finals or finals != list(range(finals[0] or 0, (finals[0] or 0) + len(finals))):
                    return None  # later commits reworked these lines: no clean revert
                first = (finals[0] or 0) - 1
                edits.append((first, first + len(finals), restored))
            else:
                anchor = _anchor(release, then_lines, hunk.new_start, span)
                if anchor is None:
                    return None
                edits.append((anchor, anchor, restored))
        for first, end, replacement in sorted(edits, reverse=True):
            release[first:end] = replacement
        new_source = "".join(release)
        if new_source == source:
            return None
        age = self._age_days(event, suspect.committed)
        return Patch(
            strategy="revert", diff=unified_diff(crash.path, source, new_source), files=(crash.path,),
            description=(f"{crash.function}: revert what {sha[:10]} ({suspect.summary[:60]!r}, "
                         f"{max(age, 0):.0f} days before the crash) changed in it"),
        )


def _overlaps(hunk: Hunk, span: tuple[int, int]) -> bool:
    if hunk.new_len:
        return hunk.new_start <= span[1] and hunk.new_start + hunk.new_len - 1 >= span[0]
    return span[0] <= hunk.new_start < span[1]  # lines deleted after line new_start


def _anchor(release: list[str], then: list[str], after: int, span: tuple[int, int]) -> int | None:
    """Where lines the suspect deleted after its line `after` go back in the release (an index), when
    that line and the next one appear exactly once, together, inside the function."""
    if after < 1 or after > len(then):
        return None
    wanted = [then[after - 1]] + ([then[after]] if after < len(then) else [])
    stripped = [line.rstrip("\r\n") for line in release]
    hits = [i for i in range(span[0] - 1, min(span[1], len(stripped)))
            if stripped[i:i + len(wanted)] == wanted]
    return hits[0] + 1 if len(hits) == 1 else None
