"""The fix prompt, from the template files in pipeline/fixers/prompts/ (Jinja2).

The fixed part (rules and a worked example) comes first, so a server that caches prompt prefixes
(llama.cpp) reuses it across crashes; the event (scrubbed) and the code follow between markers,
as data. Retries append the previous answer and what was wrong with it, so the prefix stays cached.
"""

from __future__ import annotations

import ast
import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from pipeline.context.engine import Snippet
from pipeline.fixers.llm.edits import CRASH_MARKER
from pipeline.records import ErrorEvent, Hint
from pipeline.scrub import scrub_event, scrub_text

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
_VALUE_CHARS = 120
_MAX_VARS = 12
_DOCSTRING_LINES = 3
_FEEDBACK_CHARS = 1500


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(PROMPTS), autoescape=False, keep_trailing_newline=True,
                              undefined=jinja2.StrictUndefined)


def render(name: str, **values: Any) -> str:
    return _env().get_template(f"{name}.j2").render(marker=CRASH_MARKER, **values).strip() + "\n"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _VALUE_CHARS else text[:_VALUE_CHARS] + "..."


def _locals(vars: Mapping[str, Any]) -> str:
    items = [(k, v) for k, v in vars.items() if not k.startswith("__")][:_MAX_VARS]
    return "; ".join(f"{k} = {_value(v)}" for k, v in items) or "(none captured)"


def _docstring_span(text: str) -> tuple[int, int] | None:
    """0-based first and last line of the function's docstring in the snippet, if it has one."""
    try:
        tree = ast.parse(textwrap.dedent(text))
    except SyntaxError:
        return None
    fn = next((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if fn is None or not fn.body:
        return None
    first = fn.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.lineno - 1, (first.end_lineno or first.lineno) - 1
    return None


def marked_source(snippet: Snippet) -> str:
    """The snippet's code with the crash line marked (the marker is stripped from answers) and a long
    docstring cut to its first and last lines: tokens go to code, not prose."""
    lines = snippet.text.split("\n")
    index = snippet.line - snippet.start
    if snippet.line and 0 <= index < len(lines):
        lines[index] = f"{lines[index]}  {CRASH_MARKER}"
    span = _docstring_span(snippet.text)
    if span is not None and span[1] - span[0] > _DOCSTRING_LINES and not span[0] <= index <= span[1]:
        first, last = span
        indent = lines[first][: len(lines[first]) - len(lines[first].lstrip())]
        lines[first + 1:last] = [f"{indent}(docstring shortened)"]
    return "\n".join(lines)


@dataclass(frozen=True)
class Shown:
    """A snippet as the prompt shows it: `editable` covers the lines the model sees and may change
    (the whole function, or a window around the line the stack points at), `text` is what it reads."""

    editable: Snippet
    text: str
    whole: bool  # the whole function is shown (a whole-function rewrite is possible)


def window(snippet: Snippet, before: int, after: int) -> Shown:
    """The function whole when it is short; else its signature and the lines around the stack's line."""
    lines = snippet.text.split("\n")
    index = snippet.line - snippet.start if snippet.line else -1
    if index < 0 or index >= len(lines) or len(lines) <= before + after + 4:
        return Shown(snippet, marked_source(snippet), True)
    lo, hi = max(0, index - before), min(len(lines), index + after + 1)
    span = _docstring_span(snippet.text)
    if span is not None and lo <= span[1] and index > span[1]:
        lo = span[1] + 1  # no prose in the window
    head: list[str] = []
    for line in lines[:min(lo, 8)]:
        head.append(line)
        if line.rstrip().endswith(":") and not line.lstrip().startswith("@"):
            break
    else:
        head = [ln for ln in head[:1]]
    body = [ln for ln in lines[lo:hi]]
    body[index - lo] = f"{body[index - lo]}  {CRASH_MARKER}"
    indent = next((ln[: len(ln) - len(ln.lstrip())] for ln in body if ln.strip()), "    ")
    shown = head + ([f"{indent}... (lines {snippet.start + len(head)}-{snippet.start + lo - 1} not shown)"]
                    if lo > len(head) else []) + body
    if hi < len(lines):
        shown.append(f"{indent}... (the rest of the function is not shown)")
    narrowed = replace(snippet, start=snippet.start + lo, end=snippet.start + hi - 1, text="\n".join(lines[lo:hi]))
    return Shown(narrowed, "\n".join(shown), False)


def fence(text: str) -> str:
    """Untrusted text quoted as data: the markers cannot be closed from inside it."""
    return text.replace("DATA>>>", "DATA>>").replace("CODE>>>", "CODE>>").replace("<<<", "<<")


def scope_text(snippets: Sequence[Snippet]) -> str:
    by_file: dict[str, list[str]] = {}
    for s in snippets:
        by_file.setdefault(s.path, []).append(s.function)
    return "; ".join(f"{', '.join(dict.fromkeys(fns))} in {path}" for path, fns in by_file.items())


def user_message(event: ErrorEvent, snippets: Sequence[Shown], editable: Sequence[Snippet],
                 hints: Sequence[Hint] = (), note: str = "") -> str:
    """The crash report and code as data; `note` is autofix's own reading of the code (never event
    text), said outside the markers."""
    event = scrub_event(event)  # idempotent: the flow's event is scrubbed already
    exc = event.primary
    assert exc is not None
    in_app = [f for f in exc.frames if f.in_app] or list(exc.frames)
    frames = [{"where": f"{f.filename}:{f.lineno}", "function": f.function,
               "line": fence((f.context_line or "").strip())} for f in in_app[-6:]]
    locals_ = [(s.editable.function, fence(_locals(s.editable.vars))) for s in snippets if s.editable.vars][:2]
    code = [{"path": s.editable.path, "function": s.editable.function,
             "why": "crash site" if s.editable.why == "crash" else s.editable.why, "text": fence(s.text)}
            for s in snippets]
    return render("user", exception=fence(f"{exc.type}: {exc.value}"[:600]), frames=frames, locals=locals_,
                  snippets=code, hints=[fence(scrub_text(h.text))[:600] for h in hints],
                  scope=scope_text(editable), note=note)


def messages(event: ErrorEvent, snippets: Sequence[Shown], editable: Sequence[Snippet],
             hints: Sequence[Hint] = (), note: str = "") -> list[dict[str, str]]:
    return [
        {"role": "system", "content": render("system")},
        {"role": "user", "content": render("example_user")},
        {"role": "assistant", "content": render("example_answer")},
        {"role": "user", "content": user_message(event, snippets, editable, hints, note)},
    ]


def retry_messages(base: Sequence[Mapping[str, str]], answer: str, *, malformed: str | None = None,
                   failure: str | None = None, others: Sequence[str] = (), scope: str) -> list[dict[str, str]]:
    """The base conversation plus the previous answer and why it was not good enough."""
    if malformed is not None:
        feedback = render("retry_malformed", reason=malformed, others=others, scope=scope)
    else:
        tail = fence(scrub_text(failure or ""))
        if len(tail) > _FEEDBACK_CHARS:
            tail = "..." + tail[-_FEEDBACK_CHARS:]
        feedback = render("retry_failed", failure=tail, others=others, scope=scope)
    return [*map(dict, base), {"role": "assistant", "content": answer}, {"role": "user", "content": feedback}]
