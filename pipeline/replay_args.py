"""Whether a frame's captured values are the arguments its call really received, and rebuilding them.

Sentry's locals are a snapshot at crash time, serialised by the SDK and scrubbed by us. A value is
usable for a replay only when all of these hold, and each failure is an error naming the reason:

- every leaf is a Python literal (`rebuild`); an object's repr is not;
- no leaf is a scrubbing marker (`[Filtered...]`, ours or the SDK's): the marker is not the user's data;
- the SDK did not trim it: `_meta` in the raw payload says so when present, but sentry-python drops
  the `_meta` of frame variables (they are serialised on their own, early), so a container holding
  exactly the SDK's breadth limit of items may have been cut and is refused too, as is a string
  cut at the length limit;
- the function did not change the parameter before the frame's line (an assignment to it, or an
  in-place change such as `.pop()`): the snapshot then shows the changed value, not the call's;
- a method's receiver is rebuilt only from a repr of the form `Cls(field=<literal>, ...)` (dataclasses,
  attrs, namedtuple-style reprs) naming the class the method is defined on; by default sentry-python
  sends `self` as `<pkg.Cls object at 0x...>`, which cannot be rebuilt;
- an app that opts in to pipeline/sdk_objects.py sends in-app objects (receivers and arguments) as a
  tagged description of their attributes; `rebuild` turns it into an `ObjectSpec` only when every
  attribute, recursively, is a literal, a nested description or a reference to an enclosing object,
  with nothing scrubbed and nothing left out. Whether the class exists in the repo is the planner's
  check (pipeline/repro.py), and whether the rebuilt object really reproduces the crash is the
  replay's: it must fail with the event's exception before the patch.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.records import ErrorEvent

SDK_BREADTH = 10  # sentry_sdk.serializer.MAX_DATABAG_BREADTH: items kept of a list or dict
_MARKER = re.compile(r"\[Filtered[^\]]*\]")
_MUTATORS = frozenset("append extend insert pop popitem remove clear update setdefault add discard "
                      "sort reverse appendleft extendleft popleft rotate".split())
_Fn = ast.FunctionDef | ast.AsyncFunctionDef


class NotRebuildable(ValueError):
    pass


TAG = "__autofix__"  # pipeline/sdk_objects.py's tag on what is not plain JSON


@dataclass(frozen=True, eq=False)
class ObjectSpec:
    """An object to rebuild: `cls.__new__(cls)`, then its `__dict__` and its slot (or frozen) fields."""

    module: str
    qualname: str
    id: int  # what a Ref inside it points back to
    dict_attrs: Mapping[str, Any]  # into the instance __dict__ as they are
    slot_attrs: Mapping[str, Any]  # through object.__setattr__: slots, frozen dataclass fields
    dict_items: Mapping[str, Any] | None = None  # a dict subclass's own contents
    list_items: tuple[Any, ...] | None = None  # a list subclass's own contents

    @property
    def attrs(self) -> dict[str, Any]:
        return {**self.dict_attrs, **self.slot_attrs}

    @property
    def cls(self) -> str:
        return f"{self.module}.{self.qualname}"


@dataclass(frozen=True)
class Ref:
    """The enclosing object being rebuilt with this id: a cycle."""

    id: int


@dataclass(frozen=True, eq=False)
class Tagged:
    """A tuple, set or frozenset that holds an ObjectSpec (so it cannot be built before the replay)."""

    kind: str
    items: tuple[Any, ...]


Receiver = ObjectSpec  # a method's `self`


def rebuild(value: Any, _enclosing: tuple[int, ...] = ()) -> Any:
    """The Python value behind Sentry's serialisation of a local variable (ObjectSpec for objects)."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        try:
            return ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise NotRebuildable(value[:80]) from exc
    if isinstance(value, list):
        return [rebuild(v, _enclosing) for v in value]
    if isinstance(value, dict):
        if TAG in value:
            return _tagged(value, _enclosing)
        return {k: rebuild(v, _enclosing) for k, v in value.items()}
    raise NotRebuildable(repr(value)[:80])


