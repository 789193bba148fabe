"""Replays from an event: every in-app frame of the crash, called again with its captured arguments.

The escaping exception's in-app frames, from the crash site out to the entry point, each become one
replay when its arguments can be rebuilt: a pytest test that imports the frame's function and calls
it with the literals the event captured. Before the patch a replay must fail with the event's
exception type (the test fails with a marker line); after it, it must complete with no exception.
Replaying the callers is what catches a patch that only moves the crash one frame up.

Sentry serialises locals as JSON whose leaves are repr() strings. A frame is replayable only when
its values are literals and really are what the call passed; the plan says why each other frame is
not (replay_args holds those checks: scrubbed markers, trimmed containers, reassigned parameters,
receivers). The test file lives in a dot-folder of the worktree with its own pytest.ini, so neither
the repo's test command nor the repo's pytest configuration ever meet it.
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.pysource import Undecodable, read_source
from pipeline.records import CodeContext, ErrorEvent, Frame, Location
from pipeline.replay_args import (
    NotRebuildable,
    Receiver,
    call_values,
    changed_before,
    own_nodes,
    rebuild,
    receiver_of,
    tainted,
    vars_meta,
)

MARKER = "AUTOFIX-REPRODUCED"
FOLDER = ".autofix-repro"
FILENAME = f"{FOLDER}/test_autofix_replays.py"
INI = f"{FOLDER}/pytest.ini"
JUNIT = f"{FOLDER}/replays.xml"

__all__ = ["FILENAME", "INI", "JUNIT", "MARKER", "NotRebuildable", "Replay", "ReplayPlan", "module_name",
           "plan_replays", "rebuild"]

_Fn = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Replay:
    index: int
    name: str  # dotted: module + qualname
    role: str  # crash | caller
    module: str
    qualname: str
    import_root: str  # repo-relative folder that must be on sys.path
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    receiver: Receiver | None = None
    generator: bool = False  # its body runs only when iterated
    constructs: bool = False  # an __init__: replayed by calling its class

    @property
    def call_path(self) -> tuple[str, ...]:
        """Attribute names from the module to what the replay calls."""
        parts = tuple(self.qualname.split("."))
        return parts[:-1] if self.constructs else parts

    @property
    def test_name(self) -> str:
        return f"test_replay_{self.index}"


@dataclass(frozen=True)
class ReplayPlan:
    """The replays of one event, crash site first, and why each other in-app frame has none."""

    replays: tuple[Replay, ...]
    not_replayable: tuple[str, ...]
    exception_type: str
    source: str = ""  # the pytest file; empty when there is no replay
    path: str = FILENAME
    ini: str = "[pytest]\n"

    @property
    def reason(self) -> str:
        if self.replays:
            return ""
        why = "; ".join(self.not_replayable) or "the event has no in-app frame"
        return f"no frame of the event can be replayed: {why}"

    def by_test(self) -> dict[str, Replay]:
        return {r.test_name: r for r in self.replays}


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


def plan_replays(event: ErrorEvent, context: CodeContext) -> ReplayPlan:
    """A replay for every in-app frame of the escaping exception whose arguments can be rebuilt."""
    exc = event.primary
    if exc is None:
        return ReplayPlan((), ("the event has no exception",), "")
    crash = context.crash
    if crash is None or crash.role != "crash" or event.crash_frame() is None:
        return ReplayPlan((), ("the crash frame maps to no repo file",), exc.type)
    root = Path(context.repo_root)
    replays: list[Replay] = []
    notes: list[str] = []
    for location, frame, position in _located_frames(event, context):
        meta = vars_meta(event, position)
        found = _replay(location, frame, root, len(replays), meta)
        if isinstance(found, Replay):
            replays.append(found)
        else:
            notes.append(f"{location.role} {location.function} ({location.path}:{location.line}): {found}")
    source = _render(replays, exc.type, event.id) if replays else ""
    return ReplayPlan(tuple(replays), tuple(notes), exc.type, source)


def _located_frames(event: ErrorEvent, context: CodeContext) -> list[tuple[Location, Frame, int]]:
    """Each location of the escaping exception's stack, crash first, with its frame and the frame's
    position in the exception's stack (the index `_meta` uses)."""
    exc = event.primary
    assert exc is not None
    in_app = [i for i, f in enumerate(exc.frames) if f.in_app] or list(range(len(exc.frames)))
    remaining = list(reversed(in_app))
    pairs: list[tuple[Location, Frame, int]] = []
    for location in context.locations:
        short = location.function.rsplit(".", 1)[-1]
        same = [i for i in remaining if exc.frames[i].function == short]
        exact = [i for i in same if exc.frames[i].lineno == location.line]
        if exact or same:
            position = (exact or same)[0]
            remaining.remove(position)
            pairs.append((location, exc.frames[position], position))
    return pairs


