"""Shared pieces of the fix templates: neutral values, tree edits and the ways to leave early.

Every template module (templates.py and templates_*.py) builds its rewrites from these, so a guard,
a replacement or an early exit looks the same whichever template proposes it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import libcst as cst
import libcst.matchers as m

from pipeline.fixers.cst_site import CrashSite, contains_yield
from pipeline.records import ExceptionInfo

STR_METHODS = frozenset(
    "capitalize casefold center count encode endswith expandtabs find format index isalnum isalpha "
    "isdigit islower isspace istitle isupper join ljust lower lstrip partition replace rfind rindex "
    "rjust rpartition rsplit rstrip split splitlines startswith strip swapcase title upper zfill "
    "removeprefix removesuffix".split()
)
DICT_METHODS = frozenset("get items keys values setdefault pop update copy".split())
LIST_METHODS = frozenset("append extend insert remove sort reverse".split())
NEUTRAL_BY_TYPE = {"str": '""', "int": "0", "float": "0.0", "bool": "False", "list": "[]",
                    "dict": "{}", "set": "set()", "tuple": "()", "bytes": 'b""'}
# Annotation names (lower-cased) with a neutral value; an object type has none we can name honestly.
NEUTRAL_BY_NAME = {**NEUTRAL_BY_TYPE, "sequence": "[]", "iterable": "[]", "iterator": "iter(())",
                    "mapping": "{}", "frozenset": "frozenset()"}


@dataclass(frozen=True)
class Rewrite:
    template: str
    source: str
    description: str


Template = Callable[[CrashSite, ExceptionInfo], Iterator[Rewrite]]


# --- neutral values ------------------------------------------------------------------------------


def neutral_return(site: CrashSite) -> str | None:
    """What the function returns for 'nothing': from its annotation; None if it has none.

    Returns the empty string for a bare `return` (generators, functions annotated -> None).
    """
    fn = site.function
    if fn is None:
        return None
    if contains_yield(fn) or fn.name.value == "__init__":
        return ""
    if fn.returns is None:
        return "None"
    ann = site.code(fn.returns.annotation).replace(" ", "")
    if ann == "None":
        return ""
    if "None" in ann.split("|") or ann.startswith(("Optional[", "typing.Optional[")):
        return "None"
    base = re.match(r"(?:\w+\.)*(\w+)", ann)  # typing.List[str] -> List, dict[str, int] -> dict
    return NEUTRAL_BY_NAME.get(base.group(1).lower()) if base else None


def neutral_for_use(site: CrashSite, node: cst.CSTNode) -> str:
    """The neutral value for an expression, judged by how its value is used."""
    parent = site.parent(node)
    if isinstance(parent, cst.Attribute) and parent.value is node:
        attr = parent.attr.value
        if attr in STR_METHODS:
            return '""'
        if attr in DICT_METHODS:
            return "{}"
        if attr in LIST_METHODS:
            return "[]"
    if isinstance(parent, cst.Subscript) and parent.value is node:
        return "{}"
    if isinstance(parent, cst.BinaryOperation):
        other = parent.right if parent.left is node else parent.left
        if isinstance(other, (cst.SimpleString, cst.FormattedString)):
            return '""'
        return "0"
    call = site.parent(parent) if isinstance(parent, cst.Arg) else None
    if call is not None:
        if m.matches(call, m.Call(func=m.Name("len") | m.Name("sorted") | m.Name("list"))):
            return "[]"
        if m.matches(call, m.Call(func=m.Name("sum") | m.Name("int") | m.Name("float") | m.Name("round")
                                  | m.Name("abs") | m.Name("max") | m.Name("min") | m.Name("divmod"))):
            return "0"
        if m.matches(call, m.Call(func=m.Name("str"))):
            return '""'
    if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is node:
        return "[]"
    if isinstance(parent, cst.ComparisonTarget) or (
        isinstance(parent, cst.Comparison) and parent.left is node
        and any(isinstance(t.operator, (cst.LessThan, cst.LessThanEqual, cst.GreaterThan, cst.GreaterThanEqual))
                for t in parent.comparisons)
    ):
        return "0"
    if isinstance(parent, cst.FormattedStringExpression):
        return '""'
    if isinstance(parent, (cst.Return,)):
        value = neutral_return(site)
        return value if value else "None"
    return "None"


# --- tree edits ----------------------------------------------------------------------------------


class InsertBefore(cst.CSTTransformer):
    """Insert statements before `target`; with `take_leading`, the comments and blank lines above it
    move up to the first new statement, so they keep introducing the block they were written for."""

    def __init__(self, target: cst.CSTNode, new: Sequence[cst.BaseStatement], take_leading: bool = False) -> None:
        self.target = target
        self.new = list(new)
        self.take_leading = take_leading

    def _insert(self, original: Sequence[cst.CSTNode], updated: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
        out: list[cst.CSTNode] = []
        for orig, upd in zip(original, updated, strict=True):
            if orig is self.target and self.new:
                first, *rest = self.new
                if self.take_leading and hasattr(upd, "leading_lines") and hasattr(first, "leading_lines"):
                    first = first.with_changes(leading_lines=upd.leading_lines)
                    upd = upd.with_changes(leading_lines=())
                out += [first, *rest]
            out.append(upd)
        return out

    def leave_IndentedBlock(self, original: cst.IndentedBlock, updated: cst.IndentedBlock) -> cst.IndentedBlock:
        return updated.with_changes(body=self._insert(original.body, updated.body))

    def leave_Module(self, original: cst.Module, updated: cst.Module) -> cst.Module:
        return updated.with_changes(body=self._insert(original.body, updated.body))


class ReplaceNode(cst.CSTTransformer):
    def __init__(self, target: cst.CSTNode, new: cst.CSTNode) -> None:
        self.target = target
        self.new = new

    def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        return self.new if original is self.target else updated


def insert_guard(site: CrashSite, condition: str, exit_stmt: str) -> str:
    guard = cst.parse_statement(f"if {condition}:\n    {exit_stmt}\n")
    return site.module.visit(InsertBefore(site.statement, [guard])).code


def replace_node(site: CrashSite, node: cst.CSTNode, new_code: str) -> str:
    return site.module.visit(ReplaceNode(node, cst.parse_expression(new_code))).code


def early_exits(site: CrashSite) -> list[tuple[str, str]]:
    """The ways to leave early: (statement, description). `continue` first inside a loop, then a
    value the caller can use when its code shows one, then the function's own neutral value."""
    exits: list[tuple[str, str]] = []
    if site.in_loop:
        exits.append(("continue", "skip the item"))
    neutral = neutral_return(site) if site.function is not None else None
    if neutral:  # a function that returns nothing by design ("") has no value for its caller
        for value, where in site.caller_needs:
            if value != neutral:
                exits.append((f"return {value}", f"return {value}, which the caller's `{where}` can use"))
    if neutral is not None:
        exits.append((f"return {neutral}".rstrip(), f"return {neutral or 'early'}"))
    return exits


