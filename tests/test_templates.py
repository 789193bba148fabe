"""Fix templates on small real source files: the exact patch, that git applies it, and that it works."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libcst as cst
import pytest
from helpers_fix import event, exc, frame, git, init_repo, issue, line_of

from pipeline.fixers.cst_site import find_site, is_pure
from pipeline.fixers.diffing import changed_lines, diff_files, unified_diff
from pipeline.fixers.templates import TemplateFixer
from pipeline.records import CodeContext, ExceptionInfo, Location, Patch

# Formatting a reformatter would change, and comments: a patch must leave all of it as written.
HEAD = '''"""Shop helpers."""
from __future__ import annotations

RATE   =  { 'a':1,'b' :2 }   # spacing kept


'''
TAIL = '''


def untouched( a,b ):
    return a+b   # stays as written
'''


@dataclass(frozen=True)
class Case:
    name: str
    body: str  # the function under test, between HEAD and TAIL
    function: str
    crash: str  # text on the crash line
    exc_type: str
    exc_value: str
    args: tuple[Any, ...]
    strategy: str  # the template expected to repair the crash
    expected: Any  # what the repaired function returns for args
    marker: str = ""  # text that tells this patch from others of the same template

    @property
    def source(self) -> str:
        return HEAD + self.body + TAIL


CASES = [
    Case("attribute on None, pure receiver", '''def display_name(user: dict) -> str:
    # service accounts have no profile
    profile = user.get('profile')
    return profile.strip()
''', "display_name", "profile.strip()", "AttributeError", "'NoneType' object has no attribute 'strip'",
         ({},), "template:none_guard", ""),
    Case("attribute on a .get() result", '''def title(doc: dict) -> str:
    return doc.get("title").upper()
''', "title", ".upper()", "AttributeError", "'NoneType' object has no attribute 'upper'",
         ({},), "template:get_fallback", ""),
    Case("subscript of a .get() result", '''def city(order: dict) -> str:
    return order.get("address")["city"]
''', "city", '["city"]', "TypeError", "'NoneType' object is not subscriptable",
         ({},), "template:get_chain", ""),
    Case("missing key read with get", '''def price(row: dict) -> int:
    return row["price"] * 2
''', "price", 'row["price"]', "KeyError", "'price'", ({},), "template:get_default", 0),
    Case("missing key guarded", '''def price(row: dict) -> int:
    return row["price"] * 2
''', "price", 'row["price"]', "KeyError", "'price'", ({},), "template:key_guard", 0),
    Case("zero divisor guarded", '''def average(values: list[int]) -> float:
    total = sum(values)
    return total / len(values)
''', "average", "total / len", "ZeroDivisionError", "division by zero", ([],), "template:zero_guard", 0.0),
    Case("zero divisor inline", '''def share(part: int, whole: int) -> float:
    return round(part / whole, 2)
''', "share", "part / whole", "ZeroDivisionError", "division by zero", (1, 0),
         "template:zero_guard_inline", 0.0),
    Case("iteration over None", '''def names(users) -> list:
    out = []
    for user in users:
        out.append(user["name"])
    return out
''', "names", "for user in users", "TypeError", "'NoneType' object is not iterable", (None,),
         "template:iter_fallback", []),
    Case("literal index of an empty list", '''def first_tag(tags: list[str]) -> str:
    return tags[0].lower()
''', "first_tag", "tags[0]", "IndexError", "list index out of range", ([],), "template:index_guard", ""),
    Case("negative literal index", '''def last_two(items: list[int]) -> tuple:
    return items[-2], items[-1]
''', "last_two", "items[-2]", "IndexError", "list index out of range", ([1],), "template:index_guard", (),
         "len(items) < 2"),
    Case("operand None on the right", '''def total(base: int, extra) -> int:
    return base + extra
''', "total", "base + extra", "TypeError", "unsupported operand type(s) for +: 'int' and 'NoneType'",
         (1, None), "template:operand_default", 1),
    Case("operand None on the left", '''def label(prefix, name: str) -> str:
    return prefix + name
''', "label", "prefix + name", "TypeError", "unsupported operand type(s) for +: 'NoneType' and 'str'",
         (None, "x"), "template:operand_default", "x"),
    Case("attribute on None inside a loop", '''def emails(users: list) -> list[str]:
    out = []
    for user in users:
        address = user.get("email")
        out.append(address.lower())
    return out
''', "emails", "address.lower()", "AttributeError", "'NoneType' object has no attribute 'lower'",
         ([{"email": "A@x"}, {}],), "template:none_guard", ["a@x"], "continue"),
]


def _propose(repo: Path, case: Case, rel: str = "shop.py", function: str | None = None) -> list[Patch]:
    source = (repo / rel).read_text()
    ctx = CodeContext(str(repo), (Location(rel, function or case.function, line_of(source, case.crash)),))
    ev = event(exc(case.exc_type, case.exc_value, frame(case.function, rel)))
    return TemplateFixer().propose(issue(), ev, ctx, [])


def _pick(patches: list[Patch], case: Case) -> Patch:
    matching = [p for p in patches if p.strategy == case.strategy and case.marker in p.diff]
    assert matching, f"no {case.strategy} among {[p.strategy for p in patches]}"
    return matching[0]


def _call(source: str, function: str, args: tuple[Any, ...]) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, "shop.py", "exec"), namespace)
    return namespace[function](*args)


def _apply(repo: Path, diff: str) -> str:
    check = git(repo, "apply", "--check", "-", stdin=diff, check=False)
    assert check.returncode == 0, check.stderr
    git(repo, "apply", "-", stdin=diff)
    return (repo / "shop.py").read_text()


@pytest.fixture
def repo_for(tmp_path: Path) -> Any:
    def make(source: str, rel: str = "shop.py") -> Path:
        return init_repo(tmp_path / "repo", {rel: source})
    return make


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_template_patch_applies_with_git_and_the_function_no_longer_raises(case: Case, repo_for: Any) -> None:
    with pytest.raises(Exception) as before:  # the file really crashes the way the event says
        _call(case.source, case.function, case.args)
    assert type(before.value).__name__ == case.exc_type
    repo = repo_for(case.source)

    patch = _pick(_propose(repo, case), case)
    patched = _apply(repo, patch.diff)

    assert patch.files == ("shop.py",)
    assert patched.startswith(HEAD) and patched.endswith(TAIL)
    crash_line = case.source.splitlines()[line_of(case.source, case.crash) - 1]
    removed = [line[1:] for line in patch.diff.splitlines()[2:] if line.startswith("-")]
    assert set(removed) <= {crash_line}
    assert changed_lines(patch.diff) <= 2
    assert _call(patched, case.function, case.args) == case.expected


def test_guard_on_a_pure_receiver_returns_the_neutral_value_of_the_annotation(repo_for: Any) -> None:
    case = CASES[0]
    repo = repo_for(case.source)
    patches = _propose(repo, case)
    assert [p.strategy for p in patches] == ["template:none_guard"]
    assert patches[0].description == 'display_name: when `profile` is None, return "" instead of crashing'
    assert patches[0].diff == "".join([
        "--- a/shop.py\n",
        "+++ b/shop.py\n",
        "@@ -7,6 +7,8 @@\n",
        " def display_name(user: dict) -> str:\n",
        "     # service accounts have no profile\n",
        "     profile = user.get('profile')\n",
        "+    if profile is None:\n",
        '+        return ""\n',
        "     return profile.strip()\n",
        " \n",
        " \n",
    ])


def test_get_receiver_is_given_a_falsy_default(repo_for: Any) -> None:
    case = CASES[1]
    patches = _propose(repo_for(case.source), case)
    assert [p.strategy for p in patches] == ["template:get_fallback"]
    assert patches[0].diff == "".join([
        "--- a/shop.py\n",
        "+++ b/shop.py\n",
        "@@ -5,7 +5,7 @@\n",
        " \n",
        " \n",
        " def title(doc: dict) -> str:\n",
        '-    return doc.get("title").upper()\n',
        '+    return (doc.get("title") or "").upper()\n',
        " \n",
        " \n",
        " \n",
    ])


def test_get_then_subscript_becomes_a_get_chain(repo_for: Any) -> None:
    case = CASES[2]
    patch = _pick(_propose(repo_for(case.source), case), case)
    assert '+    return (order.get("address") or {}).get("city", "")\n' in patch.diff


def test_key_error_offers_get_default_then_key_guard(repo_for: Any) -> None:
    case = CASES[3]
    patches = _propose(repo_for(case.source), case)
    assert [p.strategy for p in patches] == ["template:get_default", "template:key_guard"]
    assert '+    return row.get("price", 0) * 2\n' in patches[0].diff
    assert '+    if "price" not in row:\n+        return 0\n' in patches[1].diff


def test_key_error_prefers_the_subscript_whose_literal_key_is_missing(repo_for: Any) -> None:
    case = Case("two keys", '''def pair(row: dict) -> int:
    return row["a"] + row["b"]
''', "pair", 'row["a"]', "KeyError", "'b'", ({"a": 1},), "template:get_default", 1)
    patches = _propose(repo_for(case.source), case)
    assert '+    return row["a"] + row.get("b", 0)\n' in patches[0].diff
    assert all('row.get("a"' not in p.diff for p in patches)


def test_zero_division_offers_a_guard_and_an_inline_fallback(repo_for: Any) -> None:
    case = CASES[5]
    patches = _propose(repo_for(case.source), case)
    assert [p.strategy for p in patches] == ["template:zero_guard", "template:zero_guard_inline"]
    assert "+    if not len(values):\n+        return 0.0\n" in patches[0].diff
    assert "+    return (total / len(values) if len(values) else 0.0)\n" in patches[1].diff


def test_iteration_over_none_iterates_over_an_empty_tuple(repo_for: Any) -> None:
    case = CASES[7]
    patch = _pick(_propose(repo_for(case.source), case), case)
    assert "-    for user in users:\n+    for user in users or ():\n" in patch.diff


def test_literal_index_guard_checks_the_length_the_index_needs(repo_for: Any) -> None:
    case = CASES[8]
    patch = _pick(_propose(repo_for(case.source), case), case)
    assert "+    if not tags:\n+        return \"\"\n" in patch.diff


def test_operand_none_is_replaced_by_the_other_operand_types_zero(repo_for: Any) -> None:
    case = CASES[10]
    patches = _propose(repo_for(case.source), case)
    assert [p.strategy for p in patches] == ["template:operand_default"]
    assert "+    return base + (extra or 0)\n" in patches[0].diff


def test_inside_a_loop_skipping_the_item_is_offered_before_returning(repo_for: Any) -> None:
    case = CASES[-1]
    patches = _propose(repo_for(case.source), case)
    assert [p.strategy for p in patches] == ["template:none_guard", "template:none_guard"]
    assert "+        if address is None:\n+            continue\n" in patches[0].diff
    assert "+        if address is None:\n+            return []\n" in patches[1].diff


@pytest.mark.parametrize(("annotation", "exit_line"), [
    ("-> dict[str, int]", "return {}"),
    ("-> typing.List[str]", "return []"),
    ("-> Optional[str]", "return None"),
    ("-> str | None", "return None"),
    ("-> None", "return"),
    ("", "return None"),
])
def test_neutral_value_follows_the_return_annotation(annotation: str, exit_line: str, repo_for: Any) -> None:
    body = f"def pick(user) {annotation}:\n    name = user.name\n    return name.strip()\n"
    case = Case("ann", body, "pick", "name.strip()", "AttributeError",
                "'NoneType' object has no attribute 'strip'", (), "template:none_guard", None)
    patch = _pick(_propose(repo_for(case.source), case), case)
    assert f"+    if name is None:\n+        {exit_line}\n" in patch.diff


def test_annotation_without_a_neutral_value_gives_no_guard(repo_for: Any) -> None:
    body = "def pick(user) -> User:\n    name = user.name\n    return name.strip()\n"
    case = Case("ann", body, "pick", "name.strip()", "AttributeError",
                "'NoneType' object has no attribute 'strip'", (), "template:none_guard", None)
    assert _propose(repo_for(case.source), case) == []


def test_impure_receiver_gets_no_guard(repo_for: Any) -> None:
    body = "def pick(load) -> str:\n    return load().strip()\n"
    case = Case("impure", body, "pick", "load().strip()", "AttributeError",
                "'NoneType' object has no attribute 'strip'", (), "template:none_guard", None)
    assert _propose(repo_for(case.source), case) == []


def test_method_crash_is_patched_inside_its_class(repo_for: Any) -> None:
    body = '''class Cart:
    def __init__(self, items):
        self.items = items

    def count(self) -> int:
        return len(self.items)
'''
    case = Case("method", body, "Cart.count", "len(self.items)", "TypeError",
                "object of type 'int' has no len()", (), "", None)
    # No template claims this message; the same file with an attribute crash does get a guard.
    assert _propose(repo_for(case.source), case) == []
    body2 = body.replace("len(self.items)", "self.items.count(1)")
    case2 = Case("method", body2, "Cart.count", "self.items.count", "AttributeError",
                 "'NoneType' object has no attribute 'count'", (), "template:none_guard", None)
    patch = _pick(_propose(repo_for(case2.source), case2), case2)
    assert "+        if self.items is None:\n+            return 0\n" in patch.diff


def test_no_patch_when_the_crash_lines_function_disagrees_with_the_stack(repo_for: Any) -> None:
    case = CASES[0]
    repo = repo_for(case.source)
    assert _propose(repo, case, function="something_else") == []
    assert _propose(repo, case, function="Profile.display_name")  # a qualname ending in the name is fine


def test_no_patch_for_an_exception_no_template_handles(repo_for: Any) -> None:
    case = CASES[0]
    other = Case(case.name, case.body, case.function, case.crash, "ValueError", "bad profile", (),
                 "", None)
    assert _propose(repo_for(case.source), other) == []


def test_no_patch_when_the_crash_location_is_only_a_caller(repo_for: Any) -> None:
    case = CASES[0]
    repo = repo_for(case.source)
    loc = Location("shop.py", case.function, line_of(case.source, case.crash), role="caller")
    ev = event(exc(case.exc_type, case.exc_value, frame(case.function, "shop.py")))
    assert TemplateFixer().propose(issue(), ev, CodeContext(str(repo), (loc,)), []) == []


def test_no_patch_when_the_line_holds_no_statement(repo_for: Any) -> None:
    case = CASES[0]
    repo = repo_for(case.source)
    loc = Location("shop.py", "display_name", 6)  # a blank line between RATE and the function
    ev = event(exc(case.exc_type, case.exc_value))
    assert TemplateFixer().propose(issue(), ev, CodeContext(str(repo), (loc,)), []) == []


@pytest.mark.parametrize("strategy", ["template:get_fallback", "template:none_guard"])
def test_diff_of_a_file_without_a_final_newline_applies(strategy: str, tmp_path: Path) -> None:
    source = "def title(doc: dict) -> str:\n    t = doc.get('t')\n    return t.upper()"
    crash = "t.upper()" if strategy.endswith("none_guard") else "doc.get('t')"
    value = "'NoneType' object has no attribute 'upper'"
    if strategy.endswith("get_fallback"):
        source = "def title(doc: dict) -> str:\n    return doc.get('t').upper()"
    repo = init_repo(tmp_path / "repo", {"shop.py": source})
    case = Case("no newline", "", "title", crash, "AttributeError", value, ({},), strategy, "")
    patch = _pick(_propose(repo, case), case)
    assert patch.diff.endswith("\n\\ No newline at end of file\n")
    patched = _apply(repo, patch.diff)
    assert not patched.endswith("\n")
    assert _call(patched, "title", ({},)) == ""


def test_identical_rewrites_from_two_templates_give_one_patch(repo_for: Any) -> None:
    # `len(items)` is both a pure receiver and a divisor; each distinct diff appears once.
    case = CASES[5]
    patches = _propose(repo_for(case.source), case)
    assert len({p.diff for p in patches}) == len(patches)


def test_find_site_reports_the_statement_function_and_loop() -> None:
    source = CASES[-1].source
    site = find_site(source, line_of(source, "address.lower()"))
    assert site is not None and site.function is not None
    assert site.function.name.value == "emails"
    assert site.in_loop
    assert site.code(site.statement).strip() == "out.append(address.lower())"
    outside = find_site(source, line_of(source, "out = []"))
    assert outside is not None and not outside.in_loop


def test_find_site_takes_a_compound_statement_whose_header_crashed() -> None:
    source = CASES[7].source
    site = find_site(source, line_of(source, "for user in users"))
    assert site is not None and isinstance(site.statement, cst.For)
    assert not site.in_loop


def test_find_site_refuses_unparsable_source() -> None:
    assert find_site("def broken(:\n", 1) is None


@pytest.mark.parametrize(("code", "pure"), [
    ("user", True), ("user.profile.name", True), ('row["k"]', True), ("row[i]", True), ("row[0]", True),
    ("len(items)", True), ("user.load()", False), ("row[i + 1]", False), ("row[1:2]", False),
    ("a + b", False), ("len(load())", False),
])
def test_is_pure_accepts_only_expressions_safe_to_evaluate_twice(code: str, pure: bool) -> None:
    assert is_pure(cst.parse_expression(code)) is pure


def test_unified_diff_counts_and_names_what_it_changes() -> None:
    diff = unified_diff("pkg/mod.py", "a\nb\nc\n", "a\nB\nc\nd\n")
    assert diff.startswith("--- a/pkg/mod.py\n+++ b/pkg/mod.py\n")
    assert changed_lines(diff) == 3
    assert diff_files(diff) == ("pkg/mod.py",)
    assert diff_files(diff + unified_diff("other.py", "x\n", "y\n") + diff) == ("pkg/mod.py", "other.py")
    assert unified_diff("same.py", "x\n", "x\n") == ""


def _only(case: Case, repo_for: Any) -> list[str]:
    return [p.diff for p in _propose(repo_for(case.source), case)]


def test_no_guard_is_hoisted_out_of_a_comprehension(repo_for: Any) -> None:
    body = "def emails(users: list) -> list[str]:\n    return [u.email.lower() for u in users]\n"
    case = Case("comp", body, "emails", "u.email.lower()", "AttributeError",
                "'NoneType' object has no attribute 'lower'", (), "", None)
    # `if u.email is None` before the statement would name a variable that exists only inside it.
    assert _only(case, repo_for) == []


def test_key_guard_may_be_hoisted_from_a_comprehensions_first_iterable(repo_for: Any) -> None:
    body = 'def skus(order: dict) -> list:\n    return [line["sku"] for line in order["lines"]]\n'
    case = Case("comp iter", body, "skus", "order[", "KeyError", "'lines'", ({},), "template:key_guard", [])
    repo = repo_for(case.source)
    patch = _pick(_propose(repo, case), case)
    assert '+    if "lines" not in order:\n+        return []\n' in patch.diff
    assert _call(_apply(repo, patch.diff), "skus", ({},)) == []


def test_division_inside_a_lambda_is_only_patched_inline(repo_for: Any) -> None:
    body = "def ratios(counts: list, total: int) -> list:\n    return sorted(counts, key=lambda n: total / n)\n"
    case = Case("lambda", body, "ratios", "lambda n", "ZeroDivisionError", "division by zero", ([0, 2], 4),
                "template:zero_guard_inline", [0, 2])
    patches = _propose(repo_for(case.source), case)
    assert [p.strategy for p in patches] == ["template:zero_guard_inline"]
    assert "key=lambda n: (total / n if n else 0.0))\n" in patches[0].diff


@pytest.mark.parametrize("line", [
    "    if user: return user.name.strip()",
    "    return user is not None and user.name.strip()",
    '    return user.name.strip() if user.active else ""',
])
def test_no_guard_evaluates_what_the_statement_evaluates_only_conditionally(line: str, repo_for: Any) -> None:
    body = f'def name(user) -> str:\n{line}\n    return ""\n'
    case = Case("conditional", body, "name", "strip()", "AttributeError",
                "'NoneType' object has no attribute 'strip'", (), "", None)
    assert _only(case, repo_for) == []


def test_operand_template_touches_only_the_operation_the_message_names(repo_for: Any) -> None:
    body = "def score(base: int, bonus) -> int:\n    return base * 2 + bonus\n"
    case = Case("op", body, "score", "base * 2", "TypeError",
                "unsupported operand type(s) for +: 'int' and 'NoneType'", (3, None),
                "template:operand_default", 6)
    patches = _propose(repo_for(case.source), case)
    assert [p.strategy for p in patches] == ["template:operand_default"]
    assert "+    return base * 2 + (bonus or 0)\n" in patches[0].diff


def test_diff_of_a_file_with_crlf_line_endings_keeps_them_and_applies(tmp_path: Path) -> None:
    source = "def title(doc: dict) -> str:\r\n    t = doc.get('t')\r\n    return t.upper()\r\n"
    repo = init_repo(tmp_path / "repo", {"README": "crlf\n"})
    (repo / "shop.py").write_bytes(source.encode())
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "crlf")
    case = Case("crlf", "", "title", "t.upper()", "AttributeError",
                "'NoneType' object has no attribute 'upper'", ({},), "template:none_guard", "")
    patch = _pick(_propose(repo, case), case)
    assert "+    if t is None:\r\n+        return \"\"\r\n" in patch.diff
    _apply(repo, patch.diff)
    patched = (repo / "shop.py").read_bytes().decode()
    assert patched.count("\r\n") == 5 and patched.count("\n") == 5
    assert _call(patched, "title", ({},)) == ""


def test_a_misspelt_method_is_replaced_by_the_closest_name_the_file_defines(tmp_path: Path) -> None:
    from pipeline.fixers.templates import name_typo

    source = (
        "class Bag:\n"
        "    def issuperset(self, other):\n"
        "        return True\n"
        "\n"
        "    def __ge__(self, other):\n"
        "        return self.issupserset(other)\n"
    )
    site = find_site(source, 6, "Bag.__ge__")
    assert site is not None
    exc = ExceptionInfo("AttributeError", "'Bag' object has no attribute 'issupserset'")
    (rewrite,) = list(name_typo(site, exc))
    assert "return self.issuperset(other)" in rewrite.source
    namespace: dict[str, object] = {}
    exec(rewrite.source, namespace)
    bag = namespace["Bag"]()  # type: ignore[operator]
    assert (bag >= bag) is True


def test_an_undefined_name_with_no_close_match_gets_no_patch() -> None:
    from pipeline.fixers.templates import name_typo

    source = "def total(items):\n    return sum(items) * vat_rate\n"
    site = find_site(source, 2, "total")
    assert site is not None
    assert list(name_typo(site, ExceptionInfo("NameError", "name 'vat_rate' is not defined"))) == []


CALLERS = '''def average(values):
    return sum(values) / len(values)


def summary(ratings):
    return {"mean": round(average(ratings), 2)}


def first_word(text):
    return text.split()[0]


def greet(name):
    return "Hello, " + first_word(name).capitalize()
'''


@pytest.mark.parametrize(("crash", "crash_line", "caller", "caller_line", "needs"), [
    ("average", "return sum(values)", "summary", "round(average", [("0", "round(average(ratings), 2)")]),
    ("first_word", "return text.split", "greet", "first_word(name)", [('""', "first_word(name).capitalize")]),
])
def test_caller_needs_reads_what_the_caller_does_with_the_result(
    tmp_path: Path, crash: str, crash_line: str, caller: str, caller_line: str, needs: list[tuple[str, str]]
) -> None:
    from pipeline.fixers.templates import caller_needs

    (tmp_path / "m.py").write_text(CALLERS)
    here = Location("m.py", crash, line_of(CALLERS, crash_line))
    ctx = CodeContext(str(tmp_path), (here, Location("m.py", caller, line_of(CALLERS, caller_line), role="caller")))
    assert list(caller_needs(ctx, here)) == needs
    assert caller_needs(CodeContext(str(tmp_path), (here,)), here) == ()
