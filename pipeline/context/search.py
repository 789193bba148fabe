"""BM25 (bm25s) over the symbol index, queried with what an event says about the crash.

Documents are the index's functions, methods and classes outside test files (a production crash is
not fixed in a test); each is its name (three times), its parameters and its own source text (nested
definitions are documents of their own), in code tokens. The query is the exception types and
messages of the chain, the in-app frames' function names, and the names and values of their
captured locals, also in code tokens, each token once.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import bm25s
import numpy as np

from pipeline.context.index import Symbol, SymbolIndex
from pipeline.context.tokens import code_tokens
from pipeline.records import ErrorEvent

# bm25s sets its own logger to DEBUG at import, which would print "Building index from tokens" on
# every CLI run; its messages follow the process's level like any library's.
logging.getLogger("bm25s").setLevel(logging.NOTSET)

SEARCH_KINDS = ("function", "method", "class")
_MAX_VALUE_CHARS = 200  # a captured value's repr beyond this is data, not vocabulary
_ADDRESS = re.compile(r"\bat 0x[0-9a-fA-F]+|\b0x[0-9a-fA-F]{6,}")  # "<Foo object at 0x7f...>": no words


@dataclass(frozen=True)
class Hit:
    symbol: Symbol
    score: float


class CodeSearch:
    def __init__(self, index: SymbolIndex, kinds: Sequence[str] = SEARCH_KINDS) -> None:
        self.docs = [s for s in index.symbols if s.kind in kinds and not s.is_test]
        self._bm25: bm25s.BM25 | None = None
        if self.docs:
            self._bm25 = bm25s.BM25()
            self._bm25.index([list(s.tokens) or ["<empty>"] for s in self.docs], show_progress=False)

    def scores(self, query: Sequence[str]) -> np.ndarray:
        if self._bm25 is None or not query:
            return np.zeros(len(self.docs))
        vocab = self._bm25.vocab_dict
        known = [t for t in query if t in vocab]  # a repeated token weighs more (see event_query)
        if not known:
            return np.zeros(len(self.docs))
        return np.asarray(self._bm25.get_scores(known), dtype=float)

    def search(self, query: Sequence[str], k: int = 20) -> list[Hit]:
        scores = self.scores(query)
        order = np.argsort(-scores, kind="stable")[:k]
        return [Hit(self.docs[i], float(scores[i])) for i in order if scores[i] > 0]


def code_search(index: SymbolIndex) -> CodeSearch:
    """The BM25 model of an index, built once per index object."""
    found = index.__dict__.get("_code_search")
    if not isinstance(found, CodeSearch):
        found = index.__dict__["_code_search"] = CodeSearch(index)
    return found


MESSAGE_WEIGHT = 3  # the exception's type and message name the failing thing; locals are noisier


def event_query(event: ErrorEvent, message_weight: int = MESSAGE_WEIGHT) -> list[str]:
    """Query tokens for an event: each token once, the exceptions' own tokens `message_weight` times.

    BM25 sums over the query's tokens, so a repeated token weighs that many times.
    """
    said: list[str] = []
    seen: list[str] = []
    for exc in event.exceptions:
        said += [exc.type, exc.value or ""]
        frames = [f for f in exc.frames if f.in_app] or list(exc.frames)
        for frame in frames:
            seen.append(frame.function or "")
            for name, value in (frame.vars or {}).items():
                seen.append(str(name))
                seen.extend(_value_texts(value))
    if event.message:
        said.append(event.message)
    strong = list(dict.fromkeys(t for text in said for t in code_tokens(_ADDRESS.sub(" ", text))))
    weak = [t for t in dict.fromkeys(t for text in seen for t in code_tokens(_ADDRESS.sub(" ", text)))
            if t not in set(strong)]
    return strong * max(message_weight, 1) + weak


def _value_texts(value: object) -> Iterable[str]:
    if isinstance(value, str):
        yield value[:_MAX_VALUE_CHARS]
    elif isinstance(value, dict):
        for k, v in list(value.items())[:20]:
            yield str(k)[:_MAX_VALUE_CHARS]
            if isinstance(v, str):
                yield v[:_MAX_VALUE_CHARS]
    elif isinstance(value, (list, tuple)):
        for v in value[:20]:
            if isinstance(v, str):
                yield v[:_MAX_VALUE_CHARS]
    elif value is not None:
        yield str(value)[:_MAX_VALUE_CHARS]
