"""The code a fixer (the LLM's prompt) sees for one crash: snippets ranked by why they matter.

`fix_context` is the seam between retrieval and the fixers that read code as text. In order, while
the token budget lasts:

1. the crash function, with the crash frame's captured locals (always; trimmed to a window around
   the crash line when the whole function alone is over the budget);
2. its in-app callers outward, each with its frame's locals;
3. the repo classes and functions the exception message names in quotes, then the definitions of
   the names the stack's functions use (callees, classes, constants; for a method, its class first), found through the symbol index: the file's own definitions, its imports, `self.` in the
   method's class, else a unique definition in the repo (an attribute of an unknown receiver, or a
   name imported from outside the repo, is never guessed);
4. the top BM25 hits for the event's words that are none of the above.

Every snippet comes from a file the context policy allows (settings globs and `.autofixignore`);
when the crash site itself is excluded there is no code at all (`context.crash_excluded` says why).
Snippet text goes through the event scrubber (`scrub_text`): a secret in code reaches no model;
`redacted` marks a snippet whose text therefore differs from the file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.context.index import Symbol, SymbolIndex, build_index
from pipeline.context.policy import ContextPolicy
from pipeline.context.rank import named_in_message
from pipeline.context.search import code_search, event_query
from pipeline.pysource import Undecodable, read_source
from pipeline.records import CodeContext, ErrorEvent, Location
from pipeline.scrub import scrub_text, scrub_value

MAX_DEFINITIONS = 12
_DEFINITION_LINES = {"function": 60, "method": 60, "class": 40, "constant": 15}
_WINDOW = 12  # lines either side of the crash line when the crash function must be trimmed


@dataclass(frozen=True)
class Snippet:
    path: str  # repo-relative, POSIX separators
    start: int  # 1-based first line
    end: int  # 1-based last line, inclusive
    text: str
    why: str  # "crash", "caller", "definition of NAME", "search: TERMS" (exactly these shapes)
    function: str = ""
    line: int = 0  # the line the stack points at, 0 when none
    vars: Mapping[str, Any] = field(default_factory=dict)  # the frame's captured locals (scrubbed)
    redacted: bool = False  # a secret in the code was replaced by a marker: the text is not the file's


def tokens_of(text: str) -> int:
    return len(text) // 4 + 1  # a rough count: about four characters per token for code


_tokens = tokens_of  # the seam's first name for it


def snippet_tokens(snippet: Snippet) -> int:
    """What a snippet costs in a prompt: its code and its locals."""
    extra = tokens_of(json.dumps(dict(snippet.vars), default=str)) if snippet.vars else 0
    return tokens_of(snippet.text) + extra


def policy_for(context: CodeContext) -> ContextPolicy:
    rules = context.rules
    return ContextPolicy.load(Path(context.repo_root), rules.include, rules.exclude, rules.ignore_file)


class _Lines:
    """Files read once each, through the policy: an excluded file reads as nothing."""

    def __init__(self, root: Path, policy: ContextPolicy) -> None:
        self.root, self.policy = root, policy
        self._files: dict[str, list[str]] = {}

    def get(self, rel: str) -> list[str]:
        if rel not in self._files:
            try:
                self._files[rel] = read_source(self.root / rel).splitlines() if self.policy.allows(rel) else []
            except (OSError, Undecodable):
                self._files[rel] = []
        return self._files[rel]

    def span(self, rel: str, start: int, end: int) -> str:
        return "\n".join(self.get(rel)[start - 1 : end])


def fix_context(event: ErrorEvent, context: CodeContext, budget_tokens: int = 3000, *,
                index: SymbolIndex | None = None, policy: ContextPolicy | None = None,
                bm25_hits: int = 5, index_cache: Path | None = None) -> list[Snippet]:
    """Crash site first, callers outward, definitions they use, then BM25 hits, within the budget."""
    crash = context.crash
    if context.crash_excluded or crash is None or crash.role != "crash":
        return []  # no crash site we may show: nothing to anchor a fix, and nothing read
    root = Path(context.repo_root)
    policy = policy or policy_for(context)
    if not policy.allows(crash.path):  # a context retrieved under another policy
        return []
    frames = {(f.function.rsplit(".", 1)[-1], f.lineno): f for exc in event.exceptions for f in exc.frames}
    lines = _Lines(root, policy)
    out: list[Snippet] = []
    used = 0
    taken: list[tuple[str, int, int]] = []

    def overlaps(path: str, start: int, end: int) -> bool:
        return any(p == path and not (end < a or start > b) for p, a, b in taken)

    def add(snippet: Snippet, *, force: bool = False) -> bool:
        nonlocal used
        if not policy.allows(snippet.path) or overlaps(snippet.path, snippet.start, snippet.end):
            return False
        cost = snippet_tokens(snippet)
        if used + cost > budget_tokens and not force:
            return False
        used += cost
        out.append(snippet)
        taken.append((snippet.path, snippet.start, snippet.end))
        return True

    stack = [loc for loc in context.locations if policy.allows(loc.path)]
    for loc in stack:
        frame = frames.get((loc.function.rsplit(".", 1)[-1], loc.line))
        vars_ = scrub_value(dict(frame.vars)) if frame and frame.vars else {}
        snippet = _located(loc, vars_)
        if loc is crash and snippet_tokens(snippet) > budget_tokens:
            snippet = _trimmed(loc, vars_, budget_tokens)
        if not add(snippet, force=loc is crash) and loc is crash:
            break

    if index is None:
        index = build_index(root, policy, index_cache)
    named = [s for s in named_in_message(event, index) if (s.path, s.qualname) not in
             {(loc.path, loc.function) for loc in stack}]
    definitions = _definitions(index, stack)
    for sym in [*named, *(d for d in definitions if d not in named)]:
        limit = _DEFINITION_LINES.get(sym.kind, 40)
        end = min(sym.end, sym.start + limit - 1)
        if sym.kind == "class":
            end = _class_header_end(index, sym, end)
        text = lines.span(sym.path, sym.start, end)
        if text:
            add(_redacted(Snippet(sym.path, sym.start, end, text, f"definition of {sym.name}", sym.qualname)))
    if bm25_hits:
        query = event_query(event)
        shown = 0
        for hit in code_search(index).search(query, k=bm25_hits * 4):
            if shown >= bm25_hits:
                break
            sym = hit.symbol
            end = min(sym.end, sym.start + _DEFINITION_LINES.get(sym.kind, 40) - 1)
            text = lines.span(sym.path, sym.start, end)
            if text and add(_redacted(Snippet(sym.path, sym.start, end, text, f"search: {_terms(sym, query)}",
                                               sym.qualname))):
                shown += 1
    return out


def _redacted(snippet: Snippet) -> Snippet:
    clean = scrub_text(snippet.text)
    if clean == snippet.text:
        return snippet
    return Snippet(snippet.path, snippet.start, snippet.end, clean, snippet.why, snippet.function, snippet.line,
                   snippet.vars, redacted=True)


def _located(loc: Location, vars_: Mapping[str, Any]) -> Snippet:
    return _redacted(Snippet(loc.path, loc.start_line or loc.line, loc.end_line or loc.line, loc.source, loc.role,
                             loc.function, loc.line, vars_))


def _trimmed(loc: Location, vars_: Mapping[str, Any], budget: int) -> Snippet:
    """The crash function cut to a window around the crash line that fits the budget."""
    body = loc.source.splitlines()
    first = loc.start_line or loc.line
    at = loc.line - first
    window = _WINDOW
    while True:
        a, b = max(0, at - window), min(len(body), at + window + 1)
        # `why` stays the role (fixers match on it); start and end say which lines of the function.
        snippet = _redacted(Snippet(loc.path, first + a, first + b - 1, "\n".join(body[a:b]), loc.role,
                                    loc.function, loc.line, vars_))
        if snippet_tokens(snippet) <= budget or window == 0:
            if snippet_tokens(snippet) > budget and vars_:
                return _redacted(Snippet(snippet.path, snippet.start, snippet.end, snippet.text, snippet.why,
                                         snippet.function, snippet.line, {}))
            return snippet
        window //= 2


def _class_header_end(index: SymbolIndex, cls: Symbol, cap: int) -> int:
    """A class shown as its header: bases, docstring, class attributes, up to its first method."""
    methods = [s.start for s in index.in_file(cls.path)
               if s.kind == "method" and s.qualname.startswith(cls.qualname + ".") and s.start > cls.start]
    return min([cap, *(m - 1 for m in methods)])


def _definitions(index: SymbolIndex, stack: list[Location]) -> list[Symbol]:
    """Definitions of the names the stack's functions use, crash function first, in order of use."""
    found: list[Symbol] = []
    seen: set[tuple[str, str]] = {(loc.path, loc.function) for loc in stack}
    for loc in stack:
        sym = index.get(loc.path, loc.function)
        if sym is None:
            continue
        parts = sym.qualname.split(".")
        within = ".".join(parts[:-1]) if sym.kind == "method" else None
        owner = index.get(sym.path, within) if within else None
        if owner is not None and (owner.path, owner.qualname) not in seen:  # what `self` is
            seen.add((owner.path, owner.qualname))
            found.append(owner)
        names = list(dict.fromkeys([c for c, _ in sym.calls] + list(sym.names)))
        for name in names:
            for d in index.definitions(name, sym.path, within):
                key = (d.path, d.qualname)
                if key not in seen:
                    seen.add(key)
                    found.append(d)
            if len(found) >= MAX_DEFINITIONS:
                return found
    return found


def _terms(sym: Symbol, query: list[str]) -> str:
    mine = set(sym.tokens)
    return " ".join([t for t in dict.fromkeys(query) if t in mine][:6])
