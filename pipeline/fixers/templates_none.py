"""Templates for None where a value takes part in an operation: arithmetic, a comparison, string or
list concatenation, len().

- none_compare       `a < b` with a None side: `a is not None and a < b` (None is not below
                     anything), then the other side's zero, then a guard that leaves early
- none_concat        `"x" + name` with name None: `"x" + (name or "")` (likewise lists, tuples, bytes)
- none_augassign     `total += x` with x None: `total += x or 0`; a None total: `total = (total or 0) + x`
- none_operand_guard unsupported operand with None and a type without a zero (a datetime, say;
                     operand_default covers int, str, list...): leave early when the operand is None,
                     with what the caller can use
- none_unary         `-x` with x None: `-(x or 0)`
- len_default        `len(x)` with x None: `len(x or ())`, then a guard that leaves early

Where the line has several candidate operands, the one the crash frame's captured locals show as
None goes first.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

import libcst as cst
import libcst.matchers as m

from pipeline.fixers.cst_site import CrashSite, is_pure
from pipeline.fixers.template_kit import (
    LITERALS,
    NEUTRAL_BY_TYPE,
    Rewrite,
    captured_none,
    early_exits,
    hoistable,
    insert_guard,
    parenthesise,
    replace_node,
    site_nodes,
)
from pipeline.records import ExceptionInfo

MAX_VARIANTS = 3
_COMPARE = re.compile(r"'(<|<=|>|>=)' not supported between instances of '(\w+)' and '(\w+)'")
_CONCAT = re.compile(r'can only concatenate (str|list|tuple|bytes) \(not "NoneType"\) to \1')
_AUG = re.compile(r"unsupported operand type\(s\) for (\S+=): '(\w+)' and '(\w+)'")
_OPERAND = re.compile(r"unsupported operand type\(s\) for ([^:=\s]+)(?: or pow\(\))?: '([\w.]+)' and '([\w.]+)'")
_UNARY = re.compile(r"bad operand type for unary (\S+): 'NoneType'")
_LEN = re.compile(r"object of type 'NoneType' has no len\(\)")
_CMP_OPS = {"<": cst.LessThan, "<=": cst.LessThanEqual, ">": cst.GreaterThan, ">=": cst.GreaterThanEqual}
_SIMPLE = (cst.Name, cst.Attribute, cst.Call, cst.Subscript)


def _or(site: CrashSite, node: cst.CSTNode, code: str, zero: str) -> str:
    """`(x or zero)`; a call's argument needs no parentheses of its own: `len(x or ())`."""
    inner = f"{code if isinstance(node, _SIMPLE) else f'({code})'} or {zero}"
    return inner if isinstance(site.parent(node), cst.Arg) else f"({inner})"


