"""Replays from an event: every in-app frame of the crash, called again with its captured arguments.

The escaping exception's in-app frames, from the crash site out to the entry point, each become one
replay when its arguments can be rebuilt: a pytest test that imports the frame's function and calls
it with the literals the event captured. Before the patch a replay must fail with the event's
exception type (the test fails with a marker line); after it, it must complete with no exception.
Replaying the callers is what catches a patch that only moves the crash one frame up.

Sentry serialises locals as JSON whose leaves are repr() strings. A frame is replayable only when
its values are literals; the plan says why each other frame is not (replay_args holds those checks:
scrubbed markers, trimmed containers, receivers). When a parameter is reassigned or changed in place
before the crash line, the event holds its value at the crash, not the one passed: the frame is
replayed with those values all the same (often a normalisation that gives the same path again), and
only an exception raised through the frame's own line counts as reproducing the crash. The test
file lives in a dot-folder of the worktree with its own pytest.ini, so neither the repo's test
command nor the repo's pytest configuration ever meet it.
"""

from __future__ import annotations

import ast
import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from pipeline.pysource import Undecodable, read_source
from pipeline.records import CodeContext, ErrorEvent, Frame, Location, unreplayable_note
from pipeline.replay_args import (
    NotRebuildable,
    ObjectSpec,
    call_values,
    changed_before,
    encode,
    own_nodes,
    rebuild,
    receiver_of,
    specs_in,
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
    receiver: ObjectSpec | None = None
    generator: bool = False  # its body runs only when iterated
    constructs: bool = False  # an __init__: replayed by calling its class
    class_roots: tuple[str, ...] = ()  # repo folders the rebuilt objects' classes import from
    # Set when a parameter changed before the crash line, so the event holds its value at the crash,
    # not the one passed: the replay calls with those values, and a reproduction must raise through
    # the frame's own line (repo path, line), not merely raise the same type somewhere.
    site: tuple[str, int] | None = None
    approximate: str = ""  # why the values are the crash's (changed_before's reason)
    depth: int = 0  # distance from the crash frame on the stack (0: the crash frame)

    @property
    def call_path(self) -> tuple[str, ...]:
        """Attribute names from the module to what the replay calls."""
        parts = tuple(self.qualname.split("."))
        return parts[:-1] if self.constructs else parts

    @property
    def test_name(self) -> str:
        return f"test_replay_{self.index}"


@dataclass(frozen=True)
class FrameSpan:
    """Where one in-app frame's function lies in the repo, and its distance from the crash frame."""

    depth: int
    path: str
    start: int  # 1-based, inclusive
    end: int


@dataclass(frozen=True)
class ReplayPlan:
    """The replays of one event, crash site first, and why each other in-app frame has none."""

    replays: tuple[Replay, ...]
    not_replayable: tuple[str, ...]
    exception_type: str
    source: str = ""  # the pytest file; empty when there is no replay
    path: str = FILENAME
    ini: str = "[pytest]\n"
    frames: tuple[FrameSpan, ...] = ()  # every located in-app frame, replayed or not, crash first

    def patched_depth(self, changed: Mapping[str, set[int]]) -> int:
        """The distance of the deepest frame whose function contains a changed line (`changed`: repo
        path -> old line numbers). 0 when a changed line lies in no frame's function: code off the
        stack may be called from any frame, so every replay must then show the fix."""
        depths: set[int] = set()
        for path, lines in changed.items():
            for line in lines:
                inside = [f for f in self.frames if f.path == path and f.start <= line <= f.end]
                if not inside:
                    return 0
                # The innermost function holding the line (a nested function lies inside its parent's
                # span), and of a recursive one its deepest frame.
                tightest = min(f.end - f.start for f in inside)
                depths.add(min(f.depth for f in inside if f.end - f.start == tightest))
        return min(depths, default=0)

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
    frames: list[FrameSpan] = []
    for depth, location, frame, position in _located_frames(event, context):
        frames.append(FrameSpan(depth, location.path, location.start_line or location.line,
                                location.end_line or location.line))
        meta = vars_meta(event, position)
        found = _replay(location, frame, root, len(replays), meta)
        if isinstance(found, Replay):
            replays.append(replace(found, depth=depth))
        else:
            notes.append(unreplayable_note(location.role, location.function, location.path, location.line, found))
    source = _render(replays, exc.type, event.id) if replays else ""
    return ReplayPlan(tuple(replays), tuple(notes), exc.type, source, frames=tuple(frames))


def _located_frames(event: ErrorEvent, context: CodeContext) -> list[tuple[int, Location, Frame, int]]:
    """Each location of the escaping exception's stack, crash first, with its distance from the crash,
    its frame and the frame's position in the exception's stack (the index `_meta` uses)."""
    exc = event.primary
    assert exc is not None
    in_app = [i for i, f in enumerate(exc.frames) if f.in_app] or list(range(len(exc.frames)))
    remaining = list(reversed(in_app))
    pairs: list[tuple[int, Location, Frame, int]] = []
    for depth, location in enumerate(context.locations):
        short = location.function.rsplit(".", 1)[-1]
        same = [i for i in remaining if exc.frames[i].function == short]
        exact = [i for i in same if exc.frames[i].lineno == location.line]
        if exact or same:
            position = (exact or same)[0]
            remaining.remove(position)
            pairs.append((depth, location, exc.frames[position], position))
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
        changed = changed_before(fn, location.line, ignore=unused) or ""
        module, import_root = names
        receiver = None
        if bound is not None and bound[1] == "self" and not constructs:
            assert owner is not None
            receiver = receiver_of(bound[0], frame.vars.get(bound[0]), owner, name.split(".")[-1])
            if not receiver.module:  # rebuilt from a repr: the class the method is defined on
                receiver = replace(receiver, module=module, qualname=name.rsplit(".", 1)[0])
        args, kwargs = call_values(fn, frame.vars, skip=bound[0] if bound else None)
        encoded = encode((args, kwargs, receiver))
        if ast.literal_eval(repr(encoded)) != encoded:
            raise NotRebuildable("values do not round-trip as literals")
        class_roots = _class_roots(root, import_root, [*specs_in(receiver), *specs_in(args), *specs_in(kwargs)])
    except (NotRebuildable, ValueError, SyntaxError) as err:
        return str(err)
    generator = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own_nodes(fn))
    site = (location.path, location.line) if changed else None
    return Replay(index, f"{module}.{name}", location.role, module, name, import_root, args, kwargs,
                  receiver, generator, constructs, class_roots, site, changed)


