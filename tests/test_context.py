"""Context retrieval: frame paths mapped to repo files, lines to enclosing functions, ranked locations."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_fix import event, exc, frame, line_of, write_tree

from pipeline.context.mapping import RepoIndex, map_frame, map_path
from pipeline.context.retrieve import enclosing_function, function_spans, retrieve

SERVICE = '''"""Billing."""
import functools


def audit(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper


class Invoice:
    def __init__(self, lines):
        self.lines = lines

    @audit
    def total(self):
        return sum(line["amount"] for line in self.lines)

    class Line:
        def price(self):
            return self.amount * 2


def outer(values):
    def inner(v):
        return 1 / v
    return [inner(v) for v in values]


async def fetch(client):
    return await client.get("/x")


def handle(request):
    invoice = Invoice(request["lines"])
    return invoice.total()


RATE = 1 / 1
'''


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "repo", {
        "app/__init__.py": "",
        "app/billing/__init__.py": "",
        "app/billing/service.py": SERVICE,
        "app/utils.py": "def helper():\n    return 1\n",
        "lib/utils.py": "def helper():\n    return 2\n",
        "app/views.py": "def view():\n    return 1\n",
        ".venv/lib/site-packages/app/views.py": "def view():\n    return 3\n",
        "build/app/views.py": "def view():\n    return 4\n",
    })


@pytest.fixture
def index(repo: Path) -> RepoIndex:
    return RepoIndex.build(repo)


def test_index_holds_repo_python_files_and_skips_virtualenvs_and_build_output(index: RepoIndex) -> None:
    assert index.files == {"app/__init__.py", "app/billing/__init__.py", "app/billing/service.py",
                           "app/utils.py", "lib/utils.py", "app/views.py"}
    assert index.by_name["utils.py"] == ("app/utils.py", "lib/utils.py")


def test_configured_path_mapping_wins_over_suffix_match(repo: Path, index: RepoIndex) -> None:
    # By suffix alone /deploy/current/app/utils.py means app/utils.py; the mapping says lib/.
    mapped = map_path("/deploy/current/app/utils.py", index, {"/deploy/current/app": "lib"})
    assert mapped == "lib/utils.py"
    assert map_path("/deploy/current/app/utils.py", index) == "app/utils.py"


def test_longest_configured_prefix_is_tried_first(index: RepoIndex) -> None:
    mappings = {"/srv": "nowhere", "/srv/code": "lib"}
    assert map_path("/srv/code/utils.py", index, mappings) == "lib/utils.py"


def test_mapping_to_a_missing_file_falls_back_to_suffix_match(index: RepoIndex) -> None:
    assert map_path("/srv/app/views.py", index, {"/srv": "missing"}) == "app/views.py"


def test_longest_suffix_match_picks_the_deeper_file(index: RepoIndex) -> None:
    assert map_path("/usr/src/lib/utils.py", index) == "lib/utils.py"
    assert map_path("/opt/site/app/billing/service.py", index) == "app/billing/service.py"


def test_windows_separators_are_understood(index: RepoIndex) -> None:
    assert map_path("C:\\work\\lib\\utils.py", index) == "lib/utils.py"


def test_ambiguous_basename_maps_to_nothing(index: RepoIndex) -> None:
    assert map_path("utils.py", index) is None
    assert map_path("/elsewhere/utils.py", index) is None


def test_unique_basename_maps_even_from_a_foreign_folder(index: RepoIndex) -> None:
    assert map_path("/somewhere/else/views.py", index) == "app/views.py"


def test_file_that_is_not_in_the_repo_maps_to_nothing(index: RepoIndex) -> None:
    assert map_path("/usr/lib/python3.11/json/decoder.py", index) is None
    assert map_path("", index) is None


def test_module_name_resolves_an_ambiguous_filename(index: RepoIndex) -> None:
    f = frame("helper", "utils.py", 2, module="lib.utils")
    assert map_frame(f, index) == "lib/utils.py"


def test_module_name_resolves_a_package_init(index: RepoIndex) -> None:
    f = frame("<module>", "<frozen>", 1, module="app.billing")
    assert map_frame(f, index) == "app/billing/__init__.py"


def test_abs_path_is_tried_before_the_filename(index: RepoIndex) -> None:
    f = frame("helper", "utils.py", 2, abs_path="/srv/lib/utils.py", module="app.utils")
    assert map_frame(f, index) == "lib/utils.py"


def test_function_spans_name_methods_nested_functions_and_include_decorators() -> None:
    spans = {s.qualname: (s.start, s.end) for s in function_spans(SERVICE)}
    assert spans["Invoice.total"] == (line_of(SERVICE, "@audit"), line_of(SERVICE, "sum(line"))
    assert "audit.<locals>.wrapper" in spans
    assert spans["audit.<locals>.wrapper"][0] == line_of(SERVICE, "@functools.wraps")
    assert "outer.<locals>.inner" in spans
    assert "Invoice.Line.price" in spans
    assert "fetch" in spans


@pytest.mark.parametrize(("needle", "qualname"), [
    ("return 1 / v", "outer.<locals>.inner"),
    ("return [inner(v)", "outer"),
    ("sum(line", "Invoice.total"),
    ("@audit", "Invoice.total"),
    ("self.amount * 2", "Invoice.Line.price"),
    ("await client", "fetch"),
    ("return fn(*args", "audit.<locals>.wrapper"),
])
def test_enclosing_function_is_the_innermost_one(needle: str, qualname: str) -> None:
    span = enclosing_function(function_spans(SERVICE), line_of(SERVICE, needle))
    assert span is not None and span.qualname == qualname


def test_module_level_line_has_no_enclosing_function() -> None:
    assert enclosing_function(function_spans(SERVICE), line_of(SERVICE, "RATE =")) is None


def _frame(needle: str, function: str, *, lineno: int | None = None, context: str | None = None,
           path: str = "/srv/app/billing/service.py") -> object:
    line = line_of(SERVICE, needle)
    return frame(function, path, lineno if lineno is not None else line,
                 context_line=context if context is not None else SERVICE.splitlines()[line - 1])


def test_crash_site_comes_first_then_callers_outward(repo: Path) -> None:
    ev = event(exc("KeyError", "'amount'",
                   _frame("invoice.total()", "handle"),
                   _frame("return fn(*args", "wrapper"),
                   _frame("sum(line", "total")))
    ctx = retrieve(ev, repo)
    assert [(loc.function, loc.role) for loc in ctx.locations] == [
        ("Invoice.total", "crash"), ("audit.<locals>.wrapper", "caller"), ("handle", "caller")]
    crash = ctx.crash
    assert crash is not None
    assert crash.path == "app/billing/service.py"
    assert crash.line == line_of(SERVICE, "sum(line")
    assert (crash.start_line, crash.end_line) == (line_of(SERVICE, "@audit"), line_of(SERVICE, "sum(line"))
    assert crash.source.startswith("    @audit\n    def total(self):")
    assert ctx.unmatched_frames == ()


def test_library_frames_are_left_out_when_in_app_frames_exist(repo: Path) -> None:
    ev = event(exc("KeyError", "'amount'",
                   _frame("invoice.total()", "handle"),
                   frame("get", "/usr/lib/python3.11/json/decoder.py", 10, in_app=False)))
    ctx = retrieve(ev, repo)
    assert [loc.function for loc in ctx.locations] == ["handle"]
    assert ctx.unmatched_frames == ()


def test_drifted_line_is_found_through_its_context_line(repo: Path) -> None:
    real = line_of(SERVICE, "return 1 / v")
    ev = event(exc("ZeroDivisionError", "division by zero",
                   _frame("return 1 / v", "inner", lineno=real - 5)))
    crash = retrieve(ev, repo).crash
    assert crash is not None
    assert crash.line == real
    assert crash.function == "outer.<locals>.inner"


def test_context_line_too_far_from_the_reported_line_is_not_trusted(repo: Path) -> None:
    ev = event(exc("ZeroDivisionError", "division by zero",
                   _frame("return 1 / v", "inner", lineno=500, context="        return 1 / v")))
    assert retrieve(ev, repo).locations == ()


def test_line_beyond_the_end_of_a_drifted_file_is_dropped_not_a_crash(repo: Path) -> None:
    ev = event(exc("ZeroDivisionError", "division by zero",
                   _frame("return [inner(v)", "outer"),
                   frame("inner", "/srv/app/billing/service.py", 900)))
    ctx = retrieve(ev, repo)
    assert [(loc.function, loc.role) for loc in ctx.locations] == [("outer", "caller")]


def test_module_level_frame_keeps_its_reported_function_name(repo: Path) -> None:
    ev = event(exc("ZeroDivisionError", "division by zero", _frame("RATE =", "<module>")))
    crash = retrieve(ev, repo).crash
    assert crash is not None
    assert (crash.function, crash.source) == ("<module>", "RATE = 1 / 1")


def test_unmatched_in_app_frames_are_reported_and_the_first_mapped_one_is_only_a_caller(repo: Path) -> None:
    ev = event(exc("ValueError", "bad",
                   _frame("invoice.total()", "handle"),
                   frame("helper", "/srv/other/utils.py", 2),
                   frame("gone", "/srv/app/removed.py", 7)))
    ctx = retrieve(ev, repo)
    assert ctx.unmatched_frames == ("/srv/app/removed.py:7 in gone", "/srv/other/utils.py:2 in helper")
    assert [(loc.function, loc.role) for loc in ctx.locations] == [("handle", "caller")]


def test_recursive_frames_give_one_location(repo: Path) -> None:
    f = _frame("return 1 / v", "inner")
    ctx = retrieve(event(exc("ZeroDivisionError", "division by zero", f, f, f)), repo)
    assert len(ctx.locations) == 1


def test_frames_of_the_cause_follow_those_of_the_escaping_exception(repo: Path) -> None:
    cause = exc("ZeroDivisionError", "division by zero", _frame("return 1 / v", "inner"))
    escaping = exc("KeyError", "'amount'", _frame("sum(line", "total"))
    ctx = retrieve(event(cause, escaping), repo)
    assert [(loc.function, loc.role) for loc in ctx.locations] == [
        ("Invoice.total", "crash"), ("outer.<locals>.inner", "caller")]


def test_path_mappings_are_used_by_retrieve(repo: Path) -> None:
    ev = event(exc("ValueError", "x", frame("helper", "/deploy/code/utils.py", 2, context_line="return 2")))
    assert retrieve(ev, repo).unmatched_frames == ("/deploy/code/utils.py:2 in helper",)
    crash = retrieve(ev, repo, {"/deploy/code": "lib"}).crash
    assert crash is not None and (crash.path, crash.function) == ("lib/utils.py", "helper")