def _replay(location: Location, frame: Frame, root: Path, index: int,
            meta: Mapping[str, Any]) -> Replay | str:
    """The replay of one frame, or why there is none."""
    name = location.function
    if "<locals>" in name or name.startswith("<"):
        return f"{name} cannot be called from outside"
    try:
        source = read_source(root / location.path)
    except (Undecodable, OSError) as exc:
        return f"the file cannot be read: {exc}"
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return f"the file does not parse: {exc.msg} (line {exc.lineno})"
    found = _function_node(tree, name)
    if found is None:
        return f"function {name} not found in {location.path}"
    fn, owner = found
    names = module_name(location.path, frame, root)
    if names is None or not all(p.isidentifier() and not keyword.iskeyword(p) for p in names[0].split(".")):
        return f"{location.path} is not importable as a module"
    bound = _bound_parameter(fn, owner)
    # An __init__ frame is replayed by calling its class: the object is made fresh, as it was then.
    constructs = bound is not None and bound[1] == "self" and fn.name == "__init__"
    unused = {bound[0]} if bound is not None and (bound[1] == "cls" or constructs) else set()
    try:
        for param in _parameters(fn):
            if param in frame.vars and param not in unused:
                tainted(param, frame.vars[param], meta.get(param))
        changed = changed_before(fn, location.line, ignore=unused)
        if changed:
            return changed
        receiver = None
        if bound is not None and bound[1] == "self" and not constructs:
            assert owner is not None
            receiver = receiver_of(bound[0], frame.vars.get(bound[0]), owner, name.split(".")[-1])
        args, kwargs = call_values(fn, frame.vars, skip=bound[0] if bound else None)
        if ast.literal_eval(repr((args, kwargs))) != (args, kwargs):
            raise NotRebuildable("values do not round-trip as literals")
    except (NotRebuildable, ValueError, SyntaxError) as err:
        return str(err)
    module, import_root = names
    generator = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own_nodes(fn))
    return Replay(index, f"{module}.{name}", location.role, module, name, import_root, args, kwargs,
                  receiver, generator, constructs)


def _function_node(tree: ast.Module, qualname: str) -> tuple[_Fn, ast.ClassDef | None] | None:
    """The function a qualname names, and the class it is defined in (None: module level)."""
    body: list[ast.stmt] = tree.body
    node: ast.AST | None = None
    owner: ast.ClassDef | None = None
    for part in qualname.split("."):
        if isinstance(node, ast.ClassDef):
            owner = node
        elif node is not None:
            return None  # a function inside a function: not reachable from outside
        node = next((n for n in reversed(body) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                 ast.ClassDef)) and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return (node, owner) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _bound_parameter(fn: _Fn, owner: ast.ClassDef | None) -> tuple[str, str] | None:
    """(name, "self" | "cls") of the parameter Python binds for a method; None for plain functions."""
    if owner is None:
        return None
    decorators = {d.id for d in fn.decorator_list if isinstance(d, ast.Name)}
    if "staticmethod" in decorators:
        return None
    positional = [*fn.args.posonlyargs, *fn.args.args]
    if not positional:
        return None
    return positional[0].arg, "cls" if "classmethod" in decorators else "self"


def _parameters(fn: _Fn) -> list[str]:
    a = fn.args
    names = [p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
    names += [p.arg for p in (a.vararg, a.kwarg) if p is not None]
    return names


def _render(replays: Sequence[Replay], exc_type: str, event_id: str) -> str:
    roots = sorted({r.import_root for r in replays})
    tests = "\n\n".join(_render_test(r) for r in replays)
    return f'''"""Replays written by autofix from event {event_id!r}.

Each test calls one frame of the crash again with the literal arguments the event captured: before
the fix it fails with {MARKER} and the event's exception; after it, it must complete.
"""
import asyncio
import importlib
import inspect
import os
import sys

import pytest

for _root in {roots!r}:
    sys.path.insert(0, os.path.join(os.environ.get("AUTOFIX_REPO", os.getcwd()), _root))

EXCEPTION = {exc_type.rsplit(".", 1)[-1]!r}


async def _wait(awaitable):
    return await awaitable


def _replay(module, qualname, args, kwargs, receiver=None, generator=False):
    target = importlib.import_module(module)
    if receiver is None:
        for name in qualname:
            target = getattr(target, name)
    else:
        for name in qualname[:-1]:
            target = getattr(target, name)
        obj = object.__new__(target)
        for name, value in receiver.items():
            object.__setattr__(obj, name, value)
        target = getattr(obj, qualname[-1])
    try:
        result = target(*args, **kwargs)
        if inspect.isawaitable(result):
            asyncio.run(_wait(result))
        elif generator:
            for _ in zip(range(100_000), result):
                pass
    except Exception as exc:
        if type(exc).__name__ == EXCEPTION:
            pytest.fail("{MARKER} " + type(exc).__name__ + ": " + str(exc)[:200])
        raise


{tests}
'''


def _render_test(replay: Replay) -> str:
    receiver = dict(replay.receiver.attrs) if replay.receiver is not None else None
    return f'''def {replay.test_name}():
    """{replay.role} {replay.name}"""
    _replay({replay.module!r}, {replay.call_path!r}, {replay.args!r}, {dict(replay.kwargs)!r},
            receiver={receiver!r}, generator={replay.generator!r})'''

