"""Templates for a value that does not parse: int(), float() or Decimal() given text they reject.

- parse_guard     the parse inside `try:`, and on failure the function's own fallback: its `default`
                  parameter, the exception it raises elsewhere for bad input, the value another of its
                  handlers returns, skipping the item in a loop, or what the caller can use
- handler_widen   the crash sits inside a `try:` whose handlers catch something else (a LookupError
                  say): add the parse error to the handler the function already has; or a handler
                  catches ValueError and the same call raised its sibling (OverflowError from
                  `chr(10**20)`, a UnicodeDecodeError): add that one

A fallback is only proposed when the function shows one; verification replays the callers, so a
variant that merely swallows the error moves the crash and is rejected there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence, Set

import libcst as cst

from pipeline.fixers.cst_site import CrashSite
from pipeline.fixers.template_kit import (
    LITERALS,
    ReplaceNode,
    Rewrite,
    binds_name,
    callee_name,
    early_exits,
    own_nodes,
    wrap_try,
)
from pipeline.records import ExceptionInfo

_PARSE_TYPES = frozenset({"ValueError", "InvalidOperation", "ConversionSyntax"})
_DECIMAL_TYPES = frozenset({"InvalidOperation", "ConversionSyntax"})
_PARSE_MESSAGE = re.compile(
    r"invalid literal for (?:int|float|Decimal)\(\)|could not convert string to (?:float|int)"
    r"|for integer string conversion|complex\(\) arg is a malformed string|ConversionSyntax"
    r"|could not convert string to complex"
)
_PARSE_CALLS = frozenset({"int", "float", "Decimal", "complex"})
# A call whose name says it converts a number (werkzeug's `self.num_convert(value)`).
_PARSE_LIKE = re.compile(r"int|float|decimal|num|conv|pars", re.IGNORECASE)
_DEFAULT_PARAM = re.compile(r"^(?:default|fallback|otherwise|on_error|default_\w+|\w+_default)$")
# Exceptions too generic to be "the function's way of rejecting input".
_NOT_DOMAIN = frozenset({"ValueError", "TypeError", "KeyError", "IndexError", "AttributeError", "Exception",
                         "RuntimeError", "NotImplementedError", "AssertionError", "StopIteration"})
_UNPACKING = re.compile(r"values to unpack|too many values|not enough values")
MAX_VARIANTS = 3


def _catch_name(site: CrashSite, exc: ExceptionInfo) -> str:
    """The name to catch: ValueError, or Decimal's InvalidOperation by whatever name the file can use."""
    if exc.type not in _DECIMAL_TYPES:
        return "ValueError"
    if binds_name(site.module, "InvalidOperation"):
        return "InvalidOperation"
    if binds_name(site.module, "decimal"):
        return "decimal.InvalidOperation"
    return "ArithmeticError"  # InvalidOperation's builtin base class: no import needed


def _parse_calls(site: CrashSite, exc: ExceptionInfo) -> list[cst.Call]:
    calls = [n for n in site.expressions if isinstance(n, cst.Call)]
    named = [c for c in calls if callee_name(c) in _PARSE_CALLS]
    if named:
        return named
    if not _PARSE_MESSAGE.search(exc.value) and exc.type not in _DECIMAL_TYPES:
        return []  # an unnamed call and a message that does not say it parsed: not this template's
    return [c for c in calls if _PARSE_LIKE.search(callee_name(c) or "")]


def _is_raise(site: CrashSite) -> bool:
    stmt = site.statement
    return isinstance(stmt, cst.SimpleStatementLine) and any(isinstance(s, cst.Raise) for s in stmt.body)


def _simple(node: cst.CSTNode) -> bool:
    """An expression that means the same anywhere in the function: a literal, a name, a plain call."""
    if isinstance(node, (*LITERALS, cst.Name)):
        return True
    if isinstance(node, cst.Attribute):
        return _simple(node.value)
    if isinstance(node, cst.Call):
        return _simple(node.func) and all(isinstance(a.value, LITERALS) for a in node.args)
    return False


def _own_raises(site: CrashSite) -> list[str]:
    """`raise X(...)` statements the function uses for bad input elsewhere, as code, first first."""
    assert site.function is not None
    out: list[str] = []
    for node in own_nodes(site.function):
        if not isinstance(node, cst.Raise) or node.exc is None or not _simple(node.exc):
            continue
        target = node.exc.func if isinstance(node.exc, cst.Call) else node.exc
        name = site.code(target).rsplit(".", 1)[-1]
        code = f"raise {site.code(node.exc)} from None"
        if name not in _NOT_DOMAIN and code not in out:
            out.append(code)
    return out


def _default_params(site: CrashSite) -> list[str]:
    assert site.function is not None
    params = site.function.params
    return [p.name.value for p in (*params.params, *params.kwonly_params)
            if p.default is not None and _DEFAULT_PARAM.match(p.name.value)]


def handler_returns(site: CrashSite) -> list[str]:
    """`return X` of the function's other exception handlers whose body is just that return."""
    assert site.function is not None
    out: list[str] = []
    for node in own_nodes(site.function):
        if not isinstance(node, cst.ExceptHandler) or not isinstance(node.body, cst.IndentedBlock):
            continue
        body = node.body.body
        if len(body) == 1 and isinstance(body[0], cst.SimpleStatementLine) and len(body[0].body) == 1:
            ret = body[0].body[0]
            if isinstance(ret, cst.Return) and (ret.value is None or _simple(ret.value)):
                code = site.code(ret).strip()
                if code not in out:
                    out.append(code)
    return out