def _tagged(node: Mapping[str, Any], enclosing: tuple[int, ...]) -> Any:
    kind = node.get(TAG)
    if kind == "ref":
        target = node.get("id")
        if not isinstance(target, int) or target not in enclosing:
            raise NotRebuildable("a reference to an object that is not one of its enclosing objects")
        return Ref(target)
    if kind in ("tuple", "set", "frozenset"):
        items = node.get("items")
        if not isinstance(items, list):
            raise NotRebuildable(f"a {kind} without its items")
        built = [rebuild(v, enclosing) for v in items]
        if any(_holds_spec(v) for v in built):
            return Tagged(str(kind), tuple(built))
        try:
            return {"tuple": tuple, "set": set, "frozenset": frozenset}[str(kind)](built)
        except TypeError as exc:  # an unhashable item in a set
            raise NotRebuildable(f"a {kind} whose items do not rebuild: {exc}") from exc
    if kind != "object":
        raise NotRebuildable(f"an unknown description {str(kind)[:40]!r}")
    return _object(node, enclosing)


def _object(node: Mapping[str, Any], enclosing: tuple[int, ...]) -> ObjectSpec:
    qualified, own = node.get("class"), node.get("id")
    if not isinstance(qualified, str) or qualified.count(":") != 1 or not isinstance(own, int):
        raise NotRebuildable("an object description without its class")
    module, qualname = qualified.split(":")
    if "truncated" in node:
        raise NotRebuildable(f"{module}.{qualname} was sent without its attributes ({str(node['truncated'])[:60]})")
    inside = (*enclosing, own)
    parts: dict[str, Any] = {}
    for part in ("attrs", "slots", "dict", "list"):
        if part not in node:
            continue
        value = node[part]
        try:
            if part in ("attrs", "slots", "dict"):
                if not isinstance(value, dict) or TAG in value:
                    raise NotRebuildable(str(value)[:80])
                parts[part] = {str(k): rebuild(v, inside) for k, v in value.items()}
            else:
                if not isinstance(value, list):
                    raise NotRebuildable(str(value)[:80])
                parts[part] = tuple(rebuild(v, inside) for v in value)
        except NotRebuildable as exc:
            raise NotRebuildable(f"{module}.{qualname} {_part_name(part, exc)}") from exc
    if "attrs" not in parts and "slots" not in parts:
        raise NotRebuildable(f"{module}.{qualname} was sent without its attributes")
    return ObjectSpec(module, qualname, own, parts.get("attrs", {}), parts.get("slots", {}),
                      parts.get("dict"), parts.get("list"))


def _part_name(part: str, exc: NotRebuildable) -> str:
    text = str(exc)
    if part in ("attrs", "slots"):
        return f"has an attribute that is not a literal: {text}"
    return f"holds an item that is not a literal: {text}"


def _holds_spec(value: Any) -> bool:
    if isinstance(value, (ObjectSpec, Ref, Tagged)):
        return True
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_holds_spec(v) for v in value)
    if isinstance(value, dict):
        return any(_holds_spec(v) for v in value.values())
    return False


def specs_in(value: Any) -> list[ObjectSpec]:
    """Every ObjectSpec inside a rebuilt value, outermost first."""
    found: list[ObjectSpec] = []
    todo = [value]
    while todo:
        item = todo.pop(0)
        if isinstance(item, ObjectSpec):
            found.append(item)
            todo += [*item.dict_attrs.values(), *item.slot_attrs.values(), *(item.dict_items or {}).values(),
                     *(item.list_items or ())]
        elif isinstance(item, Tagged):
            todo += list(item.items)
        elif isinstance(item, (list, tuple, set, frozenset)):
            todo += list(item)
        elif isinstance(item, dict):
            todo += list(item.values())
    return found


