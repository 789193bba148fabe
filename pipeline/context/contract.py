"""Whether the crash frame raised on purpose: its answer to the input was the exception.

A function whose crash line is `raise ValueError(...)` (the event's own exception) did what it was
written to do with what it was given; so does a lookup protocol method (`__getitem__` raising
KeyError or IndexError, `__getattr__` raising AttributeError). The code to change is then more
likely the caller that gave it that input, or that should have handled the answer: localisation
ranks the first in-app caller above the crash site, the LLM fixer may edit that caller, and the
caller_handles template proposes handling the exception there. A crash in the function's own
logic (a division, an attribute typo, an index into its own list) is not such a case, nor is a
raise that translates an exception the function caught (`raise DigestError(...) from exc`): the
failure it reports happened further down.
"""

from __future__ import annotations

import ast
import textwrap

from pipeline.records import ErrorEvent, Location

# Lookup protocols whose defined way to say "no such key / item / attribute" is the exception.
_LOOKUPS: dict[str, frozenset[str]] = {
    "__getitem__": frozenset({"KeyError", "IndexError"}),
    "__missing__": frozenset({"KeyError"}),
    "__getattr__": frozenset({"AttributeError"}),
    "__getattribute__": frozenset({"AttributeError"}),
}


def _raised_name(node: ast.Raise) -> str:
    exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
    if isinstance(exc, ast.Name):
        return exc.id
    if isinstance(exc, ast.Attribute):
        return exc.attr
    return ""


def raises_on_purpose(event: ErrorEvent, crash: Location | None) -> str:
    """Why the crash frame's exception is its deliberate answer, or "" when it is not."""
    exc = event.primary
    if exc is None or crash is None or crash.role != "crash" or not crash.source:
        return ""
    name = crash.function.rsplit(".", 1)[-1]
    wanted = exc.type.rsplit(".", 1)[-1]
    if wanted in _LOOKUPS.get(name, frozenset()):
        return f"{crash.function} is a lookup, and {wanted} is how it says the key is missing"
    offset = crash.line - (crash.start_line or crash.line)
    try:
        tree = ast.parse(textwrap.dedent(crash.source))  # a method parses on its own once dedented
    except SyntaxError:
        return ""
    # A raise that translates an exception it caught (`raise X from exc`, or any raise inside an
    # `except` block) reports a failure further down, not bad input: the cause is where to look.
    translating = {id(n) for handler in ast.walk(tree) if isinstance(handler, ast.ExceptHandler)
                   for n in ast.walk(handler) if isinstance(n, ast.Raise)}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Raise) and node.lineno - 1 <= offset <= (node.end_lineno or node.lineno) - 1
                and _raised_name(node) == wanted and node.cause is None and id(node) not in translating):
            return f"{crash.function} raises {wanted} on purpose at line {crash.line}"
    return ""