def _assigned_name(site: CrashSite) -> str | None:
    stmt = site.statement
    if isinstance(stmt, cst.SimpleStatementLine) and len(stmt.body) == 1:
        small = stmt.body[0]
        if isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
            return small.targets[0].target.value
        if isinstance(small, cst.AnnAssign) and isinstance(small.target, cst.Name) and small.value is not None:
            return small.target.value
    return None


def parse_guard(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    if exc.type not in _PARSE_TYPES or site.function is None or _is_raise(site):
        return
    calls = _parse_calls(site, exc)
    if not calls:
        return
    catch = _catch_name(site, exc)
    if caught_around(site, _CATCHES_ALL | {catch}):
        return  # already caught around here: the crash did not escape from this statement
    parsed = site.code(calls[0])
    handlers: list[tuple[list[str], str]] = []
    target = _assigned_name(site)
    for param in _default_params(site):
        if target is not None:
            handlers.append(([f"{target} = {param}"], f"use the `{param}` the caller passed"))
        handlers.append(([f"return {param}"], f"return the `{param}` the caller passed"))
    for stmt in _own_raises(site):
        handlers.append(([stmt], f"raise `{stmt.removesuffix(' from None').removeprefix('raise ')}` as the "
                                 "function does for other bad input"))
    for stmt in handler_returns(site):
        handlers.append(([stmt], f"`{stmt}` as the function's other handler does"))
    for stmt, how in early_exits(site):
        handlers.append(([stmt], how))
    for source, how in try_variants(site, catch, handlers):
        yield Rewrite("parse_guard", source, f"when `{parsed}` fails to parse, {how}")


def try_variants(site: CrashSite, catch: str, handlers: Sequence[tuple[list[str], str]]) -> Iterator[tuple[str, str]]:
    """The crash statement wrapped in `try:` with each handler body in turn, (module source, how),
    distinct ones only, at most MAX_VARIANTS."""
    seen: set[str] = set()
    for body, how in handlers:
        source = wrap_try(site, catch, body)
        if source is None or source in seen:
            continue
        seen.add(source)
        yield source, how
        if len(seen) >= MAX_VARIANTS:
            return


def caught_around(site: CrashSite, names: Set[str]) -> bool:
    """Whether a `try:` around the crash statement has a bare `except:` or a handler naming one of `names`."""
    block = _enclosing_try(site)
    return block is not None and (any(h.type is None for h in block.handlers) or bool(_caught(site, block) & names))


def _enclosing_try(site: CrashSite) -> cst.Try | None:
    """The innermost `try:` whose body (not a handler, else or finally) holds the crash statement."""
    child: cst.CSTNode = site.statement
    current = site.parent(child)
    while current is not None and current is not site.function:
        if isinstance(current, cst.Try) and child is current.body:
            return current
        child, current = current, site.parent(current)
    return None


_CATCHES_ALL = frozenset({"Exception", "BaseException", "ValueError"})


# Other ways a builtin says "this value is out of range or malformed" (`chr(10**20)` raises
# OverflowError where `chr(-1)` raises ValueError): a handler that catches ValueError around the call
# already treats a bad value as a case to handle, and meant this one too.
_SIBLINGS_OF_VALUEERROR = frozenset({"OverflowError", "UnicodeDecodeError", "UnicodeEncodeError", "UnicodeError"})


def handler_widen(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    """Add the exception to the handler of the `try:` around the crash: the function's own fallback."""
    sibling = exc.type in _SIBLINGS_OF_VALUEERROR
    if (exc.type not in _PARSE_TYPES and not sibling) or site.function is None or _is_raise(site) \
            or _UNPACKING.search(exc.value):
        return
    block = _enclosing_try(site)
    if block is None:
        return
    catch = exc.type if sibling else _catch_name(site, exc)
    handlers = [h for h in block.handlers if h.type is not None]
    caught = _caught(site, block)
    if len(handlers) != len(block.handlers) or caught & ({"Exception", "BaseException", catch} if sibling
                                                         else _CATCHES_ALL | {catch}):
        return  # a bare `except:` or a handler that already catches it: the crash is not from here
    if sibling:
        handlers = [h for h in handlers if h.type is not None
                    and "ValueError" in {site.code(n).strip() for n in _types_of(h.type)}]
    for handler in handlers[:1]:
        assert handler.type is not None
        types = [site.code(n).strip() for n in _types_of(handler.type)]
        widened = cst.parse_expression(f"({', '.join([*types, catch])})")
        new = handler.with_changes(type=widened)
        source = site.module.visit(ReplaceNode(handler, new)).code
        yield Rewrite("handler_widen", source,
                      f"let the `except {', '.join(types)}` around the crash also catch {catch}")


def _caught(site: CrashSite, block: cst.Try) -> set[str]:
    return {site.code(n).strip() for h in block.handlers if h.type is not None for n in _types_of(h.type)}


def _types_of(node: cst.BaseExpression) -> list[cst.BaseExpression]:
    if isinstance(node, cst.Tuple):
        return [e.value for e in node.elements]
    return [node]


PARSE_TEMPLATES = (handler_widen, parse_guard)
