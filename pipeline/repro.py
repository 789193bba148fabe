"""Write a reproduction test from an event: call the crashing function with the captured arguments.

Sentry serialises frame locals as JSON whose leaves are repr() strings ("'abc'", "0", "None") inside
nested objects and arrays. A value is rebuilt only if every leaf is a Python literal; anything else
(an object's repr, a truncated string) makes the argument unrecoverable and the reproduction is not
written: a reproduction that calls the function with made-up values would prove nothing.

The test fails with a marker line when the same exception type escapes, so verification can tell
"reproduced" apart from "broke in some other way" (an ImportError, say).
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.records import CodeContext, ErrorEvent, Frame, Location

MARKER = "AUTOFIX-REPRODUCED"
FILENAME = ".autofix-repro/test_autofix_reproduction.py"


class NotRebuildable(ValueError):
    pass


@dataclass(frozen=True)
class Reproduction:
    module: str
    qualname: str
    import_root: str  # repo-relative folder that must be on sys.path
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    exception_type: str
    source: str
    path: str = FILENAME
    via: str = "crash"  # "crash": calls the crashing function; "caller": an in-app caller of it


@dataclass(frozen=True)
class ReproAttempt:
    reproduction: Reproduction | None
    reason: str = ""


def rebuild(value: Any) -> Any:
    """The Python value behind Sentry's serialisation of a local variable."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise NotRebuildable(value[:80]) from exc
    if isinstance(value, list):
        return [rebuild(v) for v in value]
    if isinstance(value, dict):
        return {k: rebuild(v) for k, v in value.items()}
    raise NotRebuildable(repr(value)[:80])


