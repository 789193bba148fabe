"""Reproductions from events: rebuilt arguments, importable module names, and a test that really runs."""

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

from pipeline.records import CodeContext, Location
from pipeline.repro import MARKER, NotRebuildable, ReproAttempt, module_name, rebuild, synthesize


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


def _attempt(repo: Path, rel: str, function: str, crash: str, vars: dict[str, Any], *,
             module: str | None = None, exc_type: str = "ZeroDivisionError") -> ReproAttempt:
    source = (repo / rel).read_text()
    line = line_of(source, crash)
    f = frame(function.rsplit(".", 1)[-1], "/srv/" + rel, line, module=module, vars=vars)
    ctx = CodeContext(str(repo), (Location(rel, function, line),))
    return synthesize(event(exc(exc_type, "boom", f), event_id="evt-42"), ctx)


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
    assert r.exception_type == "ZeroDivisionError"


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
    assert "cannot be rebuilt" in attempt.reason


def test_method_refuses_but_a_static_method_is_called_through_its_class(repo: Path) -> None:
    method = _attempt(repo, "shop/pricing.py", "Cart.total", "self.items[0]", {"self": "<Cart>"},
                      exc_type="IndexError")
    assert method.reproduction is None
    assert "is a method" in method.reason
    static = _attempt(repo, "shop/pricing.py", "Cart.share", "amount / people",
                      {"amount": "3", "people": "0"})
    assert static.reproduction is not None
    assert static.reproduction.qualname == "Cart.share"


def test_nested_function_and_module_code_refuse(repo: Path) -> None:
    nested = _attempt(repo, "shop/pricing.py", "outer.<locals>.inner", "1 / x", {"x": "0"})
    assert nested.reproduction is None and "cannot be called from outside" in nested.reason


def test_crash_location_that_is_only_a_caller_refuses(repo: Path) -> None:
    ctx = CodeContext(str(repo), (Location("shop/pricing.py", "greet", 9, role="caller"),))
    attempt = synthesize(event(exc("ValueError", "x", frame("greet", "x.py", 9))), ctx)
    assert attempt.reproduction is None


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
    assert _run_pytest(repo, r.path, r.source).count(MARKER) >= 1


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
    r = attempt.reproduction
    assert r is not None, attempt.reason
    ast.parse(r.source)
    assert "evt-42" in r.source

    before = _run_pytest(repo, r.path, r.source)
    assert before.startswith("exit=1")
    assert f"{MARKER} ZeroDivisionError: division by zero" in before

    fixed = PRICING.replace("    return round(total / count", "    if not count:\n        return 0, currency\n"
                            "    return round(total / count")
    (repo / "shop/pricing.py").write_text(fixed)
    after = _run_pytest(repo, r.path, r.source)
    assert after.startswith("exit=0"), after
    assert MARKER not in after


def test_reproduction_failing_some_other_way_carries_no_marker(repo: Path) -> None:
    attempt = _attempt(repo, "src/app/core.py", "greet", "greeting +", {"name": "None"},
                       module="app.core", exc_type="AttributeError")
    r = attempt.reproduction
    assert r is not None
    assert MARKER in _run_pytest(repo, r.path, r.source)
    (repo / "src/app/core.py").write_text(PRICING.replace("return greeting", "raise KeyError('x')\n    return greeting"))
    other = _run_pytest(repo, r.path, r.source)
    assert other.startswith("exit=1")
    assert "KeyError" in other and MARKER not in other


def test_a_crash_in_a_method_is_reproduced_through_its_module_level_caller(tmp_path: Path) -> None:
    from datetime import datetime

    from pipeline.context.retrieve import retrieve
    from pipeline.records import ErrorEvent, ExceptionInfo, Frame
    from pipeline.repro import synthesize

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
    attempt = synthesize(event, retrieve(event, tmp_path))
    assert attempt.reproduction is not None, attempt.reason
    assert attempt.reproduction.qualname == "replace_all"
    assert attempt.reproduction.via == "caller"
    assert attempt.reproduction.kwargs == {"text": "abc", "table": {}}
