"""Deterministic fix templates for common crash classes, written as LibCST rewrites.

Each template looks at the escaping exception and the crash site, and yields zero or more rewritten
modules. Templates never decide whether a fix is right: verification does. They only propose small,
conventional repairs a reviewer would recognise:

- none_guard      AttributeError / TypeError on None: return the neutral value before using it
- get_default     KeyError on `d[k]`: `d.get(k, <neutral>)`
- key_guard       KeyError on `d[k]`: return the neutral value when the key is missing
- get_fallback    `.get(k)` that returned None: `(d.get(k) or <neutral>)`
- get_chain       `d.get(a)[b]` on None: `(d.get(a) or {}).get(b, <neutral>)`
- zero_guard      ZeroDivisionError: return the neutral value for a zero divisor
- iter_fallback   iterating over None: iterate over `()` instead
- index_guard     IndexError on a literal index: return the neutral value for a short sequence, or,
                  in an if/elif/while test, check the sequence first in the test's `and` chain
- operand_default TypeError unsupported operand with None: use the other operand type's zero
- name_typo       AttributeError / NameError for a misspelt name: the closest name the file defines

More templates live beside this module and are registered in TEMPLATES below: templates_parse.py
(parse_guard, handler_widen: ValueError from int()/float()/Decimal()), templates_flow.py
(unbound_init: UnboundLocalError; next_default: StopIteration from next()), templates_none.py
(None in a comparison, a concatenation, an augmented assignment, arithmetic, unary minus, len()).
One works one frame up, at the first in-app caller, when the crash frame raised on purpose:
templates_caller.py (caller_handles). Shared helpers are in template_kit.py.
"""

from __future__ import annotations

import ast
import difflib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import libcst as cst
import libcst.matchers as m
import structlog

from pipeline.context.contract import raises_on_purpose
from pipeline.fixers.cst_site import CrashSite, find_site, is_pure
from pipeline.fixers.diffing import unified_diff
from pipeline.fixers.template_kit import (
    LITERALS,
    NEUTRAL_BY_TYPE,
    OWN_SCOPE,
    ReplaceNode,
    Rewrite,
    Template,
    early_exits,
    hoistable,
    insert_guard,
    is_get_call,
    is_load,
    neutral_for_use,
    or_default,
    replace_node,
    site_nodes,
    subscript_key,
)
from pipeline.fixers.templates_caller import caller_handles
from pipeline.fixers.templates_flow import FLOW_TEMPLATES
from pipeline.fixers.templates_none import NONE_TEMPLATES
from pipeline.fixers.templates_parse import PARSE_TEMPLATES
from pipeline.pysource import Undecodable, decode_source
from pipeline.records import CodeContext, ErrorEvent, ExceptionInfo, Issue, Location, Patch, Review

log = structlog.get_logger(__name__)


# --- templates -----------------------------------------------------------------------------------


_NONE_ATTR = re.compile(r"'NoneType' object has no attribute '(\w+)'")
_NONE_USE = re.compile(r"'NoneType' object is not (subscriptable|callable)")