def _function_node(source: str, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    parts = qualname.split(".")
    body: list[ast.stmt] = ast.parse(source).body
    node: ast.AST | None = None
    for part in parts:
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return node if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def module_name(path: str, frame: Frame, repo_root: Path) -> tuple[str, str] | None:
    """(dotted module, import root) for a repo file: the frame's module if it fits the path."""
    pure = PurePosixPath(path)
    stem_parts = list(pure.with_suffix("").parts)
    folder = pure.parent
    if stem_parts and stem_parts[-1] == "__init__":
        stem_parts.pop()
        folder = folder.parent  # a package's own folder is its name, not a parent package
    if frame.module:
        mod_parts = frame.module.split(".")
        if stem_parts[-len(mod_parts):] == mod_parts:
            root = "/".join(stem_parts[: len(stem_parts) - len(mod_parts)])
            return frame.module, root
    # Walk up while the folder is a package.
    parts = stem_parts[-1:]
    while folder.parts and (repo_root / folder / "__init__.py").is_file():
        parts.insert(0, folder.name)
        folder = folder.parent
    return ".".join(parts), folder.as_posix() if folder.parts else ""


def _call_values(
    fn: ast.FunctionDef | ast.AsyncFunctionDef, frame_vars: Mapping[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    a = fn.args
    positional = [*a.posonlyargs, *a.args]
    defaults_from = len(positional) - len(a.defaults)
    extra_args = rebuild(frame_vars[a.vararg.arg]) if a.vararg and a.vararg.arg in frame_vars else []
    if not isinstance(extra_args, (list, tuple)):
        raise NotRebuildable(f"*{a.vararg.arg if a.vararg else ''} is not a sequence")
    # Extra positional values can only follow every named one given positionally (f(1, 2, *rest)).
    by_position = len(a.posonlyargs) if not extra_args else len(positional)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    gap: str | None = None  # a positional parameter left to its default: later ones cannot follow it
    for i, param in enumerate(positional):
        if param.arg in frame_vars:
            value = rebuild(frame_vars[param.arg])
            if i >= by_position:
                kwargs[param.arg] = value
            elif gap is None:
                args.append(value)
            else:
                raise NotRebuildable(f"argument {gap!r} was not captured but a later positional one was")
        elif i < defaults_from:
            raise NotRebuildable(f"argument {param.arg!r} was not captured")
        elif i < by_position:
            gap = gap or param.arg
    if extra_args and gap is not None:
        raise NotRebuildable(f"argument {gap!r} was not captured but *{a.vararg.arg if a.vararg else ''} was")
    args.extend(extra_args)
    for param, default in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        if param.arg in frame_vars:
            kwargs[param.arg] = rebuild(frame_vars[param.arg])
        elif default is None:
            raise NotRebuildable(f"argument {param.arg!r} was not captured")
    if a.kwarg and a.kwarg.arg in frame_vars:
        extra = rebuild(frame_vars[a.kwarg.arg])
        if isinstance(extra, dict):
            kwargs.update(extra)
    return tuple(args), kwargs


def _render(module: str, qualname: str, root: str, args: tuple[Any, ...], kwargs: Mapping[str, Any],
            exc_type: str, event_id: str) -> str:
    attrs = qualname.split(".")
    return f'''"""Reproduction written by autofix from event {event_id!r}; the values are literals from the event."""
import importlib
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.environ.get("AUTOFIX_REPO", os.getcwd()), {root!r}))

ARGS = {args!r}
KWARGS = {dict(kwargs)!r}


def test_crash_does_not_recur():
    target = importlib.import_module({module!r})
    for name in {attrs!r}:
        target = getattr(target, name)
    try:
        target(*ARGS, **KWARGS)
    except Exception as exc:
        if type(exc).__name__ == {exc_type.rsplit(".", 1)[-1]!r}:
            pytest.fail("{MARKER} " + type(exc).__name__ + ": " + str(exc)[:200])
        raise
'''


def synthesize(event: ErrorEvent, context: CodeContext) -> ReproAttempt:
    """A reproduction through the innermost frame that can be called again from outside.

    The crashing function comes first. When it cannot be called with what the event captured (a
    method, whose receiver is an object; a nested function), its in-app callers are tried outward: a
    module-level function whose arguments are literals reaches the same crash through the same path.
    """
    crash, exc = context.crash, event.primary
    if crash is None or crash.role != "crash" or exc is None or event.crash_frame() is None:
        return ReproAttempt(None, "the crash frame maps to no repo file")
    first: ReproAttempt | None = None
    for location, frame in _located_frames(event, context):
        attempt = _through(location, frame, Path(context.repo_root), exc.type, event.id)
        if attempt.reproduction is not None:
            return attempt
        first = first or attempt
    assert first is not None  # the crash location always pairs with the crash frame
    return first


def _located_frames(event: ErrorEvent, context: CodeContext) -> list[tuple[Location, Frame]]:
    """Each location of the escaping exception's stack with the frame it came from, crash first."""
    exc = event.primary
    assert exc is not None
    frames = list(reversed([f for f in exc.frames if f.in_app] or list(exc.frames)))
    pairs: list[tuple[Location, Frame]] = []
    for location in context.locations:
        short = location.function.rsplit(".", 1)[-1]
        same_name = [f for f in frames if f.function == short]
        exact = [f for f in same_name if f.lineno == location.line]
        if exact or same_name:
            frame = (exact or same_name)[0]
            frames.remove(frame)
            pairs.append((location, frame))
    return pairs


def _through(location: Location, frame: Frame, root: Path, exc_type: str, event_id: str) -> ReproAttempt:
    name = location.function
    if "<locals>" in name or name == "<module>":
        return ReproAttempt(None, f"{name} cannot be called from outside")
    fn = _function_node((root / location.path).read_text(encoding="utf-8"), name)
    if fn is None:
        return ReproAttempt(None, f"function {name} not found in {location.path}")
    if "." in name and not any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in fn.decorator_list):
        return ReproAttempt(None, f"{name} is a method; its receiver cannot be rebuilt from the event")
    names = module_name(location.path, frame, root)
    if names is None or not all(p.isidentifier() and not keyword.iskeyword(p) for p in names[0].split(".")):
        return ReproAttempt(None, f"{location.path} is not importable as a module")
    try:
        args, kwargs = _call_values(fn, frame.vars)
        if ast.literal_eval(repr((args, kwargs))) != (args, kwargs):
            raise NotRebuildable("values do not round-trip as literals")
    except (NotRebuildable, ValueError, SyntaxError) as err:
        return ReproAttempt(None, f"arguments of {name} cannot be rebuilt: {err}")
    module, import_root = names
    source = _render(module, name, import_root, args, kwargs, exc_type, event_id)
    return ReproAttempt(Reproduction(module, name, import_root, args, kwargs, exc_type, source,
                                     via=location.role))
