"""The code a fixer (the LLM's prompt) sees for one crash: snippets ranked by why they matter.

`fix_context` is the seam between retrieval and the fixers that read code as text. This first shape
gives the crash function and its in-app callers (what `retrieve` located) with each frame's captured
locals; the context engine adds definitions of the names they use, BM25 hits and the team's context
policy behind the same signature.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.records import CodeContext, ErrorEvent


@dataclass(frozen=True)
class Snippet:
    path: str  # repo-relative, POSIX separators
    start: int  # 1-based first line
    end: int  # 1-based last line, inclusive
    text: str
    why: str  # "crash", "caller", "definition of NAME", "search: TERMS"
    function: str = ""
    line: int = 0  # the line the stack points at, 0 when none
    vars: Mapping[str, Any] = field(default_factory=dict)  # the frame's captured locals (scrubbed)


def _tokens(text: str) -> int:
    return len(text) // 4 + 1  # a rough count: about four characters per token for code


def fix_context(event: ErrorEvent, context: CodeContext, budget_tokens: int = 3000) -> list[Snippet]:
    """Crash site first, then callers outward, while the budget lasts (the crash site always)."""
    frames = {(f.function.rsplit(".", 1)[-1], f.lineno): f for exc in event.exceptions for f in exc.frames}
    snippets: list[Snippet] = []
    used = 0
    for loc in context.locations:
        cost = _tokens(loc.source)
        if snippets and used + cost > budget_tokens:
            break
        used += cost
        frame = frames.get((loc.function.rsplit(".", 1)[-1], loc.line))
        snippets.append(Snippet(loc.path, loc.start_line or loc.line, loc.end_line or loc.line, loc.source,
                                loc.role, loc.function, loc.line, dict(frame.vars) if frame else {}))
    return snippets
