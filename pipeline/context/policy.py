"""The context policy: which of a repo's files autofix may read as code context.

Two sources, both in gitignore syntax (the `pathspec` library's GitIgnoreSpec, so `dir/`, `**`,
`*.gen.py` and `!re-include` mean what they mean to git):

- the settings' `[context]` section: `include` globs (empty: every file) and `exclude` globs;
- a `.autofixignore` file at the repo root (its name is `context.ignore_file`), kept with the code.

A file is allowed when it matches an include glob (or there are none) and neither the exclude globs
nor `.autofixignore` match it. An excluded file never enters the symbol index, BM25, retrieval or
`fix_context`. When the crash site itself is excluded, retrieval leaves it out like any other frame
and records why; the flow then gives no code to any fixer and says the policy is the reason (a team
that excluded a file does not want a model, or a template, reading or rewriting it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pathspec

IGNORE_FILE = ".autofixignore"


@dataclass(frozen=True)
class ContextPolicy:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore_lines: tuple[str, ...] = ()  # the repo's .autofixignore, line by line
    ignore_file: str = IGNORE_FILE

    @classmethod
    def load(cls, repo_root: Path, include: Sequence[str] = (), exclude: Sequence[str] = (),
             ignore_file: str = IGNORE_FILE) -> ContextPolicy:
        """The policy for a checkout: the settings' globs plus the checkout's own ignore file."""
        path = repo_root / ignore_file
        try:
            lines = tuple(path.read_text(encoding="utf-8").splitlines()) if path.is_file() else ()
        except (OSError, UnicodeDecodeError):
            lines = ()
        return cls(tuple(include), tuple(exclude), lines, ignore_file)

    @property
    def _include(self) -> pathspec.GitIgnoreSpec | None:
        return _spec(self.include) if self.include else None

    @property
    def _exclude(self) -> pathspec.GitIgnoreSpec:
        return _spec(self.exclude)

    @property
    def _ignored(self) -> pathspec.GitIgnoreSpec:
        return _spec(self.ignore_lines)

    def why_excluded(self, rel: str) -> str | None:
        """None when the repo-relative POSIX path is allowed, else the rule that keeps it out."""
        include = self._include
        if include is not None and not include.match_file(rel):
            return "not matched by context.include"
        if self.exclude and self._exclude.match_file(rel):
            return "matched by context.exclude"
        if self.ignore_lines and self._ignored.match_file(rel):
            return f"matched by {self.ignore_file}"
        return None

    def allows(self, rel: str) -> bool:
        return self.why_excluded(rel) is None

    def filter(self, paths: Iterable[str]) -> list[str]:
        return [p for p in paths if self.allows(p)]

    @property
    def digest(self) -> str:
        """Part of the index cache key: a policy change must not reuse an index built under another."""
        blob = json.dumps([self.include, self.exclude, self.ignore_lines], separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@lru_cache(maxsize=64)  # a policy's patterns compile once per process
def _spec(lines: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    return pathspec.GitIgnoreSpec.from_lines(lines)


ALLOW_ALL = ContextPolicy()
