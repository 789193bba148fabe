"""Replays from events: rebuilt arguments, importable module names, reasons, and a test file that really runs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from helpers_fix import event, exc, frame, line_of, write_tree

from pipeline.fixers.diffing import changed_old_lines, unified_diff
from pipeline.records import CodeContext, Location
from pipeline.repro import (
    MARKER,
    FrameSpan,
    NotRebuildable,
    Replay,
    ReplayPlan,
    module_name,
    plan_replays,
    rebuild,
)


@pytest.mark.parametrize(("serialised", "value"), [
    ("'abc'", "abc"),
    ('"it\'s"', "it's"),
    ("0", 0),
    ("-2.5", -2.5),
    ("None", None),
    ("True", True),
    (7, 7),
    (None, None),
    (False, False),
    ("b'\\x00'", b"\x00"),
    ("(1, 'a')", (1, "a")),
    (["'a'", "1", "None"], ["a", 1, None]),
    ({"user": {"name": "'Ann'", "tags": ["'x'", "2"]}, "n": "None"},
     {"user": {"name": "Ann", "tags": ["x", 2]}, "n": None}),
])
def test_rebuild_reads_sentrys_repr_leaves_back_as_python_values(serialised: Any, value: Any) -> None:
    assert rebuild(serialised) == value


@pytest.mark.parametrize("serialised", [
    "<object at 0x1>",
    "<User id=3>",
    "'truncated stri...",
    "datetime.datetime(2024, 1, 1)",
    "abc",
    ["'ok'", "<Thing>"],
    {"inner": {"deep": "<Thing>"}},
    object(),
])
def test_rebuild_refuses_values_that_are_not_literals(serialised: Any) -> None:
    with pytest.raises(NotRebuildable):
        rebuild(serialised)


PRICING = '''"""Pricing."""


def unit_price(total, count, *, currency="EUR", rounding=2):
    return round(total / count, rounding), currency


def greet(name, greeting="hello"):
    return greeting + ", " + name.upper()


def describe(first, *rest):
    return first + len(rest) + rest[0] // 0


def only_positional(a, b=1, /, c=2):
    return a[b]


class Cart:
    def total(self):
        return self.items[0]

    @staticmethod
    def share(amount, people):
        return amount / people


def outer():
    def inner(x):
        return 1 / x
    return inner
'''


class Attempt:
    """The plan for a one-frame event: its replay, or the reason it has none."""

    def __init__(self, plan: ReplayPlan) -> None:
        self.plan = plan
        self.reproduction: Replay | None = plan.replays[0] if plan.replays else None
        self.reason = "; ".join(plan.not_replayable)


def _attempt(repo: Path, rel: str, function: str, crash: str, vars: dict[str, Any], *,
             module: str | None = None, exc_type: str = "ZeroDivisionError") -> Attempt:
    source = (repo / rel).read_text()
    line = line_of(source, crash)
    f = frame(function.rsplit(".", 1)[-1], "/srv/" + rel, line, module=module, vars=vars)
    ctx = CodeContext(str(repo), (Location(rel, function, line),))
    return Attempt(plan_replays(event(exc(exc_type, "boom", f), event_id="evt-42"), ctx))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", {
        "shop/__init__.py": "",
        "shop/pricing.py": PRICING,
        "src/app/__init__.py": "",
        "src/app/core.py": PRICING,
        "tools/script.py": PRICING,
        "pkg/__init__.py": "def boot(n):\n    return 1 / n\n",
    })


def test_positional_arguments_are_passed_by_name_and_kw_only_defaults_may_be_missing(repo: Path) -> None:
    attempt = _attempt(repo, "shop/pricing.py", "unit_price", "total / count",
                       {"total": "10", "count": "0", "currency": "'USD'"})
    r = attempt.reproduction
    assert r is not None, attempt.reason
    assert (r.module, r.qualname, r.import_root) == ("shop.pricing", "unit_price", "")
    assert r.args == ()
    assert r.kwargs == {"total": 10, "count": 0, "currency": "USD"}
    assert attempt.plan.exception_type == "ZeroDivisionError"


def test_missing_argument_with_a_default_is_left_to_the_default(repo: Path) -> None:
    attempt = _attempt(repo, "shop/pricing.py", "greet", "greeting +", {"name": "None"},
                       exc_type="AttributeError")
    assert attempt.reproduction is not None
    assert attempt.reproduction.kwargs == {"name": None}


def test_missing_required_argument_refuses(repo: Path) -> None:
    attempt = _attempt(repo, "shop/pricing.py", "unit_price", "total / count", {"total": "10"})
    assert attempt.reproduction is None
    assert "'count' was not captured" in attempt.reason


def test_missing_required_keyword_only_argument_refuses(repo: Path) -> None:
    write_tree(repo, {"shop/kw.py": "def f(a, *, key):\n    return a[key]\n"})
    attempt = _attempt(repo, "shop/kw.py", "f", "a[key]", {"a": "{}"}, exc_type="KeyError")
    assert attempt.reproduction is None
    assert "'key' was not captured" in attempt.reason


def test_non_literal_argument_refuses(repo: Path) -> None:
    attempt = _attempt(repo, "shop/pricing.py", "unit_price", "total / count",
                       {"total": "<Money object at 0x7f>", "count": "0"})
    assert attempt.reproduction is None
    assert "argument 'total' is not a literal" in attempt.reason


def test_method_refuses_but_a_static_method_is_called_through_its_class(repo: Path) -> None:
    method = _attempt(repo, "shop/pricing.py", "Cart.total", "self.items[0]", {"self": "<Cart>"},
                      exc_type="IndexError")
    assert method.reproduction is None
    assert "its receiver 'self' is '<Cart>', which shows no attributes" in method.reason
    static = _attempt(repo, "shop/pricing.py", "Cart.share", "amount / people",
                      {"amount": "3", "people": "0"})
    assert static.reproduction is not None
    assert static.reproduction.qualname == "Cart.share"


def test_nested_function_and_module_code_refuse(repo: Path) -> None:
    nested = _attempt(repo, "shop/pricing.py", "outer.<locals>.inner", "1 / x", {"x": "0"})
    assert nested.reproduction is None and "cannot be called from outside" in nested.reason


def test_crash_location_that_is_only_a_caller_refuses(repo: Path) -> None:
    ctx = CodeContext(str(repo), (Location("shop/pricing.py", "greet", 9, role="caller"),))
    plan = plan_replays(event(exc("ValueError", "x", frame("greet", "x.py", 9))), ctx)
    assert plan.replays == ()
    assert plan.reason == "no frame of the event can be replayed: the crash frame maps to no repo file"


def test_positional_only_parameters_are_passed_positionally(repo: Path) -> None:
    attempt = _attempt(repo, "shop/pricing.py", "only_positional", "a[b]",
                       {"a": "[]", "b": "3", "c": "2"}, exc_type="IndexError")
    r = attempt.reproduction
    assert r is not None
    assert (r.args, r.kwargs) == (([], 3), {"c": 2})


def test_positional_only_default_left_out_before_a_captured_one_refuses(repo: Path) -> None:
    write_tree(repo, {"shop/po.py": "def f(a=(), b=0, /):\n    return a[b]\n"})
    gap = _attempt(repo, "shop/po.py", "f", "a[b]", {"b": "1"}, exc_type="IndexError")
    assert gap.reproduction is None
    assert "'a' was not captured but a later positional one was" in gap.reason
    both_default = _attempt(repo, "shop/po.py", "f", "a[b]", {}, exc_type="IndexError")
    assert both_default.reproduction is not None
    assert both_default.reproduction.args == ()


def test_captured_star_args_keep_the_named_parameters_positional(repo: Path, tmp_path: Path) -> None:
    attempt = _attempt(repo, "shop/pricing.py", "describe", "rest[0] // 0",
                       {"first": "1", "rest": ["2", "3"]})
    r = attempt.reproduction
    assert r is not None
    assert (r.args, r.kwargs) == ((1, 2, 3), {})
    assert _run_pytest(repo, attempt.plan.path, attempt.plan.source).count(MARKER) >= 1


def test_module_name_comes_from_the_frame_when_it_fits_the_path(repo: Path) -> None:
    f = frame("unit_price", "core.py", module="app.core")
    assert module_name("src/app/core.py", f, repo) == ("app.core", "src")
    attempt = _attempt(repo, "src/app/core.py", "unit_price", "total / count",
                       {"total": "1", "count": "0"}, module="app.core")
    assert attempt.reproduction is not None
    assert (attempt.reproduction.module, attempt.reproduction.import_root) == ("app.core", "src")


def test_module_name_walks_up_packages_when_the_frame_has_none_or_a_wrong_one(repo: Path) -> None:
    assert module_name("src/app/core.py", frame("f", "core.py"), repo) == ("app.core", "src")
    assert module_name("src/app/core.py", frame("f", "core.py", module="__main__"), repo) == ("app.core", "src")
    assert module_name("shop/pricing.py", frame("f", "pricing.py"), repo) == ("shop.pricing", "")
    assert module_name("tools/script.py", frame("f", "script.py"), repo) == ("script", "tools")


def test_module_name_of_a_package_init_is_the_package(repo: Path) -> None:
    assert module_name("pkg/__init__.py", frame("boot", "__init__.py"), repo) == ("pkg", "")
    assert module_name("src/app/__init__.py", frame("f", "__init__.py"), repo) == ("app", "src")
    assert module_name("pkg/__init__.py", frame("boot", "__init__.py", module="pkg"), repo) == ("pkg", "")


def test_file_with_a_name_python_cannot_import_refuses(repo: Path) -> None:
    write_tree(repo, {"scripts/my-job.py": "def run(n):\n    return 1 / n\n"})
    attempt = _attempt(repo, "scripts/my-job.py", "run", "1 / n", {"n": "0"})
    assert attempt.reproduction is None
    assert "not importable" in attempt.reason


def _run_pytest(repo: Path, rel: str, source: str) -> str:
    test = repo / rel
    test.parent.mkdir(parents=True, exist_ok=True)
    test.write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["AUTOFIX_REPO"] = str(repo)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", rel],
                          cwd=repo, env=env, capture_output=True, text=True, timeout=60)
    return f"exit={proc.returncode}\n{proc.stdout}{proc.stderr}"


def test_rendered_reproduction_is_python_that_fails_with_the_marker_then_passes_once_fixed(repo: Path) -> None:
    attempt = _attempt(repo, "shop/pricing.py", "unit_price", "total / count",
                       {"total": "10", "count": "0", "rounding": "1"})
    plan = attempt.plan
    assert attempt.reproduction is not None, attempt.reason
    ast.parse(plan.source)
    assert "evt-42" in plan.source

    before = _run_pytest(repo, plan.path, plan.source)
    assert before.startswith("exit=1")
    assert f"{MARKER} ZeroDivisionError: division by zero" in before

    fixed = PRICING.replace("    return round(total / count", "    if not count:\n        return 0, currency\n"
                            "    return round(total / count")
    (repo / "shop/pricing.py").write_text(fixed)
    after = _run_pytest(repo, plan.path, plan.source)
    assert after.startswith("exit=0"), after
    assert MARKER not in after


def test_reproduction_failing_some_other_way_carries_no_marker(repo: Path) -> None:
    attempt = _attempt(repo, "src/app/core.py", "greet", "greeting +", {"name": "None"},
                       module="app.core", exc_type="AttributeError")
    plan = attempt.plan
    assert attempt.reproduction is not None
    assert MARKER in _run_pytest(repo, plan.path, plan.source)
    (repo / "src/app/core.py").write_text(PRICING.replace("return greeting", "raise KeyError('x')\n    return greeting"))
    other = _run_pytest(repo, plan.path, plan.source)
    assert other.startswith("exit=1")
    assert "KeyError" in other and MARKER not in other


def test_a_crash_in_a_method_whose_receiver_is_an_opaque_object_is_replayed_through_its_caller(
    tmp_path: Path,
) -> None:
    from datetime import datetime

    from pipeline.context.retrieve import retrieve
    from pipeline.records import ErrorEvent, ExceptionInfo, Frame

    pkg = tmp_path / "textkit"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "replace.py").write_text(
        "class Replacer:\n"
        "    def __init__(self, table):\n"
        "        self.table = table\n"
        "\n"
        "    def lookup(self, key):\n"
        "        return self.table[key]\n"
        "\n"
        "\n"
        "def replace_all(text, table):\n"
        "    return Replacer(table).lookup(text)\n"
    )
    frames = (
        Frame("replace_all", "textkit/replace.py", module="textkit.replace", lineno=10,
              context_line="    return Replacer(table).lookup(text)", vars={"text": "'abc'", "table": {}}),
        Frame("lookup", "textkit/replace.py", module="textkit.replace", lineno=6,
              context_line="        return self.table[key]",
              vars={"self": "<textkit.replace.Replacer object at 0x7f>", "key": "'abc'"}),
    )
    event = ErrorEvent("e1", "sentry-event", "python", (ExceptionInfo("KeyError", "'abc'", frames=frames),),
                       datetime.now(UTC))
    plan = plan_replays(event, retrieve(event, tmp_path))
    assert [(r.role, r.qualname) for r in plan.replays] == [("caller", "replace_all")]
    assert plan.replays[0].kwargs == {"text": "abc", "table": {}}
    assert len(plan.not_replayable) == 1
    assert plan.not_replayable[0].startswith("crash Replacer.lookup (textkit/replace.py:6): method lookup: "
                                             "its receiver 'self' is")


# --- what makes a frame not replayable -------------------------------------------------------------

CHANGES = '''"""Parameters changed before the crash line, or not."""


def reassigned(a, b):
    b = b - 1
    return a / b


def changed_after(a, b):
    c = a / b
    b = 2
    return c


def augmented(total, n):
    n -= 1
    return total / n


def popped(items):
    items.pop()
    return 1 / len(items)


def item_set(data):
    data["k"] = 0
    return 1 / data["k"]


def loop_rebinds(n, steps):
    for _ in range(steps):
        q = 1 / n
        n = n - 1
    return q


def other_locals_only(a, b):
    c = b
    c = c - b
    return a / c
'''


@pytest.mark.parametrize(("function", "crash", "vars", "reason"), [
    ("reassigned", "    return a / b", {"a": "1", "b": "0"}, "parameter 'b' is reassigned on line 5, before line 6"),
    ("augmented", "total / n", {"total": "1", "n": "0"}, "parameter 'n' is reassigned on line 16"),
    ("popped", "1 / len(items)", {"items": "[]"}, "parameter 'items' is changed in place (.pop())"),
    ("item_set", "1 / data[", {"data": {"k": "0"}}, "parameter 'data' is changed in place (item set)"),
    ("loop_rebinds", "q = 1 / n", {"n": "0", "steps": "3"}, "parameter 'n' is reassigned on line 33, in a loop that runs line 32 again"),
])
def test_a_parameter_changed_before_the_crash_line_is_replayed_with_its_value_at_the_crash_through_that_line(
    repo: Path, function: str, crash: str, vars: dict[str, Any], reason: str
) -> None:
    write_tree(repo, {"shop/changes.py": CHANGES})
    attempt = _attempt(repo, "shop/changes.py", function, crash, vars)
    r = attempt.reproduction
    assert r is not None, attempt.reason
    assert r.site == ("shop/changes.py", line_of(CHANGES, crash))
    assert reason in r.approximate
    assert "the event shows its value at the crash, not the one the call passed" in r.approximate
    # The test says so, and passes the line: only an exception raised through it reproduces.
    assert "with the values at the crash: " + r.approximate in attempt.plan.source
    assert f"site={r.site!r}" in attempt.plan.source


NORMALISED = '''"""A count that arrives as text, normalised first."""


def share(total, guests):
    guests = int(guests)
    if guests < 0:
        return total / 0
    return total / guests
'''


def test_a_replay_with_the_values_at_the_crash_reproduces_only_through_the_crash_line(repo: Path) -> None:
    write_tree(repo, {"shop/normalised.py": NORMALISED})
    # The event saw guests=0 at the crash, after int(): called with 0, int() gives 0 again.
    attempt = _attempt(repo, "shop/normalised.py", "share", "return total / guests", {"total": "90", "guests": "0"})
    plan = attempt.plan
    assert attempt.reproduction is not None and attempt.reproduction.site is not None, attempt.reason
    before = _run_pytest(repo, plan.path, plan.source)
    assert before.startswith("exit=1") and f"{MARKER} ZeroDivisionError" in before, before

    # The same exception type from another line of the function is not the crash.
    elsewhere = _attempt(repo, "shop/normalised.py", "share", "return total / guests", {"total": "90", "guests": "-1"})
    other = _run_pytest(repo, elsewhere.plan.path, elsewhere.plan.source)
    assert other.startswith("exit=1") and "ZeroDivisionError" in other and MARKER not in other, other

    (repo / "shop/normalised.py").write_text(NORMALISED.replace("    return total / guests",
                                                                "    return total / guests if guests else 0"))
    after = _run_pytest(repo, plan.path, plan.source)
    assert after.startswith("exit=0"), after


@pytest.mark.parametrize(("function", "crash", "vars"), [
    ("changed_after", "c = a / b", {"a": "1", "b": "0"}),
    ("other_locals_only", "return a / c", {"a": "1", "b": "2", "c": "0"}),
])
def test_changes_after_the_crash_line_or_to_other_locals_leave_the_frame_replayable(
    repo: Path, function: str, crash: str, vars: dict[str, Any]
) -> None:
    write_tree(repo, {"shop/changes.py": CHANGES})
    attempt = _attempt(repo, "shop/changes.py", function, crash, vars)
    assert attempt.reproduction is not None, attempt.reason
    assert attempt.reproduction.site is None  # the values are the call's: any raise of the type counts


@pytest.mark.parametrize(("vars", "reason"), [
    ({"total": "'[Filtered:email]'", "count": "0"}, "argument 'total' was scrubbed ([Filtered:email]"),
    ({"total": {"card": "'[Filtered:card]'"}, "count": "0"}, "argument 'total' was scrubbed ([Filtered:card]"),
    ({"total": "'[Filtered]'", "count": "0"}, "argument 'total' was scrubbed ([Filtered]"),  # the SDK's own
    ({"total": [str(i) for i in range(10)], "count": "0"}, "argument 'total' holds exactly 10 items"),
    ({"total": {"inner": {str(i): "1" for i in range(10)}}, "count": "0"}, "holds exactly 10 items"),
    ({"total": "'aaaaaaaaaaaaaaaaaaaaaaaaaaaa...", "count": "0"}, "was cut at the SDK's length limit"),
])
def test_scrubbed_and_trimmed_arguments_make_the_frame_not_replayable(
    repo: Path, vars: dict[str, Any], reason: str
) -> None:
    attempt = _attempt(repo, "shop/pricing.py", "unit_price", "total / count", vars)
    assert attempt.reproduction is None
    assert reason in attempt.reason


def test_a_meta_length_in_the_raw_payload_marks_a_trimmed_argument() -> None:
    from pipeline.replay_args import tainted

    with pytest.raises(NotRebuildable, match="trimmed by the SDK \\(it had 15 items"):
        tainted("values", ["1", "2"], {"": {"len": 15}})
    with pytest.raises(NotRebuildable, match="a string was cut"):
        tainted("text", "'abc'", {"": {"rem": [["!limit", "x", 509, 512]]}})
    tainted("deep", "[[1]]", {"": {"rem": [["!limit", "x"]]}})  # a whole value repr'd at the depth limit


def test_vars_meta_finds_the_frames_entry_in_the_payload() -> None:
    from pipeline.replay_args import vars_meta

    f = frame("f", "a.py", 1, vars={"values": ["1"]})
    e = event(exc("ZeroDivisionError", "x", f))
    meta = {"exception": {"values": {"0": {"stacktrace": {"frames": {"0": {"vars": {"values": {"": {"len": 40}}}}}}}}}}
    from dataclasses import replace
    assert vars_meta(replace(e, raw={"exception": {}, "_meta": meta}), 0) == {"values": {"": {"len": 40}}}
    webhook = {"data": {"event": {"exception": {}, "_meta": meta}}}
    assert vars_meta(replace(e, raw=webhook), 0) == {"values": {"": {"len": 40}}}
    assert vars_meta(e, 0) == {}


RECEIVERS = '''"""Receivers."""
from dataclasses import dataclass, field


@dataclass
class Point:
    x: int
    y: int = 0
    label: str = field(default="", repr=False)

    def slope(self):
        return self.y / self.x


@dataclass
class Pair:
    a: int
    b: int

    def ratio(self):
        return self.a / self.b

    @classmethod
    def build(cls, a, b):
        return a / b
'''


@pytest.mark.parametrize(("function", "crash", "self_repr", "reason"), [
    ("Pair.ratio", "self.a / self.b", "Pair(a=1, b=0)", None),
    ("Point.slope", "self.y / self.x", "Point(x=0, y=1)", "the receiver's repr leaves out label"),
    ("Pair.ratio", "self.a / self.b", "Other(a=1, b=0)", "its receiver is a Other, not the in-app class Pair"),
    ("Pair.ratio", "self.a / self.b", "Pair(a=Decimal('1'), b=0)", "attribute 'a' is not a literal"),
    ("Pair.ratio", "self.a / self.b", "<shop.Pair object at 0x1>", "which shows no attributes"),
])
def test_a_receiver_is_rebuilt_only_from_a_repr_of_its_own_class_with_literal_attributes(
    repo: Path, function: str, crash: str, self_repr: str, reason: str | None
) -> None:
    write_tree(repo, {"shop/receivers.py": RECEIVERS})
    attempt = _attempt(repo, "shop/receivers.py", function, crash, {"self": f"{self_repr!r}"[1:-1]})
    if reason is None:
        assert attempt.reproduction is not None, attempt.reason
        assert attempt.reproduction.receiver is not None
        assert attempt.reproduction.receiver.attrs == {"a": 1, "b": 0}
        out = _run_pytest(repo, attempt.plan.path, attempt.plan.source)
        assert f"{MARKER} ZeroDivisionError" in out
    else:
        assert attempt.reproduction is None
        assert reason in attempt.reason


def test_a_classmethod_is_called_through_its_class_without_its_cls_argument(repo: Path) -> None:
    write_tree(repo, {"shop/receivers.py": RECEIVERS})
    attempt = _attempt(repo, "shop/receivers.py", "Pair.build", "return a / b",
                       {"cls": "<class 'shop.receivers.Pair'>", "a": "1", "b": "0"})
    assert attempt.reproduction is not None, attempt.reason
    assert (attempt.reproduction.args, attempt.reproduction.kwargs) == ((), {"a": 1, "b": 0})
    assert f"{MARKER} ZeroDivisionError" in _run_pytest(repo, attempt.plan.path, attempt.plan.source)


def test_generators_and_coroutines_are_run_to_the_crash(repo: Path) -> None:
    write_tree(repo, {"shop/lazy.py": "async def fetch(n):\n    return 1 / n\n\n\n"
                                       "def each(n):\n    yield 1\n    yield 1 / n\n"})
    for function, crash in (("fetch", "return 1 / n"), ("each", "yield 1 / n")):
        attempt = _attempt(repo, "shop/lazy.py", function, crash, {"n": "0"})
        assert attempt.reproduction is not None, attempt.reason
        assert f"{MARKER} ZeroDivisionError" in _run_pytest(repo, attempt.plan.path, attempt.plan.source)


def test_a_file_in_a_declared_encoding_is_read_and_an_undecodable_one_is_skipped_with_a_reason(
    repo: Path,
) -> None:
    latin = "# -*- coding: latin-1 -*-\ndef f(n):\n    return 'caf\xe9' * (1 // n)\n".encode("latin-1")
    (repo / "shop" / "latin.py").write_bytes(latin)
    f = frame("f", "shop/latin.py", 3, vars={"n": "0"})
    ctx = CodeContext(str(repo), (Location("shop/latin.py", "f", 3),))
    plan = plan_replays(event(exc("ZeroDivisionError", "x", f)), ctx)
    assert [r.qualname for r in plan.replays] == ["f"]

    (repo / "shop" / "broken.py").write_bytes(b"def f(n):\n    return '\xff\xfe' * (1 // n)\n")
    f = frame("f", "shop/broken.py", 2, vars={"n": "0"})
    ctx = CodeContext(str(repo), (Location("shop/broken.py", "f", 2),))
    plan = plan_replays(event(exc("ZeroDivisionError", "x", f)), ctx)
    assert plan.replays == ()
    assert "the file cannot be read: shop/broken.py does not decode as utf-8" in plan.not_replayable[0].replace(
        str(repo) + "/", "")


def test_an_init_frame_is_replayed_by_calling_its_class_whatever_its_self_shows(repo: Path) -> None:
    write_tree(repo, {"shop/grid.py": "class Grid:\n    def __init__(self, text, width):\n        self.text = text\n"
                                      "        self.rows = len(text) // width\n"})
    attempt = _attempt(repo, "shop/grid.py", "Grid.__init__", "len(text) // width",
                       {"self": "<shop.grid.Grid object at 0x1>", "text": "'abc'", "width": "0"})
    r = attempt.reproduction
    assert r is not None, attempt.reason
    assert (r.call_path, r.constructs, r.receiver, r.kwargs) == (("Grid",), True, None, {"text": "abc", "width": 0})
    assert f"{MARKER} ZeroDivisionError" in _run_pytest(repo, attempt.plan.path, attempt.plan.source)


# --- where a patch lies on the stack ---------------------------------------------------------------

_FRAMES = (FrameSpan(0, "app/inner.py", 10, 14), FrameSpan(1, "app/outer.py", 3, 30),
           FrameSpan(2, "app/outer.py", 40, 50), FrameSpan(3, "app/outer.py", 3, 30))  # 3: outer() recursing


@pytest.mark.parametrize(("old", "new", "depth"), [
    ({"app/inner.py": {12}}, {}, 0),                              # the crash frame
    ({"app/outer.py": {5}}, {}, 1),                               # its caller, recursive: the deepest frame
    ({"app/outer.py": {45, 5}}, {}, 1),                           # two frames: the deeper one
    ({"app/outer.py": {45}}, {"app/inner.py": {12}}, 0),
    ({"app/outer.py": {45}}, {"app/helpers.py": {2}}, 0),         # a line off the stack: everything is judged
    ({"app/outer.py": {35}}, {}, 0),
])
def test_a_patch_lies_at_the_deepest_frame_whose_function_it_changes(
        old: dict[str, set[int]], new: dict[str, set[int]], depth: int) -> None:
    plan = ReplayPlan((), (), "ValueError", frames=_FRAMES)
    assert plan.patched_depth({**old, **new}) == depth


def test_a_nested_functions_line_belongs_to_the_nested_frame_not_to_the_one_around_it() -> None:
    plan = ReplayPlan((), (), "KeyError", frames=(FrameSpan(0, "a.py", 5, 8), FrameSpan(1, "a.py", 1, 20)))
    assert plan.patched_depth({"a.py": {6}}) == 0
    assert plan.patched_depth({"a.py": {15}}) == 1


def test_the_old_lines_a_diff_changes_count_removals_and_the_line_an_addition_follows() -> None:
    old = "".join(f"line{i}\n" for i in range(1, 11))
    changed = old.replace("line5\n", "LINE5\n").replace("line8\n", "line8\nadded\n")
    assert changed_old_lines(unified_diff("m.py", old, changed)) == {"m.py": {5, 8}}
    assert changed_old_lines(unified_diff("m.py", old, "first\n" + old)) == {"m.py": {1}}