def _class_roots(root: Path, import_root: str, specs: Sequence[ObjectSpec]) -> tuple[str, ...]:
    """The repo folders the classes of rebuilt objects import from; NotRebuildable when one of them
    is not a class defined at the top of a module of the repo (or nested in such a class)."""
    found: set[str] = set()
    # Each class once: a tree of nested objects names the same few classes many times.
    for module, qualname in dict.fromkeys((spec.module, spec.qualname) for spec in specs):
        where = _class_root(root, import_root, module, qualname)
        if where is None:
            raise NotRebuildable(f"the class {module}.{qualname} of a rebuilt object is not defined in the repo "
                                 "at this commit")
        found.add(where)
    return tuple(sorted(found - {import_root}))


def _class_root(root: Path, import_root: str, module: str, qualname: str) -> str | None:
    parts = module.split(".")
    if not all(p.isidentifier() and not keyword.iskeyword(p) for p in (*parts, *qualname.split("."))):
        return None
    for base in dict.fromkeys((import_root, "", "src")):
        for rel in ("/".join(parts) + ".py", "/".join(parts) + "/__init__.py"):
            path = root / base / rel if base else root / rel
            if not path.is_file():
                continue
            try:
                tree = ast.parse(read_source(path))
            except (Undecodable, OSError, SyntaxError):
                return None
            return base if _definitions(tree, qualname, (ast.ClassDef,)) else None
    return None


def _definitions(tree: ast.Module, qualname: str, kinds: tuple[type[ast.stmt], ...]) -> list[ast.stmt] | None:
    """The definitions a qualname names, outermost first, each the last of its name (and of `kinds`)
    in the body of the one before; None when a part is not found."""
    body: list[ast.stmt] = tree.body
    chain: list[ast.stmt] = []
    for part in qualname.split("."):
        node = next((n for n in reversed(body) if isinstance(n, kinds) and getattr(n, "name", None) == part), None)
        if node is None:
            return None
        chain.append(node)
        body = node.body  # type: ignore[attr-defined]  # every kind passed is a definition with a body
    return chain