OWN_SCOPE = (cst.Lambda, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


def hoistable(site: CrashSite, node: cst.CSTNode) -> bool:
    """Whether a guard placed before the statement may evaluate `node` there.

    Not when the names in it are bound by a lambda or comprehension (they do not exist yet, or name
    something else outside), nor when the statement evaluates it only conditionally (`x and x.y`,
    `a if c else b`, the body of a one-line `if c: ...`): the guard would crash where the code did not.
    """
    child: cst.CSTNode = node
    current = site.parent(node)
    while current is not None and child is not site.statement:
        outer = site.parent(current)
        if isinstance(current, cst.CompFor) and child is current.iter and isinstance(outer, OWN_SCOPE):
            # A comprehension's first iterable is evaluated in the enclosing scope: step over it.
            child, current = outer, site.parent(outer)
            continue
        if isinstance(current, OWN_SCOPE):
            return False
        if isinstance(current, cst.BooleanOperation) and child is current.right:
            return False
        if isinstance(current, cst.IfExp) and child is not current.test:
            return False
        if isinstance(current, cst.BaseSuite) and current is getattr(site.statement, "body", None):
            return False
        child, current = current, site.parent(current)
    return True


def site_nodes(site: CrashSite, kind: type[cst.CSTNode]) -> list[cst.CSTNode]:
    return [n for n in site.expressions if isinstance(n, kind)]


def is_get_call(node: cst.CSTNode) -> bool:
    return m.matches(node, m.Call(func=m.Attribute(attr=m.Name("get")), args=[m.Arg(keyword=None)]))


def or_default(site: CrashSite, call: cst.CSTNode, default: str) -> str:
    """`d.get(k)` -> `(d.get(k) or default)`: covers a missing key and a key holding None alike."""
    return replace_node(site, call, f"({site.code(call)} or {default})")

def subscript_key(node: cst.Subscript) -> cst.BaseExpression | None:
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Index):
        return None
    return node.slice[0].slice.value


