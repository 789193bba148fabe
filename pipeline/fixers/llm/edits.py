"""Edits a small model can get right, applied strictly to the functions it may change.

A model answers with SEARCH/REPLACE blocks (or, constrained, the same edits as JSON; or a whole
function; or, as a last resort, a unified diff, whose hunks become SEARCH/REPLACE pairs). Every
SEARCH must match exactly one place inside the scope (the localised functions), tried in order:
exactly, ignoring trailing whitespace, ignoring the block's common indentation (the REPLACE is then
re-indented to where it lands), ignoring each line's indentation. A SEARCH that matches nothing or
matches twice, a REPLACE equal to its SEARCH, an incomplete block, or a set of edits that changes
nothing is a `Malformed` answer whose reason goes back to the model.
"""

from __future__ import annotations

import ast
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

CRASH_MARKER = "# <-- the exception is raised here"
REPLACE_END = ">>>>>>> REPLACE"
# What the prompt puts in place of lines it does not show; copied back by a model, it is dropped.
_ELISION = re.compile(r"^\s*\.\.\. \((lines \d+-\d+ not shown|the rest of the function is not shown)\)\s*$|"
                      r"^\s*\(docstring shortened\)\s*$|^# \S+, function \S+ \(.*\)$")


class Malformed(Exception):
    """The answer cannot be applied; the message says why, in words meant for the model."""


@dataclass(frozen=True)
class Edit:
    search: str
    replace: str


@dataclass(frozen=True)
class FunctionRewrite:
    source: str  # a whole `def` (decorators allowed)


@dataclass(frozen=True)
class Region:
    """A part of a file the model may change: a localised function (1-based, inclusive lines)."""

    path: str
    start: int
    end: int
    function: str = ""


_SEARCH = re.compile(r"^\s*<{3,}\s*SEARCH\b.*$", re.MULTILINE)
_DIVIDER = re.compile(r"^\s*={5,}\s*$", re.MULTILINE)
_REPLACE = re.compile(r"^\s*>{3,}\s*REPLACE\b.*$", re.MULTILINE)
_FENCE = re.compile(r"^\s*```[\w+-]*\s*$")


def _strip_fences(block: str) -> str:
    lines = [ln for ln in block.split("\n") if not _FENCE.match(ln)]
    return "\n".join(lines)


def _clean(block: str) -> str:
    """Fences out, the crash marker out, blank lines at either end out, trailing whitespace out."""
    lines = [ln.replace(CRASH_MARKER, "").rstrip() for ln in _strip_fences(block).split("\n")
             if not _ELISION.match(ln)]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def parse_blocks(text: str) -> list[Edit]:
    """SEARCH/REPLACE blocks, in order. Raises Malformed for an incomplete block."""
    edits: list[Edit] = []
    pos = 0
    while True:
        start = _SEARCH.search(text, pos)
        if start is None:
            break
        divider = _DIVIDER.search(text, start.end())
        if divider is None:
            raise Malformed("a SEARCH block has no ======= line after it: write the complete block")
        end = _REPLACE.search(text, divider.end())
        if end is None:
            raise Malformed("a SEARCH/REPLACE block was cut off before its >>>>>>> REPLACE line: "
                            "write shorter blocks, only the lines that change plus one line of context")
        nxt = _SEARCH.search(text, start.end())
        if nxt is not None and nxt.start() < end.start():
            raise Malformed("a SEARCH block starts before the previous one ended with >>>>>>> REPLACE")
        edits.append(Edit(_clean(text[start.end():divider.start()]), _clean(text[divider.end():end.start()])))
        pos = end.end()
    return edits


def parse_json(text: str) -> list[Edit]:
    """{"edits": [{"search": ..., "replace": ...}]} (constrained output)."""
    raw = text.strip()
    if raw.startswith("```"):
        raw = _strip_fences(raw)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise Malformed(f"the answer is not valid JSON ({exc.msg} at character {exc.pos})") from None
    items = data.get("edits") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise Malformed('the answer has no "edits" list with at least one edit')
    edits = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("search"), str) \
                or not isinstance(item.get("replace"), str):
            raise Malformed('each edit needs a "search" string and a "replace" string')
        edits.append(Edit(_clean(item["search"]), _clean(item["replace"])))
    return edits