def _function_node(tree: ast.Module, qualname: str) -> tuple[_Fn, ast.ClassDef | None] | None:
    """The function a qualname names, and the class it is defined in (None: module level)."""
    chain = _definitions(tree, qualname, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    if chain is None or not all(isinstance(n, ast.ClassDef) for n in chain[:-1]):
        return None  # not found, or a function inside a function: not reachable from outside
    node, owner = chain[-1], chain[-2] if len(chain) > 1 else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    assert owner is None or isinstance(owner, ast.ClassDef)
    return node, owner


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
    roots = sorted({r.import_root for r in replays} | {c for r in replays for c in r.class_roots})
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
import traceback

import pytest

for _root in {roots!r}:
    sys.path.insert(0, os.path.join(os.environ.get("AUTOFIX_REPO", os.getcwd()), _root))

EXCEPTION = {exc_type.rsplit(".", 1)[-1]!r}


async def _wait(awaitable):
    return await awaitable


def _build(node, made):
    """A value from its encoding: ("v", literal), containers, ("obj", ...) and ("ref", id)."""
    kind = node[0]
    if kind == "v":
        return node[1]
    if kind == "ref":
        return made[node[1]]
    if kind == "list":
        return [_build(n, made) for n in node[1]]
    if kind == "dict":
        return {{k: _build(n, made) for k, n in node[1].items()}}
    if kind in ("tuple", "set", "frozenset"):
        return {{"tuple": tuple, "set": set, "frozenset": frozenset}}[kind](_build(n, made) for n in node[1])
    _, module, qualname, ident, state, fields, items, elements = node
    cls = importlib.import_module(module)
    for name in qualname.split("."):
        cls = getattr(cls, name)
    obj = cls.__new__(cls)
    made[ident] = obj
    if state:
        obj.__dict__.update({{k: _build(n, made) for k, n in state.items()}})
    for name, n in fields.items():
        object.__setattr__(obj, name, _build(n, made))
    if items is not None:
        dict.update(obj, {{k: _build(n, made) for k, n in items.items()}})
    if elements is not None:
        list.extend(obj, [_build(n, made) for n in elements])
    return obj


def _through(exc, site):
    """Whether the exception was raised through the repo file's line `site` = (path, line)."""
    path, line = site
    return any(f.lineno == line and f.filename.replace(os.sep, "/").endswith("/" + path)
               for f in traceback.extract_tb(exc.__traceback__))


def _replay(module, qualname, args, kwargs, receiver=None, generator=False, site=None):
    target = importlib.import_module(module)
    args = tuple(_build(a, {{}}) for a in args)
    kwargs = {{k: _build(v, {{}}) for k, v in kwargs.items()}}
    if receiver is None:
        for name in qualname:
            target = getattr(target, name)
    else:
        for name in qualname[:-1]:
            target = getattr(target, name)
        obj = _build(receiver, {{}})
        if not isinstance(obj, target):
            raise TypeError("the rebuilt receiver is a " + type(obj).__qualname__ + ", not a " + target.__qualname__)
        # The frame's own function, not an override a subclass may have; a property's getter.
        method = inspect.getattr_static(target, qualname[-1])
        method = getattr(method, "fget", None) or getattr(method, "func", None) or method
        target = method.__get__(obj, type(obj))
    try:
        result = target(*args, **kwargs)
        if inspect.isawaitable(result):
            asyncio.run(_wait(result))
        elif generator:
            for _ in zip(range(100_000), result):
                pass
    except Exception as exc:
        if type(exc).__name__ == EXCEPTION and (site is None or _through(exc, site)):
            pytest.fail("{MARKER} " + type(exc).__name__ + ": " + str(exc)[:200])
        raise


{tests}
'''


def _render_test(replay: Replay) -> str:
    receiver = encode(replay.receiver) if replay.receiver is not None else None
    args = tuple(encode(a) for a in replay.args)
    kwargs = {k: encode(v) for k, v in replay.kwargs.items()}
    doc = f"{replay.role} {replay.name}" + (f", with the values at the crash: {replay.approximate}"
                                             if replay.approximate else "")
    return f'''def {replay.test_name}():
    {repr(doc)}
    _replay({replay.module!r}, {replay.call_path!r}, {args!r}, {kwargs!r},
            receiver={receiver!r}, generator={replay.generator!r}, site={replay.site!r})'''

