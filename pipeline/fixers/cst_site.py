"""Find the crash site in a LibCST tree: the function, the statement and the expressions on a line.

Templates rewrite these nodes and LibCST renders the module back with its formatting intact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import libcst as cst
import libcst.matchers as m
from libcst.metadata import MetadataWrapper, ParentNodeProvider, PositionProvider

# Compound statements whose header line can be the crash line (the body is searched separately).
_COMPOUND = (cst.If, cst.For, cst.While, cst.With)


@dataclass
class CrashSite:
    module: cst.Module
    function: cst.FunctionDef | None
    statement: cst.CSTNode  # a SimpleStatementLine or a compound statement whose header crashed
    in_loop: bool  # the statement sits in a loop inside the function
    expressions: list[cst.CSTNode] = field(default_factory=list)  # nodes starting on the crash line
    parents: dict[cst.CSTNode, cst.CSTNode] = field(default_factory=dict)
    # What the direct caller does with the function's result, as (neutral value, the caller's code):
    # a `return None` guard only moves the crash up when the caller does `round(f(x), 2)`.
    caller_needs: tuple[tuple[str, str], ...] = ()

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    def parent(self, node: cst.CSTNode) -> cst.CSTNode | None:
        return self.parents.get(node)


class _Finder(cst.CSTVisitor):
    METADATA_DEPENDENCIES = (PositionProvider, ParentNodeProvider)

    def __init__(self, line: int) -> None:
        self.line = line
        self.functions: list[tuple[cst.FunctionDef, int]] = []
        self.statements: list[tuple[cst.CSTNode, int]] = []  # (node, span)
        self.expressions: list[cst.CSTNode] = []
        self.loops: list[cst.CSTNode] = []

    def _span(self, node: cst.CSTNode) -> tuple[int, int]:
        pos = self.get_metadata(PositionProvider, node)
        return pos.start.line, pos.end.line

    def on_visit(self, node: cst.CSTNode) -> bool:
        start, end = self._span(node)
        if not start <= self.line <= end:
            return False  # nothing inside can be on the line
        if isinstance(node, cst.FunctionDef):
            self.functions.append((node, end - start))
        elif isinstance(node, cst.SimpleStatementLine):
            self.statements.append((node, end - start))
        elif isinstance(node, _COMPOUND):
            body_start = self._span(node.body)[0]
            header_end = body_start if isinstance(node.body, cst.SimpleStatementSuite) else body_start - 1
            if self.line <= max(start, header_end):
                self.statements.append((node, 0))
        if isinstance(node, (cst.For, cst.While)):
            self.loops.append(node)
        if isinstance(node, cst.BaseExpression) and start <= self.line <= end:
            self.expressions.append(node)
        return True


def find_site(source: str, line: int, function_name: str | None = None) -> CrashSite | None:
    """The innermost statement covering `line`, with its function; None if the line holds none."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError:
        return None
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    finder = _Finder(line)
    wrapper.visit(finder)
    if not finder.statements:
        return None
    statement = min(finder.statements, key=lambda item: item[1])[0]
    function = min(finder.functions, key=lambda item: item[1])[0] if finder.functions else None
    if function is not None and function_name and function.name.value != function_name.split(".")[-1]:
        return None  # the tree disagrees with the stack: better no patch than a patch elsewhere
    parents = dict(wrapper.resolve(ParentNodeProvider))
    loop_ancestors = [loop for loop in finder.loops if _is_ancestor(loop, statement, parents, function)]
    return CrashSite(module, function, statement, bool(loop_ancestors), finder.expressions, parents)


def _is_ancestor(
    candidate: cst.CSTNode, node: cst.CSTNode, parents: dict[cst.CSTNode, cst.CSTNode],
    stop: cst.CSTNode | None,
) -> bool:
    current = parents.get(node)
    while current is not None and current is not stop:
        if current is candidate:
            return True
        current = parents.get(current)
    return False


def is_pure(node: cst.CSTNode) -> bool:
    """Safe to evaluate twice: names, attribute chains, literal subscripts and len() of those."""
    if isinstance(node, (cst.Name, cst.Integer, cst.SimpleString)):
        return True
    if isinstance(node, cst.Attribute):
        return is_pure(node.value)
    if isinstance(node, cst.Subscript):
        return (
            is_pure(node.value)
            and len(node.slice) == 1
            and isinstance(node.slice[0].slice, cst.Index)
            and isinstance(node.slice[0].slice.value, (cst.Integer, cst.SimpleString, cst.Name))
        )
    if m.matches(node, m.Call(func=m.Name("len"), args=[m.Arg()])):
        assert isinstance(node, cst.Call)
        return is_pure(node.args[0].value)
    return False


def contains_yield(function: cst.FunctionDef) -> bool:
    return bool(m.findall(function.body, m.Yield()))
