"""The templates for parse errors, unbound locals, exhausted iterators and None operands, on small
real-looking functions: the exact rewrite, that git applies it, that the repaired function returns
what its caller expects, and the cases where a template must not fire."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers_fix import event, exc, frame, git, init_repo, issue, line_of

from pipeline.fixers.templates import TemplateFixer
from pipeline.records import CodeContext, Location, Patch


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    function: str  # qualname as the stack reports it
    crash: str  # text on the crash line
    exc_type: str
    exc_value: str
    call: str  # an expression that calls the function; it raises before the patch
    strategy: str  # the template expected first
    expected: Any  # what `call` evaluates to after the first patch of that template
    added: tuple[str, ...] = ()  # lines the patch adds, exactly
    vars: dict[str, Any] = field(default_factory=dict)  # the crash frame's captured locals


CASES = [
    Case("int() of junk with the function's own rejection", '''class ValidationError(ValueError):
    pass


class NumberConverter:
    fixed_digits = 0

    def to_python(self, value: str) -> int:
        if self.fixed_digits and len(value) != self.fixed_digits:
            raise ValidationError()
        number = int(value)
        return number
''', "NumberConverter.to_python", "number = int(value)", "ValueError",
         "invalid literal for int() with base 10: '12a'", "_raises(NumberConverter().to_python, '12a')",
         "template:parse_guard", "ValidationError",
         ("        try:", "            number = int(value)", "        except ValueError:",
          "            raise ValidationError() from None")),
    Case("float() with a default parameter", '''def env_float(env: dict, key: str, default: float = 1.0) -> float:
    raw = env.get(key, default)
    ratio = float(raw)
    return ratio * 2
''', "env_float", "ratio = float(raw)", "ValueError", "could not convert string to float: 'fast'",
         "env_float({'R': 'fast'}, 'R')", "template:parse_guard", 2.0,
         ("    try:", "        ratio = float(raw)", "    except ValueError:", "        ratio = default")),
    Case("Decimal() of junk returns the other handler's value", '''from decimal import Decimal, InvalidOperation


def price_of(row: dict):
    try:
        amount = row["amount"]
    except KeyError:
        return None
    return Decimal(amount)
''', "price_of", "return Decimal(amount)", "InvalidOperation", "[<class 'decimal.ConversionSyntax'>]",
         "price_of({'amount': 'n/a'})", "template:parse_guard", None,
         ("    try:", "        return Decimal(amount)", "    except InvalidOperation:", "        return None")),
    Case("int() in a loop skips the bad row", '''def quantities(lines: list[str]) -> list[int]:
    out = []
    for line in lines:
        out.append(int(line.strip()))
    return out
''', "quantities", "out.append(int(", "ValueError", "invalid literal for int() with base 10: 'x'",
         "quantities(['1', 'x', '3'])", "template:parse_guard", [1, 3],
         ("        try:", "            out.append(int(line.strip()))", "        except ValueError:",
          "            continue")),
    Case("lookup inside a try that catches something else", '''import codecs


def lookup_encoding(name: str) -> str | None:
    lowered = name.lower()
    try:
        codec_name = codecs.lookup(name).name
    except LookupError:
        return None
    return codec_name if codec_name != lowered else lowered
''', "lookup_encoding", "codecs.lookup(name)", "ValueError", "embedded null character",
         "lookup_encoding('\\x00utf-8')", "template:handler_widen", None,
         ("    except (LookupError, ValueError):",)),
    Case("unbound after an if/elif chain", '''def flatten(widgets: list[dict], flatten: bool) -> list:
    out = []
    for widget in widgets:
        kind = widget["kind"]
        if kind == "button":
            stream = widget["on"]
        elif kind == "text":
            stream = widget["text"]
        elif kind == "signature":
            print("signatures are not implemented")
        if flatten and stream is not None:
            out.append(stream)
    return out
''', "flatten", "if flatten and stream is not None", "UnboundLocalError",
         "cannot access local variable 'stream' where it is not associated with a value",
         "flatten([{'kind': 'signature'}, {'kind': 'text', 'text': 'hi'}], True)", "template:unbound_init",
         ["hi"], ("        stream = None",)),
    Case("unbound counter after a loop that never ran", '''def last_index(items: list) -> int:
    for index, item in enumerate(items):
        if item is None:
            break
    return index + 1
''', "last_index", "return index + 1", "UnboundLocalError",
         "cannot access local variable 'index' where it is not associated with a value",
         "last_index([])", "template:unbound_init", 1, ("    index = 0",)),
    Case("next() on an exhausted iterator", '''def cell_len(text: str) -> int:
    total = 0
    chars = iter(text)
    for char in chars:
        if char == "\\u200d":
            next(chars)
        else:
            total += 1
    return total
''', "cell_len", "next(chars)", "StopIteration", "", "cell_len('ab\\u200d')", "template:next_default", 2,
         ("            next(chars, None)",)),
    Case("next() for the first match", '''def first_admin(users: list[dict]) -> str:
    admin = next(u for u in users if u["admin"])
    return admin["name"]
''', "first_admin", "admin = next(", "StopIteration", "", "first_admin([{'admin': False}])",
         "template:next_exhausted", "", ("    try:", '        admin = next(u for u in users if u["admin"])',
                                           "    except StopIteration:", '        return ""')),
    Case("None on the left of a comparison", '''def over_limit(order: dict, limit: int) -> bool:
    total = order.get("total")
    if total > limit:
        return True
    return False
''', "over_limit", "if total > limit", "TypeError", "'>' not supported between instances of 'NoneType' and 'int'",
         "over_limit({}, 10)", "template:none_compare", False, ("    if total is not None and total > limit:",)),
    Case("None on the right of a comparison", '''def is_recent(seen: int, cutoff) -> bool:
    return seen >= cutoff
''', "is_recent", "seen >= cutoff", "TypeError", "'>=' not supported between instances of 'int' and 'NoneType'",
         "is_recent(5, None)", "template:none_compare", False, ("    return cutoff is not None and seen >= cutoff",)),
    Case("string concatenation with None", '''def greeting(user: dict) -> str:
    title = user.get("title")
    name = user["name"]
    return "Dear " + title + " " + name
''', "greeting", '"Dear " + title', "TypeError", 'can only concatenate str (not "NoneType") to str',
         "greeting({'name': 'Ada'})", "template:none_concat", "Dear  Ada",
         ('    return "Dear " + (title or "") + " " + name',), {"title": None, "name": "'Ada'"}),
    Case("augmented assignment with None", '''def total_weight(items: list[dict]) -> int:
    weight = 0
    for item in items:
        weight += item.get("weight")
    return weight
''', "total_weight", "weight += item", "TypeError", "unsupported operand type(s) for +=: 'int' and 'NoneType'",
         "total_weight([{'weight': 2}, {}])", "template:none_augassign", 2,
         ('        weight += (item.get("weight") or 0)',)),
    Case("len() of None", '''def page_count(doc: dict) -> int:
    pages = doc.get("pages")
    return len(pages) + 1
''', "page_count", "len(pages)", "TypeError", "object of type 'NoneType' has no len()",
         "page_count({})", "template:len_default", 1, ("    return len(pages or ()) + 1",)),
    Case("chr() of a huge code point beside the ValueError the handler expects", '''def entity(number: int, raw: str) -> str:
    try:
        return chr(number)
    except ValueError:
        pass
    return raw
''', "entity", "return chr(number)", "OverflowError", "Python int too large to convert to C int",
         "entity(10**20, '&#100000000000000000000;')", "template:handler_widen", "&#100000000000000000000;",
         ("    except (ValueError, OverflowError):",)),
    Case("the last token read in an elif test before any token exists", '''JOINER = "+"


def tokens(text: str) -> list:
    result = []
    for char in text:
        if char.isalpha():
            result.append(char)
        elif char == JOINER and result[-1].isalpha():
            result[-1] += char
        else:
            result.append(char)
    return result
''', "tokens", "elif char == JOINER and result[-1]", "IndexError", "list index out of range",
         "tokens('+ab+')", "template:index_guard_condition", ["+", "a", "b+"],
         ("        elif char == JOINER and result and result[-1].isalpha():",)),
]

HELPERS = '''

def _raises(fn, *args):
    try:
        fn(*args)
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__
    return "no exception"
'''


def _propose(repo: Path, case: Case) -> list[Patch]:
    source = (repo / "mod.py").read_text()
    ctx = CodeContext(str(repo), (Location("mod.py", case.function, line_of(source, case.crash)),))
    ev = event(exc(case.exc_type, case.exc_value, frame(case.function, "mod.py", vars=case.vars)))
    return TemplateFixer().propose(issue(), ev, ctx, [])


def _run(source: str, call: str) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source + HELPERS, "mod.py", "exec"), namespace)
    return eval(call, namespace)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_template_repairs_the_crash_with_a_patch_git_applies(case: Case, tmp_path: Path) -> None:
    if case.strategy != "template:parse_guard" or case.expected != "ValidationError":
        with pytest.raises(Exception) as before:
            _run(case.source, case.call)
        assert type(before.value).__name__ == case.exc_type
    repo = init_repo(tmp_path / "repo", {"mod.py": case.source})

    patches = _propose(repo, case)
    assert patches and patches[0].strategy == case.strategy, [p.strategy for p in patches]
    assert len(patches) <= 4
    patch = patches[0]
    added = [line[1:] for line in patch.diff.splitlines()[2:] if line.startswith("+")]
    assert tuple(added) == case.added
    check = git(repo, "apply", "--check", "-", stdin=patch.diff, check=False)
    assert check.returncode == 0, check.stderr
    git(repo, "apply", "-", stdin=patch.diff)
    assert _run((repo / "mod.py").read_text(), case.call) == case.expected


def test_werkzeug_like_parse_before_the_fix_raises_valueerror_not_the_domain_error() -> None:
    # The first case's call helper reports the escaping exception: ValueError on the buggy code.
    assert _run(CASES[0].source, CASES[0].call) == "ValueError"


def test_parse_guard_ranks_the_default_parameter_before_early_exits(tmp_path: Path) -> None:
    case = CASES[1]
    patches = _propose(init_repo(tmp_path / "repo", {"mod.py": case.source}), case)
    assert [p.description.split(", ", 1)[1] for p in patches] == [
        "use the `default` the caller passed", "return the `default` the caller passed", "return 0.0"]


def test_unbound_init_goes_inside_the_loop_before_the_branch_that_assigns(tmp_path: Path) -> None:
    case = CASES[5]
    patch = _propose(init_repo(tmp_path / "repo", {"mod.py": case.source}), case)[0]
    assert '         kind = widget["kind"]\n+        stream = None\n         if kind == "button":\n' in patch.diff


NOT_FIRING = [
    Case("ValueError raised on purpose", '''def parse_mode(text: str) -> int:
    if text not in ("r", "w"):
        raise ValueError(f"bad mode {text}")
    return int(text == "w")
''', "parse_mode", "raise ValueError", "ValueError", "bad mode x", "", "", None),
    Case("ValueError from unpacking, not parsing", '''def split_pair(text: str) -> tuple:
    try:
        key, value = text.split("=")
    except KeyError:
        return ()
    return key, value
''', "split_pair", "key, value = text", "ValueError", "not enough values to unpack (expected 2, got 1)",
         "", "", None),
    Case("a handler that already catches ValueError", '''def to_int(text: str) -> int:
    try:
        return int(text, base=16)
    except (TypeError, ValueError):
        return 0
''', "to_int", "return int(text", "ValueError", "invalid literal for int() with base 16: 'zz'", "", "", None),
    Case("global counter assigned in the function", '''calls = 0


def bump() -> int:
    calls += 1
    return calls
''', "bump", "calls += 1", "UnboundLocalError",
         "cannot access local variable 'calls' where it is not associated with a value", "", "", None),
    Case("unbound name never assigned before the crash", '''def report(rows: list) -> str:
    line = header
    header = "rows"
    return line
''', "report", "line = header", "UnboundLocalError",
         "cannot access local variable 'header' where it is not associated with a value", "", "", None),
    Case("next() that already has a default", '''def first(rows: list):
    return next(iter(rows), None)
''', "first", "return next(", "StopIteration", "", "", "", None),
    Case("StopIteration raised on purpose", '''class Countdown:
    def __init__(self, n: int) -> None:
        self.n = n

    def __next__(self) -> int:
        if self.n <= 0:
            raise StopIteration
        self.n -= 1
        return self.n
''', "Countdown.__next__", "raise StopIteration", "StopIteration", "", "", "", None),
    Case("comparison of two unrelated non-None types", '''def newer(a, b) -> bool:
    return a > b
''', "newer", "return a > b", "TypeError", "'>' not supported between instances of 'str' and 'int'",
         "", "", None),
    Case("concatenation of an int, not None", '''def label(n) -> str:
    return "item " + n
''', "label", '"item " + n', "TypeError", 'can only concatenate str (not "int") to str', "", "", None),
    Case("the last item read inside an `or`: guarding it would change what the other side means", '''def closes(tokens: list, char: str) -> bool:
    if char == ")" or tokens[-1] == "(":
        return True
    return False
''', "closes", 'if char == ")" or tokens[-1]', "IndexError", "list index out of range", "", "", None),
    Case("OverflowError where the handler catches something other than ValueError", '''def entity(number: int) -> str:
    try:
        return chr(number)
    except KeyError:
        return ""
''', "entity", "return chr(number)", "OverflowError", "Python int too large to convert to C int", "", "", None),
    Case("len() of an int", '''def width(n) -> int:
    return len(n)
''', "width", "len(n)", "TypeError", "object of type 'int' has no len()", "", "", None),
]


@pytest.mark.parametrize("case", NOT_FIRING, ids=[c.name for c in NOT_FIRING])
def test_template_does_not_fire(case: Case, tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", {"mod.py": case.source})
    assert _propose(repo, case) == []


def test_concatenation_prefers_the_operand_the_locals_show_as_none(tmp_path: Path) -> None:
    case = CASES[11]
    swapped = Case(case.name, case.source, case.function, case.crash, case.exc_type, case.exc_value, case.call,
                   case.strategy, case.expected, vars={"title": "'Dr'", "name": None})
    patches = _propose(init_repo(tmp_path / "repo", {"mod.py": case.source}), swapped)
    assert '+    return "Dear " + title + " " + (name or "")\n' in patches[0].diff


# --- end to end: events recorded by the real sentry-sdk, verified through the callers in bubblewrap ---

STOCK = '''"""Stock files as the warehouse exports them."""


def quantities(lines: list) -> list:
    out = []
    for line in lines:
        out.append(int(line.strip()))
    return out


def total_quantity(lines: list) -> int:
    return sum(quantities(lines))


def first_admin(users: list) -> dict:
    admin = next(u for u in users if u["admin"])
    return admin


def admin_name(users: list) -> str:
    return first_admin(users)["name"]
'''
SCRIPTS = {
    "parse": "from stock.io import total_quantity\n\nprint(total_quantity(['3', 'n/a', '4']))\n",
    "next": "from stock.io import admin_name\n\nprint(admin_name([{'admin': False, 'name': 'bo'}]))\n",
}


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    import os
    import subprocess
    import sys

    repo = init_repo(tmp_path_factory.mktemp("stock") / "repo", {"stock/__init__.py": "", "stock/io.py": STOCK})
    events: dict[str, Path] = {}
    for name, script in SCRIPTS.items():
        work = repo.parent / name
        work.mkdir()
        (work / "repro.py").write_text(script)
        run = subprocess.run(
            [sys.executable, "-m", "pipeline.benchmark.capture", "--out", str(work / "event.json"), "--in-app",
             "stock", str(work / "repro.py")], cwd=work, capture_output=True, text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), str(Path(__file__).resolve().parents[1])])})
        assert run.returncode == 0, run.stderr
        events[name] = work / "event.json"
    return repo, events


def _fix(stock: tuple[Path, dict[str, Path]], name: str, tmp_path: Path, cache: Path) -> Any:
    from pipeline.flow import FixRequest, fix_issue
    from pipeline.grouping import group
    from pipeline.sources import load_path
    from sandbox.config import make_sandbox

    repo, events = stock
    ev, iss = group(load_path(events[name])[0])
    request = FixRequest(ev, iss, repo, tmp_path / "work", env_home=cache)
    return fix_issue(request, [TemplateFixer()], make_sandbox("bwrap"))


def test_end_to_end_a_bad_row_is_skipped_and_that_verifies_through_the_caller(
        stock: tuple[Path, dict[str, Path]], tmp_path: Path, repo_env_cache: Path) -> None:
    outcome = _fix(stock, "parse", tmp_path, repo_env_cache)

    assert outcome.status == "verified", outcome.reason
    best = outcome.best
    assert best is not None and best.patch.strategy == "template:parse_guard" and outcome.queued
    assert "+        except ValueError:\n+            continue\n" in best.patch.diff
    assert best.verification is not None
    assert [r.role for r in best.verification.replays] == ["crash", "caller"]


def test_end_to_end_a_none_or_empty_admin_only_moves_the_crash_to_the_caller_and_is_rejected(
        stock: tuple[Path, dict[str, Path]], tmp_path: Path, repo_env_cache: Path) -> None:
    outcome = _fix(stock, "next", tmp_path, repo_env_cache)

    # `return {}` and `next(..., None)` both let first_admin return, and admin_name then fails:
    # the replay of the caller is what refuses them.
    assert outcome.status == "unverified" and not outcome.queued
    strategies = [c.patch.strategy for c in outcome.candidates]
    assert sorted(strategies) == ["template:next_default", "template:next_exhausted"]
    for candidate in outcome.candidates:
        assert candidate.verification is not None and not candidate.verification.verified
        assert any(r.role == "caller" and r.after is not None and r.after.value != "passed"
                   for r in candidate.verification.replays)


@pytest.mark.parametrize(("body", "crash", "call", "expected", "before"), [
    ('''def ship(order: dict) -> str:
    if order["paid"]:
        label = "ship " + order["id"]
    else:
        print(label)
    return "held"
''', "print(label)", "ship({'paid': False, 'id': 'o1'})", "held", "    if order[\"paid\"]:"),
    ('''def load(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        return len(str(value))
    return value
''', "return len(str(value))", "load('x')", 0, "    try:"),
    ('''def running(values: list) -> list:
    out = []
    for v in values:
        if v < 0:
            out.append(last)
        last = v
    return out
''', "out.append(last)", "running([-1, 2])", [None], "    for v in values:"),
])
def test_unbound_init_goes_before_the_statement_that_assigns_on_another_path(
        body: str, crash: str, call: str, expected: Any, before: str, tmp_path: Path) -> None:
    function = body.split("(")[0].removeprefix("def ")
    case = Case("other path", body, function, crash, "UnboundLocalError",
                f"cannot access local variable '{crash.split('(')[-1].rstrip(')')}' where it is not associated with a value",
                call, "template:unbound_init", expected)
    repo = init_repo(tmp_path / "repo", {"mod.py": body})
    patches = _propose(repo, case)
    assert patches and patches[0].strategy == "template:unbound_init"
    git(repo, "apply", "-", stdin=patches[0].diff)
    patched = (repo / "mod.py").read_text()
    lines = patched.splitlines()
    assert lines[lines.index(before) - 1].strip().endswith(("= None", '= ""', "= 0"))
    assert _run(patched, call) == expected