def encode(value: Any) -> Any:
    """A rebuilt value as the literal tree the replay harness decodes: ("v", literal) for plain data."""
    if not _holds_spec(value):
        return ("v", value)
    if isinstance(value, ObjectSpec):
        return ("obj", value.module, value.qualname, value.id,
                {k: encode(v) for k, v in value.dict_attrs.items()},
                {k: encode(v) for k, v in value.slot_attrs.items()},
                None if value.dict_items is None else {k: encode(v) for k, v in value.dict_items.items()},
                None if value.list_items is None else [encode(v) for v in value.list_items])
    if isinstance(value, Ref):
        return ("ref", value.id)
    if isinstance(value, Tagged):
        return (value.kind, [encode(v) for v in value.items])
    if isinstance(value, list):
        return ("list", [encode(v) for v in value])
    if isinstance(value, tuple):
        return ("tuple", [encode(v) for v in value])
    if isinstance(value, dict):
        return ("dict", {k: encode(v) for k, v in value.items()})
    raise NotRebuildable(f"cannot encode {type(value).__name__}")


# --- scrubbed and trimmed values -----------------------------------------------------------------


def tainted(param: str, value: Any, meta: Any = None) -> None:
    """Raise NotRebuildable when `value` was scrubbed or trimmed on its way here."""
    marker = _find_marker(value)
    if marker is not None:
        raise NotRebuildable(f"argument {param!r} was scrubbed ({marker} is not the user's data)")
    trimmed = _meta_trim(meta)
    if trimmed is not None:
        raise NotRebuildable(f"argument {param!r} was trimmed by the SDK ({trimmed})")
    cut = _at_limit(value)
    if cut is not None:
        raise NotRebuildable(f"argument {param!r} {cut}")


def _find_marker(value: Any) -> str | None:
    if isinstance(value, str):
        found = _MARKER.search(value)
        return found.group() if found else None
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        found_in = _find_marker(child)
        if found_in is not None:
            return found_in
    return None


def _meta_trim(meta: Any) -> str | None:
    """What `_meta` says was cut: {"": {"len": 15}} on a container, {"": {"rem": [...]}} on a string."""
    if not isinstance(meta, dict):
        return None
    own = meta.get("")
    if isinstance(own, dict):
        if "len" in own:
            return f"it had {own['len']} items or characters"
        for rule in own.get("rem") or ():
            if isinstance(rule, list) and len(rule) >= 4:  # [rule, type, start, end]: a substring cut
                return "a string was cut"
    for key, child in meta.items():
        if key != "":
            found = _meta_trim(child)
            if found is not None:
                return found
    return None


def _at_limit(value: Any) -> str | None:
    if isinstance(value, dict) and TAG in value:
        return None  # sdk_objects bounds its descriptions itself, with a `<... not sent>` text where it cut
    if isinstance(value, (list, dict)):
        if len(value) == SDK_BREADTH:
            return (f"holds exactly {SDK_BREADTH} items, the SDK's limit for a container: "
                    "it may have been cut")
        children = value.values() if isinstance(value, dict) else value
        for child in children:
            found = _at_limit(child)
            if found is not None:
                return found
    if isinstance(value, str) and value.endswith("...") and value[:1] in "'\"bB":
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return "was cut at the SDK's length limit"
    return None


def vars_meta(event: ErrorEvent, position: int) -> Mapping[str, Any]:
    """The raw payload's `_meta` for the vars of frame `position` of the escaping exception."""
    payload: Any = event.raw
    if isinstance(payload, Mapping) and "exception" not in payload and isinstance(payload.get("data"), Mapping):
        payload = payload["data"].get("event") or payload["data"].get("error") or {}  # webhooks
    meta = payload.get("_meta") if isinstance(payload, Mapping) else None
    index = str(len(event.exceptions) - 1)
    for key in ("exception", "values", index, "stacktrace", "frames", str(position), "vars"):
        if not isinstance(meta, Mapping):
            return {}
        meta = meta.get(key)
    return meta if isinstance(meta, Mapping) else {}


