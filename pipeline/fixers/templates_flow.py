"""Templates for control flow that leaves a value missing: a local read before any assignment on
this path, and next() on an iterator that ran out.

- unbound_init    UnboundLocalError: initialise the variable just before the branch (or loop) that
                  assigns it, with the value its use at the crash needs (None for `x is not None`,
                  [] for `x.append`, the function's neutral value for `return x`)
- next_default    StopIteration from `next(it)`: `next(it, <default>)`; inside a loop, also stop
                  the loop when the iterator runs out; else leave the function as its caller expects
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import libcst as cst
import libcst.matchers as m

from pipeline.fixers.cst_site import CrashSite
from pipeline.fixers.template_kit import (
    NEUTRAL_BY_TYPE,
    Rewrite,
    binds_name,
    early_exits,
    insert_above,
    neutral_for_use,
    own_nodes,
    replace_node,
    wrap_try,
)
from pipeline.records import ExceptionInfo

_UNBOUND = re.compile(r"(?:cannot access local variable|local variable) '(\w+)'")
MAX_VARIANTS = 3


def _target_binds(target: cst.BaseExpression, name: str) -> bool:
    """`x`, `x, y`, `(a, *x)`: the names an assignment target binds (not `obj.x` nor `d[x]`)."""
    if isinstance(target, cst.Name):
        return target.value == name
    if isinstance(target, (cst.Tuple, cst.List)):
        return any(_target_binds(e.value, name) for e in target.elements)
    if isinstance(target, cst.StarredElement):
        return _target_binds(target.value, name)
    return False


def _binds(node: cst.CSTNode, name: str) -> bool:
    """Whether this node (not its children) assigns `name` in the function's scope."""
    if isinstance(node, cst.Assign):
        return any(_target_binds(t.target, name) for t in node.targets)
    if isinstance(node, cst.AnnAssign):
        return node.value is not None and _target_binds(node.target, name)
    if isinstance(node, cst.For):
        return _target_binds(node.target, name)
    if isinstance(node, cst.WithItem):
        return node.asname is not None and _target_binds(node.asname.name, name)
    if isinstance(node, cst.NamedExpr):
        return _target_binds(node.target, name)
    if isinstance(node, (cst.Import, cst.ImportFrom)) and not isinstance(node.names, cst.ImportStar):
        for alias in node.names:
            bound = alias.asname.name if alias.asname else alias.name
            if isinstance(bound, cst.Name) and bound.value == name:
                return True
    return False


def _binding_values(site: CrashSite, name: str) -> list[cst.BaseExpression]:
    assert site.function is not None
    values: list[cst.BaseExpression] = []
    for node in own_nodes(site.function):
        if isinstance(node, cst.Assign) and any(m.matches(t.target, m.Name(name)) for t in node.targets):
            values.append(node.value)
        elif isinstance(node, cst.AnnAssign) and node.value is not None and m.matches(node.target, m.Name(name)):
            values.append(node.value)
    return values


