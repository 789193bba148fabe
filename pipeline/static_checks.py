"""Static checks of a patch's Python files: they still compile, and pyflakes finds no new undefined name.

Both run on the host on the files' text: compiling and pyflakes parse code, they never execute it.
A file is judged against its own base version, so code that already had a warning (or never
compiled, a Python 2 leftover say) does not block a patch that leaves it so.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Mapping

from pyflakes import checker, messages

from pipeline.pysource import Undecodable, decode_source

_UNDEFINED = (messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport)


def problems(before: Mapping[str, bytes | None], after: Mapping[str, bytes | None]) -> tuple[str, ...]:
    """What the patch broke, file by file (repo-relative paths; None: the file does not exist)."""
    found: list[str] = []
    for path in sorted(after):
        new = after[path]
        if new is None or not path.endswith(".py"):
            continue
        old = before.get(path)
        found += _file_problems(path, old, new)
    return tuple(found)


def _file_problems(path: str, old: bytes | None, new: bytes) -> list[str]:
    try:
        new_tree = _parse(path, new)
    except (SyntaxError, ValueError, Undecodable) as exc:
        try:
            if old is not None:
                _parse(path, old)
        except (SyntaxError, ValueError, Undecodable):
            return []  # it did not compile before the patch either
        return [f"{path} no longer compiles: {_why(exc)}"]
    before_names: Counter[str] = Counter()
    if old is not None:
        try:
            before_names = _undefined(path, _parse(path, old))
        except (SyntaxError, ValueError, Undecodable):
            pass
    added = _undefined(path, new_tree) - before_names
    return [f"{path}: the patch adds an undefined name {name!r}" for name in sorted(added)]


def _parse(path: str, data: bytes) -> ast.Module:
    decode_source(data, path)  # a clear error for a file that does not decode as it declares
    compile(data, path, "exec", dont_inherit=True)
    return ast.parse(data, filename=path)


def _undefined(path: str, tree: ast.Module) -> Counter[str]:
    found = checker.Checker(tree, filename=path)
    return Counter(str(m.message_args[0]) for m in found.messages if isinstance(m, _UNDEFINED))


def _why(exc: Exception) -> str:
    if isinstance(exc, SyntaxError):
        return f"{exc.msg} (line {exc.lineno})"
    return str(exc)