# --- parameters changed before the frame's line --------------------------------------------------


def changed_before(fn: _Fn, line: int, ignore: set[str] | frozenset[str] = frozenset()) -> str | None:
    """Why a parameter's captured value may not be the one passed: the first change found.

    `ignore` names parameters the replay does not take from the event (an __init__'s self).
    """
    params = {p.arg for p in (*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs,
                              fn.args.vararg, fn.args.kwarg) if p is not None} - set(ignore)
    loops = [n for n in own_nodes(fn) if isinstance(n, (ast.For, ast.AsyncFor, ast.While))
             and n.lineno <= line <= (n.end_lineno or n.lineno)]
    changes: list[tuple[int, str, str]] = []
    for node in own_nodes(fn):
        where = node.optional_vars if isinstance(node, ast.withitem) else node
        for name, how in _changes(node):
            if name in params:
                changes.append((getattr(where, "lineno", line), name, how))
    for lineno, name, how in sorted(changes):
        in_loop = any(loop.lineno <= lineno <= (loop.end_lineno or loop.lineno) for loop in loops)
        if lineno < line or (in_loop and lineno != line):
            what = "reassigned" if how == "=" else f"changed in place ({how})"
            when = f"before line {line}" if lineno < line else f"in a loop that runs line {line} again"
            return (f"parameter {name!r} is {what} on line {lineno}, {when}: "
                    "the event shows its value at the crash, not the one the call passed")
    return None


def _changes(node: ast.AST) -> list[tuple[str, str]]:
    """(parameter name, how) for each way `node` rebinds or changes a name."""
    found: list[tuple[str, str]] = []
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and (not isinstance(node, ast.AnnAssign) or node.value):
        targets = [node.target]
    elif isinstance(node, (ast.For, ast.AsyncFor)):
        targets = [node.target]
    elif isinstance(node, ast.withitem) and node.optional_vars is not None:
        targets = [node.optional_vars]
    elif isinstance(node, ast.NamedExpr):
        targets = [node.target]
    elif isinstance(node, ast.Delete):
        targets = list(node.targets)
    elif isinstance(node, ast.ExceptHandler) and node.name:
        found.append((node.name, "="))
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        found += [((a.asname or a.name).split(".")[0], "=") for a in node.names]
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS:
        base = _base_name(node.func.value)
        if base is not None:
            found.append((base, f".{node.func.attr}()"))
    for target in targets:
        found += _target_names(target)
    return found


def _target_names(target: ast.AST) -> list[tuple[str, str]]:
    if isinstance(target, ast.Name):
        return [(target.id, "=")]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [pair for element in target.elts for pair in _target_names(element)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Subscript, ast.Attribute)):
        base = _base_name(target)
        kind = "item set" if isinstance(target, ast.Subscript) else "attribute set"
        return [(base, kind)] if base is not None else []
    return []


def _base_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Subscript, ast.Attribute)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def own_nodes(fn: _Fn) -> list[ast.AST]:
    out: list[ast.AST] = []
    todo: list[ast.AST] = list(fn.body)
    while todo:
        node = todo.pop()
        out.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                                 ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            todo.extend(ast.iter_child_nodes(node))
    return out


# --- call values ---------------------------------------------------------------------------------


