"""Code-aware tokens for BM25: identifiers split at snake_case and camelCase boundaries.

`get_histogram_counts` gives `get histogram counts get_histogram_counts`, `ZeroDivisionError` gives
`zero division error zerodivisionerror`: the whole identifier (lower-cased) is kept beside its parts,
so an exact name match scores above a match of its words. Python keywords and one-letter tokens are
dropped; they occur everywhere and say nothing about where a bug is.
"""

from __future__ import annotations

import keyword
import re
from functools import lru_cache

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_STOP = frozenset(keyword.kwlist) | frozenset(
    {"self", "cls", "none", "true", "false", "the", "a", "an", "of", "to", "in", "is", "it", "and", "or"}
)
MAX_TOKEN = 40  # longer runs are hashes, base64 or minified data: noise for ranking


def split_identifier(word: str) -> list[str]:
    """`_get_binBounds2` -> ['get', 'bin', 'bounds', '2']."""
    parts: list[str] = []
    for chunk in word.split("_"):
        parts.extend(p.lower() for p in _CAMEL.findall(chunk))
    return parts


@lru_cache(maxsize=65536)  # identifiers repeat across a repo; the answer is pure
def _word_tokens(word: str) -> tuple[str, ...]:
    if len(word) > MAX_TOKEN:
        return ()
    whole = word.lower().strip("_")
    parts = split_identifier(word)
    out = [whole] if len(parts) > 1 and whole not in _STOP else []
    out.extend(p for p in parts if len(p) > 1 and p not in _STOP)
    return tuple(out)


def code_tokens(text: str) -> list[str]:
    out: list[str] = []
    for word in _WORD.findall(text):
        out.extend(_word_tokens(word))
    return out