EDITS_SCHEMA: Mapping[str, object] = {
    "type": "object",
    "properties": {
        "edits": {
            "type": "array", "minItems": 1, "maxItems": 4,
            "items": {"type": "object", "properties": {"search": {"type": "string"}, "replace": {"type": "string"}},
                      "required": ["search", "replace"], "additionalProperties": False},
        },
    },
    "required": ["edits"],
    "additionalProperties": False,
}


_HUNK = re.compile(r"^@@ [^@]* @@.*$", re.MULTILINE)


def parse_unified_diff(text: str) -> list[Edit]:
    """A unified diff's hunks as SEARCH/REPLACE pairs (context and - lines / context and + lines)."""
    edits: list[Edit] = []
    body = _strip_fences(text).split("\n")
    old: list[str] = []
    new: list[str] = []
    inside = False

    def flush() -> None:
        if old or new:
            edits.append(Edit(_clean("\n".join(old)), _clean("\n".join(new))))
        old.clear()
        new.clear()

    for line in body:
        if _HUNK.match(line):
            flush()
            inside = True
        elif line.startswith(("--- ", "+++ ", "diff ", "index ")):
            flush()
            inside = False
        elif inside:
            if line.startswith("-"):
                old.append(line[1:])
            elif line.startswith("+"):
                new.append(line[1:])
            elif line.startswith(" ") or line == "":
                old.append(line[1:])
                new.append(line[1:])
            elif line.startswith("\\"):
                continue
            else:
                flush()
                inside = False
    flush()
    return edits