def _contains_binding(node: cst.CSTNode, name: str) -> bool:
    found = False

    class _Walk(cst.CSTVisitor):
        def on_visit(self, inner: cst.CSTNode) -> bool:
            nonlocal found
            if found or isinstance(inner, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                return False
            if _binds(inner, name):
                found = True
                return False
            return True

    node.visit(_Walk())
    return found


def _init_point(site: CrashSite, name: str) -> cst.CSTNode | None:
    """The statement to initialise before, innermost block first: an earlier sibling that assigns the
    name inside a branch, else the compound statement around the crash that assigns it elsewhere (the
    other arm of an `if`, the `try:` body of the handler that crashed, a later line of the loop)."""
    child: cst.CSTNode = site.statement
    parent = site.parent(child)
    while parent is not None and child is not site.function:
        if isinstance(parent, cst.IndentedBlock):
            for stmt in parent.body:
                if stmt is child:
                    break
                if _contains_binding(stmt, name):
                    # An unconditional assignment just before: the crash is not from a missing branch.
                    return stmt if not isinstance(stmt, cst.SimpleStatementLine) else None
            if not isinstance(child, cst.SimpleStatementLine) and _contains_binding(child, name):
                return child
        child, parent = parent, site.parent(parent)
    return None


def _use_value(site: CrashSite, name: str) -> str | None:
    for node in site.expressions:
        if not isinstance(node, cst.Name) or node.value != name:
            continue
        parent = site.parent(node)
        if isinstance(parent, cst.AugAssign) and parent.target is node:
            if isinstance(parent.value, (cst.SimpleString, cst.FormattedString)):
                return '""'
            if isinstance(parent.value, (cst.List, cst.ListComp)):
                return "[]"
            return "0"
        return neutral_for_use(site, node)
    return None


def _typed_value(site: CrashSite, name: str) -> str | None:
    kinds: set[str] = set()
    for value in _binding_values(site, name):
        if isinstance(value, (cst.List, cst.ListComp)):
            kinds.add("list")
        elif isinstance(value, (cst.Dict, cst.DictComp)):
            kinds.add("dict")
        elif isinstance(value, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            kinds.add("str")
        elif isinstance(value, cst.Integer):
            kinds.add("int")
        elif isinstance(value, cst.Float):
            kinds.add("float")
        elif isinstance(value, cst.Call) and isinstance(value.func, cst.Name) and value.func.value in NEUTRAL_BY_TYPE:
            kinds.add(value.func.value)
        else:
            return None  # some assignment of another kind: no type to name
    return NEUTRAL_BY_TYPE[kinds.pop()] if len(kinds) == 1 else None


def unbound_init(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    match = _UNBOUND.search(exc.value) if exc.type in ("UnboundLocalError", "NameError") else None
    if match is None or site.function is None:
        return
    name = match.group(1)
    params = site.function.params
    every = (*params.posonly_params, *params.params, *params.kwonly_params)
    if any(p.name.value == name for p in every) or binds_name(site.module, name):
        return  # a parameter, or a module-level name the function shadows: the fix is not an initialiser
    point = _init_point(site, name)
    if point is None:
        return
    values = [v for v in (_use_value(site, name), _typed_value(site, name), "None") if v]
    seen: list[str] = []
    for value in values:
        if value in seen:
            continue
        seen.append(value)
        yield Rewrite("unbound_init", insert_above(site, point, f"{name} = {value}\n"),
                      f"initialise `{name}` to {value} before the branch that assigns it")
        if len(seen) >= 2:
            return


def _is_next(node: cst.CSTNode) -> bool:
    return m.matches(node, m.Call(func=m.Name("next"), args=[m.Arg(keyword=None, star="")]))


def next_default(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    """`next(it, default)`; or leave the loop or the function when the iterator is exhausted.

    The default goes first when the value is discarded or has a neutral value its use can take;
    a None that is then used (`admin = next(...)`; `admin["name"]`) only moves the crash, so there
    the early exits go first.
    """
    if not (exc.type == "StopIteration" or (exc.type == "RuntimeError" and "raised StopIteration" in exc.value)):
        return
    calls = [n for n in site.expressions if isinstance(n, cst.Call) and _is_next(n)]
    if not calls:
        return
    call = calls[0]  # the first next() on the line; several on one line is rare enough not to guess
    assert isinstance(call, cst.Call)
    default = neutral_for_use(site, call)
    value = call.args[0].value
    arg = site.code(value)
    bare_genexp = isinstance(value, cst.GeneratorExp) and not value.lpar
    with_default = f"next({f'({arg})' if bare_genexp else arg}, {default})"
    shown = "next(...)" if bare_genexp else f"next({arg})"
    rewrites = [Rewrite("next_default", replace_node(site, call, with_default),
                        f"give `{shown}` the default {default} for when it is exhausted")]
    # In a loop the iterator running out ends the loop; leaving the function from inside it would
    # drop whatever the loop has done so far.
    exits = [("break", "stop the loop")] if site.in_loop else early_exits(site)
    for stmt, how in exits:
        source = wrap_try(site, "StopIteration", [stmt])
        if source is not None:
            rewrites.append(Rewrite("next_exhausted", source, f"when `{shown}` has nothing left, {how}"))
    discarded = isinstance(site.parent(call), cst.Expr)
    if not discarded and default == "None":
        rewrites = rewrites[1:] + rewrites[:1]
    yield from rewrites[:MAX_VARIANTS]


FLOW_TEMPLATES = (unbound_init, next_default)
