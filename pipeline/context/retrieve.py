"""Retrieve the code that matters for an event: the crashing function and its in-app callers.

Frames come from the stack trace; each in-app frame is mapped to a repo file and then to the innermost
function enclosing its line. When the checkout has drifted from the release that crashed, the frame's
context line is looked for near the reported line so that locations still point at the right code.
Files are read in their declared encoding (PEP 263); one that does not decode is skipped, and the
unmatched frames say why.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from pipeline.context.mapping import RepoIndex, map_frame
from pipeline.context.policy import ContextPolicy
from pipeline.pysource import Undecodable, read_source
from pipeline.records import CodeContext, ContextRules, ErrorEvent, Frame, Location

log = structlog.get_logger(__name__)

_DRIFT_WINDOW = 30  # lines searched either side when the context line moved


@dataclass(frozen=True)
class FunctionSpan:
    qualname: str
    start: int
    end: int


def function_spans(source: str) -> list[FunctionSpan]:
    """Every function in a module with its qualified name and line span (decorators included)."""
    spans: list[FunctionSpan] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                start = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                spans.append(FunctionSpan(name, start, child.end_lineno or child.lineno))
                visit(child, f"{name}.<locals>.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return spans


def enclosing_function(spans: list[FunctionSpan], line: int) -> FunctionSpan | None:
    inside = [s for s in spans if s.start <= line <= s.end]
    return min(inside, key=lambda s: s.end - s.start) if inside else None


def _settle_line(lines: list[str], frame: Frame) -> int | None:
    """The line the frame means: its lineno if the context line agrees, else the nearest match."""
    lineno = frame.lineno
    wanted = (frame.context_line or "").strip()
    # A line past the end (a checkout that drifted) is usable only if its context line is found nearby.
    if lineno and 0 < lineno <= len(lines) and (not wanted or lines[lineno - 1].strip() == wanted):
        return lineno
    if not wanted:
        return None
    center = lineno or 0
    matches = [i + 1 for i, text in enumerate(lines) if text.strip() == wanted]
    near = [m for m in matches if not lineno or abs(m - center) <= _DRIFT_WINDOW]
    return min(near, key=lambda m: abs(m - center)) if near else None


def _locate(root: Path, rel: str, frame: Frame, role: str) -> Location | None:
    source = read_source(root / rel)  # Undecodable: the caller skips the frame and says why
    lines = source.splitlines()
    line = _settle_line(lines, frame)
    if line is None:
        return None
    try:
        spans = function_spans(source)
    except SyntaxError:
        return None
    span = enclosing_function(spans, line)
    if span is None:  # module-level code: the frame is "<module>"
        return Location(rel, frame.function, line, line, line, lines[line - 1], role)
    body = "\n".join(lines[span.start - 1 : span.end])
    return Location(rel, span.qualname, line, span.start, span.end, body, role)


def retrieve(
    event: ErrorEvent, repo_root: Path, mappings: Mapping[str, str] | None = None,
    index: RepoIndex | None = None, policy: ContextPolicy | None = None,
) -> CodeContext:
    """Crash site first, then callers outward; then frames of the chain's other exceptions.

    A frame whose file the context policy excludes gives no location (its code is never read); it
    is listed in `excluded_frames` with the rule, and when it is the crash site, `crash_excluded`
    says so and the first location left is only a caller, so no fixer gets code to patch.
    """
    index = index or RepoIndex.build(repo_root)
    policy = policy or ContextPolicy.load(repo_root)
    locations: list[Location] = []
    unmatched: list[str] = []
    excluded: list[str] = []
    crash_excluded = ""
    seen: set[tuple[str, str]] = set()
    chain = list(reversed(event.exceptions))  # escaping exception first
    for depth, exc in enumerate(chain):
        frames = [f for f in exc.frames if f.in_app] or list(exc.frames)
        for position, frame in enumerate(reversed(frames)):
            rel = map_frame(frame, index, mappings)
            if rel is None:
                unmatched.append(f"{frame.filename}:{frame.lineno} in {frame.function}")
                continue
            role = "crash" if depth == 0 and position == 0 else "caller"
            why = policy.why_excluded(rel)
            if why is not None:
                excluded.append(f"{rel}:{frame.lineno} in {frame.function} ({why})")
                if role == "crash":
                    crash_excluded = f"the crash site {rel} is excluded from code context ({why})"
                continue
            try:
                loc = _locate(repo_root, rel, frame, role)
            except Undecodable as exc:
                unmatched.append(f"{frame.filename}:{frame.lineno} in {frame.function} (skipped: {exc})")
                continue
            if loc is None or (loc.path, loc.function) in seen:
                continue
            seen.add((loc.path, loc.function))
            locations.append(loc)
    # The crash site must be the escaping exception's innermost frame; if that one did not map, the
    # first location found is only a caller and must not be mistaken for the crash.
    if locations and locations[0].role != "crash":
        log.info("context.crash_frame_unmapped", first=locations[0].path)
    log.info("context.retrieved", locations=len(locations), unmatched=len(unmatched), excluded=len(excluded))
    rules = ContextRules(policy.include, policy.exclude, policy.ignore_file)
    return CodeContext(str(repo_root), tuple(locations), tuple(unmatched), excluded_frames=tuple(excluded),
                       crash_excluded=crash_excluded, rules=rules)