_DEF = re.compile(r"^(\s*)(?:@[\w.]+.*\n\1)*(?:async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)


def parse_function(text: str, names: Sequence[str]) -> FunctionRewrite | None:
    """A fenced (or bare) whole `def NAME(` for one of the localised functions' names."""
    fenced = re.findall(r"```[\w+-]*\n(.*?)(?:```|\Z)", text, re.DOTALL)
    for chunk in [*fenced, text]:
        match = _DEF.search(chunk)
        if match and match.group(2) in names:
            return FunctionRewrite(textwrap.dedent(_clean(chunk[match.start():])))
    return None


def parse_answer(text: str, function_names: Sequence[str], edit_format: str = "blocks") -> list[Edit] | FunctionRewrite:
    """Whatever the answer holds, most specific first: JSON (constrained), blocks, a diff, a function."""
    if edit_format == "json":
        return parse_json(text)
    edits = parse_blocks(text)
    if edits:
        return edits
    if _HUNK.search(text):
        edits = parse_unified_diff(text)
        if edits:
            return edits
    rewrite = parse_function(text, function_names)
    if rewrite is not None:
        return rewrite
    if text.lstrip().startswith("{"):
        try:
            return parse_json(text)
        except Malformed:
            pass
    raise Malformed("the answer holds no SEARCH/REPLACE block: answer with one or more blocks "
                    "<<<<<<< SEARCH / ======= / >>>>>>> REPLACE as in the example")


# --- matching ------------------------------------------------------------------------------------


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _lines_equal_at(tier: int, window: Sequence[str], search: Sequence[str]) -> bool:
    if tier == 0:
        return [w.rstrip() for w in window] == list(search)
    if tier == 1:
        return _dedent_lines(window) == _dedent_lines(search)
    return [w.strip() for w in window] == [s.strip() for s in search]


def _dedent_lines(lines: Sequence[str]) -> list[str]:
    return textwrap.dedent("\n".join(ln.rstrip() for ln in lines)).split("\n")


@dataclass(frozen=True)
class _Match:
    path: str
    start: int  # 0-based index of the first line in the file
    length: int
    tier: int


def _find(edit: Edit, files: Mapping[str, list[str]], regions: Sequence[Region]) -> list[_Match]:
    search = edit.search.split("\n")
    for tier in range(3):
        found: list[_Match] = []
        for region in regions:
            lines = files[region.path]
            lo, hi = region.start - 1, min(region.end, len(lines))
            for i in range(lo, hi - len(search) + 1):
                if _lines_equal_at(tier, lines[i:i + len(search)], search):
                    found.append(_Match(region.path, i, len(search), tier))
        found = list({(m.path, m.start): m for m in found}.values())  # regions may overlap (nested functions)
        if found:
            return found
    return []


def _reindent(replace: str, search: str, window: Sequence[str]) -> list[str]:
    """The REPLACE lines moved by the indentation difference between the SEARCH and where it matched."""
    new = replace.split("\n") if replace else []
    s_first = next((ln for ln in search.split("\n") if ln.strip()), "")
    w_first = next((ln for ln in window if ln.strip()), "")
    s_ind, w_ind = len(_indent(s_first)), len(_indent(w_first))
    if s_ind == w_ind:
        return new
    out = []
    for line in new:
        if not line.strip():
            out.append("")
            continue
        rel = len(_indent(line)) - s_ind
        out.append(" " * max(0, w_ind + rel) + line.lstrip())
    return out


def _snip(text: str, limit: int = 160) -> str:
    one = " | ".join(ln.strip() for ln in text.split("\n") if ln.strip())
    return one if len(one) <= limit else one[:limit] + "..."


def apply_edits(sources: Mapping[str, str], regions: Sequence[Region], edits: Sequence[Edit]) -> dict[str, str]:
    """The new text of each changed file. Raises Malformed with a reason the model can act on."""
    if not edits:
        raise Malformed("the answer holds no edit")
    files = {path: text.split("\n") for path, text in sources.items()}
    planned: list[tuple[_Match, list[str]]] = []
    names = ", ".join(sorted({r.function for r in regions if r.function})) or "the functions shown"
    for number, edit in enumerate(edits, start=1):
        which = f"edit {number}" if len(edits) > 1 else "the edit"
        if not edit.search.strip():
            raise Malformed(f"{which} has an empty SEARCH: copy the lines to change from the code shown")
        if _dedent_lines(edit.search.split("\n")) == _dedent_lines(edit.replace.split("\n")):
            raise Malformed(f"{which} changes nothing: its REPLACE is the same as its SEARCH")
        matches = _find(edit, files, regions)
        if not matches:
            everywhere = [Region(p, 1, len(lines)) for p, lines in files.items()]
            outside = _find(edit, files, everywhere)
            if outside:
                raise Malformed(f"the SEARCH of {which} ({_snip(edit.search)}) is outside the function(s) you "
                                f"may change ({names})")
            raise Malformed(f"the SEARCH of {which} matches no lines of {names}: ({_snip(edit.search)}); copy the "
                            "lines exactly as they are in the code shown, without line numbers")
        if len(matches) > 1:
            where = ", ".join(f"line {m.start + 1}" for m in matches[:4])
            raise Malformed(f"the SEARCH of {which} ({_snip(edit.search)}) matches {len(matches)} places ({where}): "
                            "include one more line before or after so it matches one place only")
        match = matches[0]
        window = files[match.path][match.start:match.start + match.length]
        planned.append((match, _reindent(edit.replace, edit.search, window)))
    by_file: dict[str, list[tuple[_Match, list[str]]]] = {}
    for match, new in planned:
        by_file.setdefault(match.path, []).append((match, new))
    out: dict[str, str] = {}
    for path, items in by_file.items():
        items.sort(key=lambda item: item[0].start)
        for (a, _), (b, _) in zip(items, items[1:], strict=False):
            if b.start < a.start + a.length:
                raise Malformed("two edits change overlapping lines: merge them into one block")
        lines = list(files[path])
        for match, new in reversed(items):
            lines[match.start:match.start + match.length] = new
        text = "\n".join(lines)
        if text != sources[path]:
            out[path] = text
    if not out:
        raise Malformed("the edits change nothing")
    return out


def apply_function(sources: Mapping[str, str], regions: Sequence[Region], rewrite: FunctionRewrite) -> dict[str, str]:
    """Replace a localised function whole with the model's version, at the function's indentation."""
    match = _DEF.search(rewrite.source)
    name = match.group(2) if match else ""
    targets = [r for r in regions if r.function.rsplit(".", 1)[-1] == name]
    if not targets:
        raise Malformed(f"the function {name or '(none)'} is not one you may change")
    region = targets[0]
    try:
        ast.parse(rewrite.source)
    except SyntaxError as exc:
        raise Malformed(f"the rewritten function {name} does not parse (line {exc.lineno}: {exc.msg}); it may have "
                        "been cut off: answer with SEARCH/REPLACE blocks instead") from None
    lines = sources[region.path].split("\n")
    old = lines[region.start - 1:region.end]
    base = _indent(next((ln for ln in old if ln.strip()), ""))
    new = [(base + ln) if ln.strip() else "" for ln in rewrite.source.split("\n")]
    if _dedent_lines(old) == _dedent_lines(new):
        raise Malformed(f"the rewritten function {name} is the same as the original")
    lines[region.start - 1:region.end] = new
    return {region.path: "\n".join(lines)}