def _ranked(exc: ExceptionInfo, site: CrashSite, operands: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
    """Operands that can be None at all (no literals), those the locals show as None first."""
    usable = [o for o in operands if not isinstance(o, LITERALS)]
    return sorted(usable, key=lambda o: not captured_none(exc, site.code(o)))


def _guards(site: CrashSite, operand: cst.CSTNode, budget: int) -> Iterator[Rewrite]:
    """`if <operand> is None: <leave>` for each way the function can leave, up to `budget`."""
    if budget <= 0 or not is_pure(operand) or not hoistable(site, operand):
        return
    code = site.code(operand)
    for stmt, how in early_exits(site)[:budget]:
        yield Rewrite("none_operand_guard", insert_guard(site, f"{code} is None", stmt),
                      f"when `{code}` is None, {how}")


def none_compare(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    match = _COMPARE.search(exc.value) if exc.type == "TypeError" else None
    if match is None or "NoneType" not in match.groups()[1:] or match.group(2) == match.group(3):
        return
    symbol, left_none = match.group(1), match.group(2) == "NoneType"
    other = match.group(3) if left_none else match.group(2)
    count = 0
    for node in site_nodes(site, cst.Comparison):
        assert isinstance(node, cst.Comparison)
        if len(node.comparisons) != 1 or not isinstance(node.comparisons[0].operator, _CMP_OPS[symbol]):
            continue
        operand = node.left if left_none else node.comparisons[0].comparator
        if isinstance(operand, LITERALS):
            continue
        code, whole = site.code(operand), site.code(node)
        if is_pure(operand):
            yield Rewrite("none_compare", replace_node(site, node, parenthesise(site, node, f"{code} is not None and {whole}")),
                          f"a None `{code}` compares as False")
            count += 1
        zero = NEUTRAL_BY_TYPE.get(other) if other in ("int", "float", "str") else None
        if zero is not None:
            yield Rewrite("none_compare", replace_node(site, operand, _or(site, operand, code, zero)),
                          f"compare a None `{code}` as {zero}")
            count += 1
        yield from _guards(site, operand, min(1, MAX_VARIANTS - count))
        return


def none_concat(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    match = _CONCAT.search(exc.value) if exc.type == "TypeError" else None
    if match is None:
        return
    empty = NEUTRAL_BY_TYPE[match.group(1)]
    operands: list[cst.CSTNode] = []
    for node in site.expressions:
        if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Add):
            operands.append(node.right)
    if isinstance(site.statement, cst.SimpleStatementLine):  # an AugAssign is a statement, not an expression
        operands += [s.value for s in site.statement.body
                     if isinstance(s, cst.AugAssign) and isinstance(s.operator, cst.AddAssign)]
    count = 0
    for operand in _ranked(exc, site, list(dict.fromkeys(operands))):
        code = site.code(operand)
        yield Rewrite("none_concat", replace_node(site, operand, _or(site, operand, code, empty)),
                      f"treat a None `{code}` as {empty}")
        count += 1
        if count >= 2:
            break
    ranked = _ranked(exc, site, operands)
    if ranked:
        yield from _guards(site, ranked[0], MAX_VARIANTS - count)


def _aug_statements(site: CrashSite, symbol: str) -> list[cst.AugAssign]:
    stmt = site.statement
    if not isinstance(stmt, cst.SimpleStatementLine):
        return []
    return [s for s in stmt.body if isinstance(s, cst.AugAssign) and site.code(s.operator).strip() == symbol]


def none_augassign(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    match = _AUG.search(exc.value) if exc.type == "TypeError" else None
    if match is None or "NoneType" not in match.groups()[1:]:
        return
    symbol, target_none = match.group(1), match.group(2) == "NoneType"
    other = match.group(3) if target_none else match.group(2)
    zero = NEUTRAL_BY_TYPE.get(other)
    if zero is None:
        return
    for aug in _aug_statements(site, symbol):
        if target_none:
            if not is_pure(aug.target):
                continue
            target, value = site.code(aug.target), site.code(aug.value)
            op = symbol[:-1]
            new = cst.parse_statement(f"{target} = ({target} or {zero}) {op} {value}\n")
            assert isinstance(new, cst.SimpleStatementLine)
            source = site.module.visit(_SwapSmall(aug, new.body[0])).code
            yield Rewrite("none_augassign", source, f"start a None `{target}` from {zero}")
        elif not isinstance(aug.value, LITERALS):
            code = site.code(aug.value)
            yield Rewrite("none_augassign", replace_node(site, aug.value, _or(site, aug.value, code, zero)),
                          f"treat a None `{code}` as {zero}")
            yield from _guards(site, aug.value, 1)
        return


class _SwapSmall(cst.CSTTransformer):
    def __init__(self, target: cst.CSTNode, new: cst.BaseSmallStatement) -> None:
        self.target, self.new = target, new

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        return self.new if original is self.target else updated


def none_operand_guard(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    """Leave early when an arithmetic operand is None (operand_default proposes the inline zero)."""
    match = _OPERAND.search(exc.value) if exc.type == "TypeError" else None
    if match is None or "NoneType" not in match.groups()[1:]:
        return
    symbol, left_none = match.group(1), match.group(2) == "NoneType"
    if NEUTRAL_BY_TYPE.get(match.group(3) if left_none else match.group(2)) is not None:
        return  # operand_default substitutes the other type's zero; a guard would only add a variant
    for node in site_nodes(site, cst.BinaryOperation):
        assert isinstance(node, cst.BinaryOperation)
        operand = node.left if left_none else node.right
        if site.code(node.operator).strip() == symbol and not isinstance(operand, LITERALS):
            yield from _guards(site, operand, 2)
            return


def none_unary(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    match = _UNARY.search(exc.value) if exc.type == "TypeError" else None
    if match is None:
        return
    for node in site_nodes(site, cst.UnaryOperation):
        assert isinstance(node, cst.UnaryOperation)
        if site.code(node.operator).strip() == match.group(1) and not isinstance(node.expression, LITERALS):
            code = site.code(node.expression)
            yield Rewrite("none_unary", replace_node(site, node.expression, _or(site, node.expression, code, "0")),
                          f"treat a None `{code}` as 0")
            return


def len_default(site: CrashSite, exc: ExceptionInfo) -> Iterator[Rewrite]:
    if exc.type != "TypeError" or not _LEN.search(exc.value):
        return
    calls = [n for n in site.expressions
             if m.matches(n, m.Call(func=m.Name("len"), args=[m.Arg(keyword=None, star="")]))]
    args = _ranked(exc, site, [c.args[0].value for c in calls if isinstance(c, cst.Call)])
    count = 0
    for arg in args[:2]:
        code = site.code(arg)
        yield Rewrite("len_default", replace_node(site, arg, _or(site, arg, code, "()")),
                      f"count a None `{code}` as empty")
        count += 1
    if args:
        yield from _guards(site, args[0], MAX_VARIANTS - count)


NONE_TEMPLATES = (none_compare, none_concat, none_augassign, none_operand_guard, none_unary, len_default)