def is_load(site: CrashSite, node: cst.CSTNode) -> bool:
    parent = site.parent(node)
    return not isinstance(parent, (cst.AssignTarget, cst.AugAssign, cst.Del)) or (
        isinstance(parent, cst.AugAssign) and parent.target is not node
    )



LITERALS = (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString,
             cst.FormattedString)


def wrap_try(site: CrashSite, catch: str, handler: Sequence[str]) -> str | None:
    """The crash statement inside `try:`, with `except <catch>:` running the handler's statements.

    Only a whole statement line can be wrapped (not the header of an `if` or a `for`); comments above
    it stay above the `try`.
    """
    stmt = site.statement
    if not isinstance(stmt, cst.SimpleStatementLine):
        return None
    body = [cst.parse_statement(line) for line in handler]
    node = cst.Try(
        body=cst.IndentedBlock(body=[stmt.with_changes(leading_lines=())]),
        handlers=[cst.ExceptHandler(body=cst.IndentedBlock(body=body), type=cst.parse_expression(catch))],
        leading_lines=stmt.leading_lines,
    )
    return site.module.visit(ReplaceNode(stmt, node)).code


def own_nodes(function: cst.FunctionDef) -> list[cst.CSTNode]:
    """Every node of the function's body that is not inside a nested function, class or lambda."""
    out: list[cst.CSTNode] = []

    class _Walk(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                return False
            out.append(node)
            return True

    function.body.visit(_Walk())
    return out


def callee_name(call: cst.Call) -> str | None:
    """`int` for `int(x)`, `loads` for `json.loads(x)`; None for anything else called."""
    func = call.func
    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return None


def binds_name(module: cst.Module, name: str) -> bool:
    """Whether the module's top level binds `name` (an import, a def, a class or an assignment)."""
    for stmt in module.body:
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) and stmt.name.value == name:
            return True
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, (cst.Import, cst.ImportFrom)) and not isinstance(small.names, cst.ImportStar):
                    for alias in small.names:
                        bound = alias.asname.name if alias.asname else alias.name
                        if isinstance(bound, cst.Name) and bound.value == name:
                            return True
                        if isinstance(bound, cst.Attribute) and module.code_for_node(bound).split(".")[0] == name:
                            return True
                targets: list[cst.BaseExpression] = []
                if isinstance(small, cst.Assign):
                    targets = [t.target for t in small.targets]
                elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
                    targets = [small.target]
                if any(m.findall(t, m.Name(name)) for t in targets):
                    return True
        elif isinstance(stmt, (cst.If, cst.Try, cst.With, cst.For, cst.While)):
            if m.findall(stmt, m.Assign(targets=[m.ZeroOrMore(), m.AssignTarget(target=m.Name(name)),
                                                  m.ZeroOrMore()])):
                return True
    return False


def insert_above(site: CrashSite, target: cst.CSTNode, code: str) -> str:
    """The module with the statement `code` placed just before `target`, at its indentation."""
    return site.module.visit(InsertBefore(target, [cst.parse_statement(code)], take_leading=True)).code


def crash_vars(exc: ExceptionInfo) -> dict[str, object]:
    """The captured locals of the innermost in-app frame (Sentry's repr strings or JSON values)."""
    frames = [f for f in exc.frames if f.in_app] or list(exc.frames)
    return dict(frames[-1].vars) if frames else {}


def captured_none(exc: ExceptionInfo, code: str) -> bool:
    """Whether the crash frame's locals show `code` (a plain name) holding None."""
    value = crash_vars(exc).get(code, "missing")
    return value is None or value == "None"


def parenthesise(site: CrashSite, node: cst.CSTNode, code: str) -> str:
    """`code` in parentheses unless it replaces the whole test of an `if`/`while` or a return value."""
    parent = site.parent(node)
    if isinstance(parent, (cst.If, cst.While)) and parent.test is node:
        return code
    if isinstance(parent, cst.Return) and parent.value is node:
        return code
    return f"({code})"
