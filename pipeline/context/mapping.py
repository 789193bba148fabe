"""Map a stack frame's path to a file in the repo.

Configured path mappings are tried first (a deployment knows its own layout best); then the longest
suffix match of path components against the repo's Python files, then the frame's module name.
A bare basename that matches several files is ambiguous and maps to nothing: guessing a file is worse
than saying no file matched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pipeline.records import Frame

_SKIP_DIRS = frozenset(
    {".git", ".venv", "venv", "env", "node_modules", "__pycache__", "site-packages", ".tox", ".nox",
     ".autofix", "build", "dist", ".mypy_cache", ".pytest_cache"}
)


@dataclass(frozen=True)
class RepoIndex:
    """The repo's Python files, indexed by basename for suffix matching."""

    root: Path
    files: frozenset[str]  # repo-relative POSIX paths
    by_name: Mapping[str, tuple[str, ...]]

    @classmethod
    def build(cls, root: Path) -> RepoIndex:
        files = frozenset(_python_files(root))
        by_name: dict[str, list[str]] = defaultdict(list)
        for rel in sorted(files):
            by_name[PurePosixPath(rel).name].append(rel)
        return cls(root=root, files=files, by_name={k: tuple(v) for k, v in by_name.items()})


def _python_files(root: Path) -> Iterable[str]:
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if any(part in _SKIP_DIRS for part in rel.parts[:-1]):
            continue
        yield rel.as_posix()


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in path.replace("\\", "/").split("/") if p and p != ".")


def _suffix_len(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def map_path(frame_path: str, index: RepoIndex, mappings: Mapping[str, str] | None = None) -> str | None:
    """The repo-relative file a frame path points at, or None."""
    for prefix, replacement in sorted((mappings or {}).items(), key=lambda kv: -len(kv[0])):
        if frame_path.startswith(prefix):
            candidate = "/".join(_parts(replacement + "/" + frame_path[len(prefix):]))
            if candidate in index.files:
                return candidate
    parts = _parts(frame_path)
    if not parts:
        return None
    scored = [(_suffix_len(parts, _parts(rel)), rel) for rel in index.by_name.get(parts[-1], ())]
    if not scored:
        return None
    best = max(score for score, _ in scored)
    winners = [rel for score, rel in scored if score == best]
    if len(winners) == 1 and (best >= 2 or len(parts) == 1 or len(index.by_name[parts[-1]]) == 1):
        return winners[0]
    return None


def map_frame(frame: Frame, index: RepoIndex, mappings: Mapping[str, str] | None = None) -> str | None:
    """Try the absolute path, then the reported filename, then the module name."""
    for path in (frame.abs_path, frame.filename):
        if path:
            found = map_path(path, index, mappings)
            if found:
                return found
    if frame.module:
        dotted = frame.module.replace(".", "/")
        for candidate in (dotted + ".py", dotted + "/__init__.py"):
            found = map_path(candidate, index)
            if found:
                return found
    return None
