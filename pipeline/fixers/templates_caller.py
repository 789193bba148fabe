"""A template for the caller of a function that raised on purpose (pipeline/context/contract.py).

- caller_handles  the first in-app caller's call inside `try:`, and on the callee's exception the
                  caller's own fallback: the value another of its handlers returns, skipping the item
                  in a loop, or the neutral value of its return annotation (`__eq__ -> bool`: False)

The callee keeps its contract (other callers may rely on the exception); the caller, which gave it
the input, decides what that input means for it. Verification judges such a patch by the caller's
replay: the crash frame's own replay calls the callee with the bad input straight and still raises,
so it is below the patch and not judged (pipeline/verify.py).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator

import libcst as cst

from pipeline.fixers.cst_site import CrashSite
from pipeline.fixers.template_kit import Rewrite, binds_name, callee_name, early_exits
from pipeline.fixers.templates_parse import caught_around, handler_returns, try_variants
from pipeline.records import ExceptionInfo, Location

# Exceptions a handler in the caller may name whatever the file imports.
_BUILTIN_EXCEPTIONS = frozenset(name for name, value in vars(builtins).items()
                                if isinstance(value, type) and issubclass(value, BaseException))
# Too broad to catch around a call: they would hide unrelated bugs in the callee.
_TOO_BROAD = frozenset({"Exception", "BaseException", "RuntimeError", "AssertionError", "RecursionError",
                        "NotImplementedError", "SystemExit", "KeyboardInterrupt", "MemoryError"})


def _catch_name(site: CrashSite, exc: ExceptionInfo) -> str | None:
    name = exc.type.rsplit(".", 1)[-1]
    if name in _TOO_BROAD:
        return None
    if name in _BUILTIN_EXCEPTIONS or binds_name(site.module, name):
        return name
    return None  # the caller's file cannot name the callee's exception without a new import


def caller_handles(site: CrashSite, crash: Location, exc: ExceptionInfo) -> Iterator[Rewrite]:
    """`site` is the caller's statement that called `crash.function`."""
    if site.function is None:
        return
    short = crash.function.rsplit(".", 1)[-1]
    calls = [n for n in site.expressions if isinstance(n, cst.Call) and callee_name(n) == short]
    catch = _catch_name(site, exc)
    if not calls or catch is None:
        return
    if caught_around(site, {catch, "Exception", "BaseException"}):
        return  # already handled around the call: the exception did not escape from here
    handlers = [([stmt], f"`{stmt}` as the function's other handler does") for stmt in handler_returns(site)]
    handlers += [([stmt], how) for stmt, how in early_exits(site)]
    for source, how in try_variants(site, catch, handlers):
        yield Rewrite("caller_handles", source, f"when `{short}` rejects the input with {catch}, {how}")