def none_guard(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    attr_match = _NONE_ATTR.search(exc.value) if exc.type == "AttributeError" else None
    use_match = _NONE_USE.search(exc.value) if exc.type == "TypeError" else None
    if not attr_match and not use_match:
        return
    receivers: list[cst.CSTNode] = []
    if attr_match:
        receivers = [n.value for n in site_nodes(site, cst.Attribute)
                     if isinstance(n, cst.Attribute) and n.attr.value == attr_match.group(1)]
    elif use_match and use_match.group(1) == "subscriptable":
        receivers = [n.value for n in site_nodes(site, cst.Subscript) if isinstance(n, cst.Subscript)]
    for receiver in receivers:
        if is_get_call(receiver):
            default = neutral_for_use(site, receiver)
            if default != "None":
                yield Rewrite("get_fallback", or_default(site, receiver, default),
                              f"give `{site.code(receiver)}` the default {default} instead of None")
        outer = site.parent(receiver)
        if is_get_call(receiver) and isinstance(outer, cst.Subscript) and subscript_key(outer):
            # `d.get(a)[b]` -> `d.get(a, {}).get(b, <neutral>)`: both levels become optional
            key = subscript_key(outer)
            assert key is not None
            chained = f"({site.code(receiver)} or {{}}).get({site.code(key)}, {neutral_for_use(site, outer)})"
            yield Rewrite("get_chain", replace_node(site, outer, chained),
                          f"treat a missing `{site.code(receiver)}` as empty")
        if is_pure(receiver) and hoistable(site, receiver):
            code = site.code(receiver)
            for stmt, how in early_exits(site):
                yield Rewrite("none_guard", insert_guard(site, f"{code} is None", stmt),
                              f"when `{code}` is None, {how} instead of crashing")


def _key_of(exc: ExceptionInfo) -> object:
    try:
        return ast.literal_eval(exc.value)
    except (ValueError, SyntaxError):
        return exc.value


def key_default(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    if exc.type != "KeyError":
        return
    wanted = _key_of(exc)
    scored: list[tuple[int, cst.Subscript]] = []
    for node in site_nodes(site, cst.Subscript):
        assert isinstance(node, cst.Subscript)
        key = subscript_key(node)
        if key is None or not is_load(site, node):
            continue
        try:
            literal = ast.literal_eval(site.code(key))
            score = 2 if literal == wanted else -1
        except (ValueError, SyntaxError):
            score = 1  # a variable key: may be the one
        if score > 0:
            scored.append((score, node))
    for _, node in sorted(scored, key=lambda item: -item[0]):
        key = subscript_key(node)
        assert key is not None
        recv, key_code = site.code(node.value), site.code(key)
        default = neutral_for_use(site, node)
        get = f"{recv}.get({key_code})" if default == "None" else f"{recv}.get({key_code}, {default})"
        yield Rewrite("get_default", replace_node(site, node, get),
                      f"read the optional key {key_code} with a default of {default}")
        if is_pure(node.value) and hoistable(site, node):
            for stmt, how in early_exits(site):
                yield Rewrite("key_guard", insert_guard(site, f"{key_code} not in {recv}", stmt),
                              f"when {key_code} is missing from `{recv}`, {how}")


def zero_guard(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    if exc.type != "ZeroDivisionError":
        return
    ops = (cst.Divide, cst.FloorDivide, cst.Modulo)
    for node in site_nodes(site, cst.BinaryOperation):
        assert isinstance(node, cst.BinaryOperation)
        if not isinstance(node.operator, ops) or not is_pure(node.right):
            continue
        divisor = site.code(node.right)
        for stmt, how in early_exits(site) if hoistable(site, node) else ():
            yield Rewrite("zero_guard", insert_guard(site, f"not {divisor}", stmt),
                          f"when `{divisor}` is zero, {how}")
        zero = "0.0" if isinstance(node.operator, cst.Divide) else "0"
        yield Rewrite("zero_guard_inline",
                      replace_node(site, node, f"({site.code(node)} if {divisor} else {zero})"),
                      f"evaluate to {zero} when `{divisor}` is zero")


def iter_fallback(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    if exc.type != "TypeError" or "'NoneType' object is not iterable" not in exc.value:
        return
    stmt = site.statement
    if isinstance(stmt, cst.For):
        it = site.code(stmt.iter)
        simple = isinstance(stmt.iter, (cst.Name, cst.Attribute, cst.Call, cst.Subscript))
        yield Rewrite("iter_fallback", replace_node(site, stmt.iter, f"{it if simple else f'({it})'} or ()"),
                      f"iterate over nothing when `{it}` is None")


_INDEX_MSG = re.compile(r"(list|tuple|string|range object) index out of range")


def index_guard(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    if exc.type != "IndexError" or not _INDEX_MSG.search(exc.value):
        return
    for node in site_nodes(site, cst.Subscript):
        assert isinstance(node, cst.Subscript)
        key = subscript_key(node)
        if key is None or not is_pure(node.value) or not is_load(site, node) or not hoistable(site, node):
            continue
        try:
            index = ast.literal_eval(site.code(key))
        except (ValueError, SyntaxError):
            continue
        if not isinstance(index, int):
            continue
        recv = site.code(node.value)
        need = index + 1 if index >= 0 else -index
        condition = f"not {recv}" if need == 1 else f"len({recv}) < {need}"
        for stmt, how in early_exits(site):
            yield Rewrite("index_guard", insert_guard(site, condition, stmt),
                          f"when `{recv}` has fewer than {need} items, {how}")
    yield from _index_guard_in_test(site, exc)


def _index_guard_in_test(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    """`if a and seq[-1].x:` on an empty seq: the condition checks `seq` first (`a and seq and
    seq[-1].x`), so an empty sequence makes it false instead of raising."""
    stmt = site.statement
    if not isinstance(stmt, (cst.If, cst.While)):
        return
    for node in site_nodes(site, cst.Subscript):
        assert isinstance(node, cst.Subscript)
        key = subscript_key(node)
        if key is None or not is_pure(node.value) or not is_load(site, node):
            continue
        try:
            index = ast.literal_eval(site.code(key))
        except (ValueError, SyntaxError):
            continue
        operand = _test_operand(site, stmt.test, node)
        if not isinstance(index, int) or operand is None:
            continue
        recv = site.code(node.value)
        need = index + 1 if index >= 0 else -index
        check = recv if need == 1 else f"len({recv}) >= {need}"
        yield Rewrite("index_guard_condition", replace_node(site, operand, f"{check} and {site.code(operand)}"),
                      f"the condition is false when `{recv}` has fewer than {need} items")
        return


def _test_operand(site: CrashSite, test: cst.BaseExpression, node: cst.CSTNode) -> cst.BaseExpression | None:
    """The operand of the test's `and` chain (or the whole test) that holds `node`, when nothing
    between them evaluates it conditionally (an `or`, a conditional expression, a lambda)."""
    child: cst.CSTNode = node
    current = site.parent(node)
    while current is not None and child is not test:
        if isinstance(current, cst.BooleanOperation) and isinstance(current.operator, cst.And):
            assert isinstance(child, cst.BaseExpression)
            return child
        if isinstance(current, (cst.BooleanOperation, cst.IfExp, cst.Lambda, *OWN_SCOPE)):
            return None
        child, current = current, site.parent(current)
    return test if child is test else None


_OPERAND = re.compile(r"unsupported operand type\(s\) for (\S+)(?: or pow\(\))?: '(\w+)' and '(\w+)'")


def operand_default(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    match = _OPERAND.search(exc.value) if exc.type == "TypeError" else None
    if not match or "NoneType" not in match.groups()[1:]:
        return
    symbol = match.group(1)
    left_none = match.group(2) == "NoneType"
    other = match.group(3) if left_none else match.group(2)
    zero = NEUTRAL_BY_TYPE.get(other)
    if zero is None:
        return
    for node in site_nodes(site, cst.BinaryOperation):
        assert isinstance(node, cst.BinaryOperation)
        operand = node.left if left_none else node.right
        # Only the operation the message names, and only an operand that can be None at all.
        if site.code(node.operator).strip() != symbol or isinstance(operand, LITERALS):
            continue
        code = site.code(operand)
        simple = isinstance(operand, (cst.Name, cst.Attribute, cst.Call, cst.Subscript))
        yield Rewrite("operand_default", replace_node(site, operand, f"({code if simple else f'({code})'} or {zero})"),
                      f"treat a None `{code}` as {zero}")


_MISSING_ATTR = re.compile(r"^'(?!NoneType')\w+' object has no attribute '(\w+)'")
_MISSING_NAME = re.compile(r"^name '(\w+)' is not defined")


def _defined_names(module: cst.Module) -> set[str]:
    """Every name the file defines or assigns: functions, classes, attributes, variables."""
    names = {n.name.value for n in m.findall(module, m.FunctionDef() | m.ClassDef())
             if isinstance(n, (cst.FunctionDef, cst.ClassDef))}
    names |= {n.attr.value for n in m.findall(module, m.Attribute()) if isinstance(n, cst.Attribute)}
    names |= {n.value for n in m.findall(module, m.Name()) if isinstance(n, cst.Name)}
    return names


def name_typo(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    """A misspelt attribute or name: use the closest name the same file defines."""
    attr = _MISSING_ATTR.search(exc.value) if exc.type == "AttributeError" else None
    name = _MISSING_NAME.search(exc.value) if exc.type == "NameError" else None
    wrong = (attr or name).group(1) if (attr or name) else None  # type: ignore[union-attr]
    if wrong is None:
        return
    known = _defined_names(site.module) - {wrong}
    for right in difflib.get_close_matches(wrong, sorted(known), n=2, cutoff=0.8):
        if attr:
            targets = [n for n in site_nodes(site, cst.Attribute) if isinstance(n, cst.Attribute) and n.attr.value == wrong]
            for target in targets:
                assert isinstance(target, cst.Attribute)
                fixed = target.with_changes(attr=cst.Name(right))
                yield Rewrite("name_typo", site.module.visit(ReplaceNode(target, fixed)).code,
                              f"`.{wrong}` does not exist; the file defines `{right}`")
        else:
            for node in site_nodes(site, cst.Name):
                if isinstance(node, cst.Name) and node.value == wrong:
                    yield Rewrite("name_typo", site.module.visit(ReplaceNode(node, cst.Name(right))).code,
                                  f"`{wrong}` is not defined; the file defines `{right}`")


def caller_needs(context: CodeContext, crash: Location) -> tuple[tuple[str, str], ...]:
    """What the direct caller does with the crashing function's result, as neutral values.

    The caller is the next location outward; its line must call the crash function by name.
    """
    return _needs_at(_first_caller_site(context), crash)


def _first_caller_site(context: CodeContext) -> tuple[Location, str, CrashSite] | None:
    """The next location outward from the crash, its file's source and the statement on its line."""
    callers = [loc for loc in context.locations if loc.role == "caller"]
    if not callers:
        return None
    caller = callers[0]
    try:
        source = decode_source((Path(context.repo_root) / caller.path).read_bytes(), caller.path)
    except (Undecodable, OSError):
        return None
    site = find_site(source, caller.line, caller.function)
    return (caller, source, site) if site is not None else None


def _needs_at(caller: tuple[Location, str, CrashSite] | None, crash: Location) -> tuple[tuple[str, str], ...]:
    if caller is None:
        return ()
    site = caller[2]
    short = crash.function.rsplit(".", 1)[-1]
    needs: list[tuple[str, str]] = []
    for node in site.expressions:
        if not isinstance(node, cst.Call):
            continue
        func = node.func
        name = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else None
        if name != short:
            continue
        value = neutral_for_use(site, node)
        use = site.parent(node)
        outer = site.parent(use) if isinstance(use, cst.Arg) else use
        shown = site.code(outer) if outer is not None else short
        if value != "None" and (value, shown) not in needs:
            needs.append((value, shown.strip().splitlines()[0][:60]))
    return tuple(needs)


TEMPLATES: tuple[Template, ...] = (none_guard, key_default, zero_guard, iter_fallback, index_guard,
                                   operand_default, name_typo, *PARSE_TEMPLATES, *FLOW_TEMPLATES,
                                   *NONE_TEMPLATES)


class TemplateFixer:
    """Proposes template rewrites at the crash site; one Patch per distinct rewrite."""

    name = "template"

    def __init__(self, templates: Sequence[Template] = TEMPLATES, max_patches: int = 6) -> None:
        self.templates = templates
        self.max_patches = max_patches

    def propose(
        self, issue: Issue, event: ErrorEvent, context: CodeContext, history: Sequence[Review]
    ) -> list[Patch]:
        crash, exc = context.crash, event.primary
        if crash is None or crash.role != "crash" or exc is None:
            return []
        try:
            # Bytes, not read_text: universal newlines would turn CRLF into LF and the diff would not apply.
            source = decode_source((Path(context.repo_root) / crash.path).read_bytes(), crash.path)
        except Undecodable as exc_info:
            log.info("template.undecodable", path=crash.path, reason=str(exc_info))
            return []
        site = find_site(source, crash.line, crash.function)
        if site is None:
            log.info("template.no_site", path=crash.path, line=crash.line)
            return []
        caller = _first_caller_site(context)
        site.caller_needs = _needs_at(caller, crash)
        patches: dict[str, Patch] = {}

        def add(at: Location, before: str, rewrite: Rewrite) -> None:
            if rewrite.source != before:
                diff = unified_diff(at.path, before, rewrite.source)
                patches.setdefault(diff, Patch(strategy=f"template:{rewrite.template}", diff=diff, files=(at.path,),
                                               description=f"{at.function}: {rewrite.description}"))

        for template in self.templates:
            for rewrite in template(site, exc):
                add(crash, source, rewrite)
        if caller is not None and raises_on_purpose(event, crash):  # caller_handles, one frame up
            for rewrite in caller_handles(caller[2], crash, exc):
                add(caller[0], caller[1], rewrite)
        log.info("template.proposed", patches=len(patches), fix_class=issue.fix_class)
        return list(patches.values())[: self.max_patches]
