"""A crash frame that raised on purpose: the signal (pipeline/context/contract.py), the caller_handles
template one frame up, and the fused ranking that puts that caller first. Small real-looking modules,
patches that git applies and that make the caller return what it should; and where none must fire."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers_fix import event, exc, frame, git, init_repo, issue, line_of

from pipeline.context.contract import raises_on_purpose
from pipeline.context.index import build_index
from pipeline.context.rank import FusionWeights, fused_ranking, receiver_makers
from pipeline.context.retrieve import retrieve
from pipeline.context.search import CodeSearch
from pipeline.fixers.templates import TemplateFixer
from pipeline.records import CodeContext, ErrorEvent, Location, Patch

ENCODINGS = '''"""Encoding names."""

ALIASES = {"utf8": "utf_8", "latin1": "latin_1"}


def iana_name(name: str, strict: bool = True) -> str:
    key = name.lower().replace("-", "")
    if key in ALIASES:
        return ALIASES[key]
    if strict:
        raise ValueError(f"Unable to retrieve IANA for '{name}'")
    return name


class Match:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return iana_name(other) == self.encoding
        return False


def known(names: list) -> list:
    out = []
    for name in names:
        out.append(iana_name(name))
    return out
'''


def _crash(source: str, callee: str, callee_line: str, caller: str, caller_line: str, type_: str,
           value: str) -> ErrorEvent:
    return event(exc(type_, value, frame(caller, "enc.py", line_of(source, caller_line), module="enc"),
                     frame(callee, "enc.py", line_of(source, callee_line), module="enc")))


def _context(repo: Path, ev: ErrorEvent) -> CodeContext:
    return retrieve(ev, repo)


def _run(source: str, expression: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, "enc.py", "exec"), namespace)
    return eval(expression, namespace)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return init_repo(tmp_path / "repo", {"enc.py": ENCODINGS})


def _eq_crash() -> ErrorEvent:
    return _crash(ENCODINGS, "iana_name", "raise ValueError", "Match.__eq__", "return iana_name(other) ==",
                  "ValueError", "Unable to retrieve IANA for 'utf8mb4'")


def _apply(repo: Path, patch: Patch) -> str:
    git(repo, "apply", "-", stdin=patch.diff)
    return (repo / "enc.py").read_text()


def test_a_raise_of_the_events_exception_on_the_crash_line_is_on_purpose(repo: Path) -> None:
    context = _context(repo, _eq_crash())
    assert raises_on_purpose(_eq_crash(), context.crash) == "iana_name raises ValueError on purpose at line 11"


def test_the_caller_handles_the_exception_with_its_own_fallback_and_the_callee_keeps_its_contract(
        repo: Path) -> None:
    ev = _eq_crash()
    patches = TemplateFixer().propose(issue(), ev, _context(repo, ev), [])
    handled = [p for p in patches if p.strategy == "template:caller_handles"]
    assert [p.description for p in handled] == [
        "Match.__eq__: when `iana_name` rejects the input with ValueError, return False"]
    added = [line[1:] for line in handled[0].diff.splitlines()[2:] if line.startswith("+")]
    assert added == ["            try:", "                return iana_name(other) == self.encoding",
                     "            except ValueError:", "                return False"]
    fixed = _apply(repo, handled[0])
    assert _run(fixed, "Match('utf_8') == 'utf8mb4'") is False
    assert _run(fixed, "Match('utf_8') == 'UTF-8'") is True
    with pytest.raises(ValueError):  # other callers still get the exception
        _run(fixed, "iana_name('utf8mb4')")


def test_in_a_loop_the_caller_skips_the_item_the_callee_rejects(repo: Path) -> None:
    ev = _crash(ENCODINGS, "iana_name", "raise ValueError", "known", "out.append(iana_name(name))",
                "ValueError", "Unable to retrieve IANA for 'klingon'")
    patches = [p for p in TemplateFixer().propose(issue(), ev, _context(repo, ev), [])
               if p.strategy == "template:caller_handles"]
    assert patches[0].description == "known: when `iana_name` rejects the input with ValueError, skip the item"
    assert _run(_apply(repo, patches[0]), "known(['utf8', 'klingon', 'latin1'])") == ["utf_8", "latin_1"]


DIVIDES = '''def share(total: int, parts: int) -> float:
    return total / parts


def shares(total: int, parts: int) -> list:
    return [share(total, parts)]
'''

HANDLED = '''def parse(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def parse_all(texts: list) -> list:
    try:
        return [parse(t) for t in texts]
    except ValueError:
        return []
'''

OWN_ERROR = '''class Rejected(Exception):
    pass


def check(value: int) -> int:
    if value < 0:
        raise Rejected(value)
    return value
'''
OWN_ERROR_CALLER = '''from other import check


def total(values: list) -> int:
    return sum(check(v) for v in values)
'''


@pytest.mark.parametrize(("files", "callee", "callee_line", "caller", "caller_file", "caller_line", "type_"), [
    # The callee's own logic failed (a division): not raised on purpose, so the fix is the callee's.
    ({"enc.py": DIVIDES}, "share", "return total / parts", "shares", "enc.py", "return [share(", "ZeroDivisionError"),
    # The caller already handles it: the exception did not escape from there.
    ({"enc.py": HANDLED}, "parse", "raise ValueError", "parse_all", "enc.py", "return [parse(t)", "ValueError"),
    # The caller's file cannot name the callee's own exception class without a new import.
    ({"other.py": OWN_ERROR, "enc.py": OWN_ERROR_CALLER}, "check", "raise Rejected", "total", "enc.py",
     "return sum(check(v)", "Rejected"),
], ids=["own-logic", "already-handled", "unnamed-exception"])
def test_caller_handles_does_not_fire(tmp_path: Path, files: dict[str, str], callee: str, callee_line: str,
                                      caller: str, caller_file: str, caller_line: str, type_: str) -> None:
    repo = init_repo(tmp_path / "repo", files)
    callee_file = next(name for name, text in files.items() if callee_line in text)
    ev = event(exc(type_, "x", frame(caller, caller_file, line_of(files[caller_file], caller_line)),
                   frame(callee, callee_file, line_of(files[callee_file], callee_line))))
    patches = TemplateFixer().propose(issue(), ev, _context(repo, ev), [])
    assert not [p for p in patches if p.strategy == "template:caller_handles"]


@pytest.mark.parametrize(("name", "type_", "expected"), [
    ("Table.__getitem__", "KeyError", True),
    ("Node.__getattr__", "AttributeError", True),
    ("Table.__getitem__", "TypeError", False),  # a lookup that failed some other way
    ("Table.get_row", "KeyError", False),
])
def test_a_lookup_protocol_raising_its_own_exception_is_on_purpose(name: str, type_: str, expected: bool) -> None:
    source = "def f(self, key):\n    return self.rows[key]\n"
    crash = Location("t.py", name, 2, 1, 2, source, "crash")
    ev = event(exc(type_, "'k'", frame(name.rsplit(".", 1)[-1], "t.py", 2)))
    assert bool(raises_on_purpose(ev, crash)) is expected


def test_fused_ranking_puts_the_caller_of_a_deliberate_raise_first_and_the_stack_stays(repo: Path) -> None:
    ev = _eq_crash()
    context = _context(repo, ev)
    index = build_index(repo)
    ranked = fused_ranking(ev, context, index, CodeSearch(index), FusionWeights(bm25=0.0, hits=0))
    assert [loc.function for loc in ranked[:2]] == ["Match.__eq__", "iana_name"]
    assert [loc.function for loc in context.locations] == ["iana_name", "Match.__eq__"]  # templates' order
    # A crash in the callee's own logic keeps the crash site first.
    divide = init_repo(repo.parent / "divide", {"enc.py": DIVIDES})
    ev2 = event(exc("ZeroDivisionError", "division by zero",
                    frame("shares", "enc.py", line_of(DIVIDES, "return [share(")),
                    frame("share", "enc.py", line_of(DIVIDES, "return total / parts"))))
    context2 = _context(divide, ev2)
    index2 = build_index(divide)
    assert fused_ranking(ev2, context2, index2, CodeSearch(index2), FusionWeights(bm25=0.0, hits=0))[0].function == \
        "share"


PATCHES = '''class Entry:
    def __init__(self, source, target):
        self.source = source
        self.target = target

    def is_rename(self):
        return self.source[2:] != self.target[2:]


def parse(lines):
    entries = []
    for line in lines:
        if line.startswith("Binary"):
            entries.append(Entry(line.split()[1], None))
        else:
            entries.append(Entry(*line.split()))
    return entries


def report(lines):
    return [e.is_rename() for e in parse(lines)]
'''


def test_a_none_attribute_of_the_receiver_brings_the_function_that_built_it_into_the_ranking(
        tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"patches.py": PATCHES})
    ev = event(exc("TypeError", "'NoneType' object is not subscriptable",
                   frame("report", "patches.py", line_of(PATCHES, "return [e.is_rename()")),
                   frame("is_rename", "patches.py", line_of(PATCHES, "return self.source[2:]"))))
    context = _context(repo, ev)
    index = build_index(repo)
    ranked = fused_ranking(ev, context, index, CodeSearch(index), FusionWeights(bm25=0.0, hits=0))
    assert [(loc.function, loc.role) for loc in ranked] == [
        ("Entry.is_rename", "crash"), ("report", "caller"), ("parse", "search")]
    # Not for a crash that is not about a None, nor when many functions build the class.
    other = event(exc("TypeError", "unsupported operand", *ev.exceptions[0].frames))
    assert [loc.function for loc in fused_ranking(other, context, index, CodeSearch(index),
                                                  FusionWeights(bm25=0.0, hits=0))] == ["Entry.is_rename", "report"]
    crowded = PATCHES + "".join(f"\n\ndef make{i}():\n    return Entry('a', 'b')\n" for i in range(3))
    crowded_repo = init_repo(tmp_path / "crowded", {"patches.py": crowded})
    crowded_index = build_index(crowded_repo)
    assert receiver_makers(ev, _context(crowded_repo, ev), crowded_index) == []


def test_a_raise_that_translates_a_caught_exception_is_not_on_purpose() -> None:
    source = ('def digest_line(profile):\n    try:\n        name = display_name(profile)\n'
              '    except KeyError as exc:\n        raise DigestError("incomplete") from exc\n    return name\n')
    crash = Location("jobs.py", "digest_line", 5, 1, 6, source, "crash")
    ev = event(exc("DigestError", "incomplete", frame("digest_line", "jobs.py", 5)))
    assert raises_on_purpose(ev, crash) == ""
    bare = source.replace(" from exc", "")  # still inside the handler: a translation all the same
    assert raises_on_purpose(ev, Location("jobs.py", "digest_line", 5, 1, 6, bare, "crash")) == ""