def call_values(fn: _Fn, frame_vars: Mapping[str, Any], skip: str | None = None
                ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The positional and keyword arguments that rebuild the call from the captured parameters.

    `skip` is the parameter Python binds itself (a method's self or cls).
    """
    a = fn.args
    positional = [p for p in (*a.posonlyargs, *a.args) if p.arg != skip]
    n_posonly = len([p for p in a.posonlyargs if p.arg != skip])
    defaults_from = len(positional) - len(a.defaults)
    extra_args = rebuild(frame_vars[a.vararg.arg]) if a.vararg and a.vararg.arg in frame_vars else []
    if not isinstance(extra_args, (list, tuple)):
        raise NotRebuildable(f"*{a.vararg.arg if a.vararg else ''} is not a sequence")
    # Extra positional values can only follow every named one given positionally (f(1, 2, *rest)).
    by_position = n_posonly if not extra_args else len(positional)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    gap: str | None = None  # a positional parameter left to its default: later ones cannot follow it
    for i, param in enumerate(positional):
        if param.arg in frame_vars:
            value = _value(param.arg, frame_vars[param.arg])
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
            kwargs[param.arg] = _value(param.arg, frame_vars[param.arg])
        elif default is None:
            raise NotRebuildable(f"argument {param.arg!r} was not captured")
    if a.kwarg and a.kwarg.arg in frame_vars:
        extra = _value(a.kwarg.arg, frame_vars[a.kwarg.arg])
        if isinstance(extra, dict):
            kwargs.update(extra)
    return tuple(args), kwargs


def _value(name: str, serialised: Any) -> Any:
    try:
        return rebuild(serialised)
    except NotRebuildable as exc:
        raise NotRebuildable(f"argument {name!r} is not a literal: {exc}") from exc


# --- receivers -----------------------------------------------------------------------------------


def receiver_of(param: str, serialised: Any, owner: ast.ClassDef, method: str) -> Receiver:
    """`self` rebuilt from its captured description or repr, or NotRebuildable saying why it cannot be.

    A description (pipeline/sdk_objects.py) may name a subclass of `owner`: the replay checks
    that the rebuilt object is an instance of the class the method is defined on.
    """
    if isinstance(serialised, dict) and serialised.get(TAG) == "object":
        try:
            built = rebuild(serialised)
        except NotRebuildable as exc:
            raise NotRebuildable(f"method {method}: its receiver {param!r} cannot be rebuilt: {exc}") from exc
        assert isinstance(built, ObjectSpec)
        return built
    shown = repr(serialised)[:80] if serialised is not None else "not captured"
    if not isinstance(serialised, str):
        raise NotRebuildable(f"method {method}: its receiver {param!r} was {shown}; it cannot be rebuilt")
    try:
        node = ast.parse(serialised.strip(), mode="eval").body
    except SyntaxError:
        node = None
    if not isinstance(node, ast.Call) or node.args or not node.keywords:
        raise NotRebuildable(f"method {method}: its receiver {param!r} is {shown}, which shows no "
                             "attributes; the object cannot be rebuilt")
    called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
    if called != owner.name:
        raise NotRebuildable(f"method {method}: its receiver is a {called}, not the in-app class "
                             f"{owner.name} the method is defined on")
    attrs: dict[str, Any] = {}
    for kw in node.keywords:
        if kw.arg is None:
            raise NotRebuildable(f"method {method}: the receiver's repr unpacks a mapping")
        try:
            attrs[kw.arg] = ast.literal_eval(kw.value)
        except (ValueError, SyntaxError) as exc:
            raise NotRebuildable(f"method {method}: the receiver's attribute {kw.arg!r} is not a literal "
                                 f"({ast.unparse(kw.value)[:60]})") from exc
    missing = [name for name in _declared_fields(owner) if name not in attrs]
    if missing:
        raise NotRebuildable(f"method {method}: the receiver's repr leaves out {', '.join(missing)}")
    if Counter(kw.arg for kw in node.keywords).most_common(1)[0][1] > 1:
        raise NotRebuildable(f"method {method}: the receiver's repr names an attribute twice")
    return ObjectSpec("", owner.name, 0, {}, attrs)  # module: the method's own, filled in by the planner


def _declared_fields(owner: ast.ClassDef) -> list[str]:
    """Annotated class attributes (dataclass and attrs fields), ClassVars left out."""
    names = []
    for stmt in owner.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if "ClassVar" not in ast.unparse(stmt.annotation):
                names.append(stmt.target.id)
    return names
