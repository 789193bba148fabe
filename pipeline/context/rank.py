"""The localisation list: stack distance fused with BM25.

Stack-only ranks the functions on the stack, crash site first, callers outward. Fused scores each
candidate (every function on the stack, and the top BM25 hits) as

    stack(d) + named + weight * bm25 / best_bm25

with stack(d) = 1 / (1 + d) for a function at distance d from the crash site (0 off the stack; a
crash frame that raised on purpose, `contract.raises_on_purpose`, trades distances with its caller) and
`named` = 0.6 for a repo class or function that the exception message names in quotes (the class in
"'ClassScope' object has no attribute 'x'"), so BM25 reorders the stack where the event's words
point elsewhere and brings in code the stack never reached. When the crash is about a None read
from an attribute of the method's receiver, the few functions that construct that receiver's class
come in at `makers` (0.4): the object was built holding the None. Which of the two is used is the
`context.ranking` setting; its default is whichever won on bench/crashes (README, "Localisation").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from pipeline.context.contract import raises_on_purpose
from pipeline.context.index import Symbol, SymbolIndex
from pipeline.context.search import CodeSearch, event_query
from pipeline.records import CodeContext, ErrorEvent, Location


@dataclass(frozen=True)
class FusionWeights:
    # Chosen on bench/crashes (a grid of 0..2, 0..10 hits, message weight 1..5): at 0.4 BM25 reorders
    # only near-ties; from 0.6 on it starts pulling a caller above a crash site the real fix changed.
    bm25: float = 0.4
    hits: int = 5  # BM25 hits taken as candidates besides the stack
    # A class or function of the repo that the exception message names in quotes ("'ClassScope'
    # object has no attribute ..."): ranked just below the crash site, above the first caller.
    named: float = 0.6
    # A function that builds the crash method's receiver, when the crash line used an attribute of
    # `self` that held None ("'NoneType' object is not subscriptable"): the object was made with a
    # None it should not hold. Below the first caller (0.5), above the second (0.33).
    makers: float = 0.4


DEFAULT_WEIGHTS = FusionWeights()


def _source(index: SymbolIndex, sym: Symbol) -> str:
    try:
        lines = (index.root / sym.path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[sym.start - 1 : sym.end])


_QUOTED = re.compile(r"""['"]([A-Za-z_][A-Za-z0-9_]*)['"]""")


def named_in_message(event: ErrorEvent, index: SymbolIndex, limit: int = 3) -> list[Symbol]:
    """Repo classes and functions that an exception message names in quotes (test code excluded)."""
    found: list[Symbol] = []
    for exc in event.exceptions:
        for name in dict.fromkeys(_QUOTED.findall(exc.value or "")):
            defs = [s for s in index.named(name)
                    if s.kind in ("class", "function") and "<locals>" not in s.qualname and not s.is_test]
            if 0 < len(defs) <= limit:
                found.extend(d for d in defs if d not in found)
    return found


_SELF_ATTR = re.compile(r"\bself\.([A-Za-z_]\w*)\b(?!\s*\()")


def receiver_makers(event: ErrorEvent, context: CodeContext, index: SymbolIndex, limit: int = 3) -> list[Symbol]:
    """Repo functions (tests excluded, the class's own methods too) that construct the class of the
    crash method, when the crash is about a None and its line reads an attribute of `self`; none when
    more than `limit` functions do (then the evidence points nowhere in particular)."""
    exc, crash = event.primary, context.crash
    if exc is None or crash is None or "NoneType" not in (exc.value or "") or "." not in crash.function:
        return []
    lines = crash.source.split("\n")
    offset = crash.line - (crash.start_line or crash.line)
    if not 0 <= offset < len(lines) or not _SELF_ATTR.search(lines[offset]):
        return []
    owner = crash.function.rsplit(".", 1)[0]
    makers: dict[tuple[str, str], Symbol] = {}
    for sym, _ in index.callers(owner.rsplit(".", 1)[-1]):
        if sym.is_test or sym.qualname.startswith(owner + ".") or sym.kind not in ("function", "method"):
            continue
        makers.setdefault((sym.path, sym.qualname), sym)
    return list(makers.values()) if len(makers) <= limit else []


def stack_ranking(context: CodeContext) -> list[Location]:
    return list(context.locations)


def _distances(event: ErrorEvent, context: CodeContext) -> list[int]:
    """Each stack location's distance for scoring: its place on the stack, except that a crash frame
    that raised on purpose (pipeline/context/contract.py) trades places with its first caller."""
    order = list(range(len(context.locations)))
    if len(order) > 1 and context.locations[1].role == "caller" and raises_on_purpose(event, context.crash):
        order[0], order[1] = 1, 0
    return order


def fused_ranking(event: ErrorEvent, context: CodeContext, index: SymbolIndex, search: CodeSearch | None = None,
                  weights: FusionWeights = DEFAULT_WEIGHTS, query: Sequence[str] | None = None) -> list[Location]:
    search = search or CodeSearch(index)
    query = event_query(event) if query is None else query
    hits = search.search(query, k=max(weights.hits, 1) * 5)
    best = max((h.score for h in hits), default=0.0) or 1.0
    bm = {(h.symbol.path, h.symbol.qualname): h.score / best for h in hits}
    scored: dict[tuple[str, str], tuple[float, Location]] = {}
    order = _distances(event, context)
    for depth, loc in zip(order, context.locations, strict=True):
        key = (loc.path, loc.function)
        fused = 1.0 / (1 + depth) + weights.bm25 * bm.get(key, 0.0)
        if key not in scored:
            scored[key] = (fused, replace(loc, score=round(fused, 4)))
    for sym in named_in_message(event, index):
        key = (sym.path, sym.qualname)
        fused = weights.named + weights.bm25 * bm.get(key, 0.0)
        if key in scored:
            if fused > scored[key][0]:
                scored[key] = (fused, replace(scored[key][1], score=round(fused, 4)))
            continue
        scored[key] = (fused, Location(sym.path, sym.qualname, sym.start, sym.start, sym.end, _source(index, sym),
                                       "search", round(fused, 4)))
    for sym in receiver_makers(event, context, index):
        key = (sym.path, sym.qualname)
        if key not in scored:
            fused = weights.makers + weights.bm25 * bm.get(key, 0.0)
            scored[key] = (fused, Location(sym.path, sym.qualname, sym.start, sym.start, sym.end,
                                           _source(index, sym), "search", round(fused, 4)))
    for hit in hits[: weights.hits]:
        key = (hit.symbol.path, hit.symbol.qualname)
        if key in scored:
            continue
        fused = weights.bm25 * bm[key]
        sym = hit.symbol
        scored[key] = (fused, Location(sym.path, sym.qualname, sym.start, sym.start, sym.end, _source(index, sym),
                                       "search", round(fused, 4)))
    ranked = sorted(scored.values(), key=lambda pair: -pair[0])
    return [loc for _, loc in ranked]
