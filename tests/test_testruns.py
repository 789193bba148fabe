"""Reading test results (junit-xml, `-rA`), comparing base and patch, finding a test command; static checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers_fix import write_tree

from pipeline.static_checks import problems
from pipeline.testruns import (
    PYTEST_COMMAND,
    CaseOutcome,
    SuiteReport,
    compare,
    discover_test_command,
    parse_junit,
    parse_summary,
)

JUNIT = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest" errors="1" failures="1">
<testcase classname="tests.test_a" name="test_ok" time="0.001" />
<testcase classname="tests.test_a" name="test_bad" time="0.001"><failure message="assert 1 == 2">trace</failure></testcase>
<testcase classname="tests.test_a" name="test_skip" time="0.001"><skipped message="later" /></testcase>
<testcase classname="" name="tests.test_broken" time="0.001"><error message="collection failure">ImportError</error></testcase>
</testsuite></testsuites>"""

SUMMARY = """..F
=========================== short test summary info ============================
PASSED tests/test_a.py::test_ok
FAILED tests/test_a.py::test_bad - assert 1 == 2
SKIPPED [1] tests/test_a.py:9: later
ERROR tests/test_broken.py - ImportError: no module named x
XFAIL tests/test_a.py::test_known - reason
1 failed, 1 passed in 0.01s
"""


def test_junit_xml_gives_each_test_id_its_outcome() -> None:
    tests = parse_junit(JUNIT)
    assert tests == {
        "tests.test_a::test_ok": CaseOutcome("passed"),
        "tests.test_a::test_bad": CaseOutcome("failed", "assert 1 == 2"),
        "tests.test_a::test_skip": CaseOutcome("skipped"),
        "tests.test_broken": CaseOutcome("failed", "collection failure"),
    }
    assert parse_junit("<not xml") == {}


def test_the_ra_summary_gives_the_same_when_there_is_no_junit_file() -> None:
    tests = parse_summary(SUMMARY)
    assert tests["tests/test_a.py::test_ok"].status == "passed"
    assert tests["tests/test_a.py::test_bad"] == CaseOutcome("failed", "assert 1 == 2")
    assert tests["tests/test_broken.py"].status == "failed"
    assert tests["tests/test_a.py::test_known"].status == "skipped"


def report(exit_code: int, **tests: str) -> SuiteReport:
    return SuiteReport(exit_code, False, {name: CaseOutcome(status) for name, status in tests.items()})


def test_a_red_base_blocks_nothing_and_a_newly_failing_or_vanished_test_rejects() -> None:
    base = report(1, a="passed", b="failed", c="passed")
    same = compare(base, report(1, a="passed", b="failed", c="passed"))
    assert same.ok is True and same.newly_failing == ()
    assert same.note == "2 tests passed on the base and still pass (1 already failing on the base)"
    broke = compare(base, report(1, a="failed", b="failed", c="passed"))
    assert broke.ok is False and broke.newly_failing == ("a",)
    vanished = compare(base, report(1, b="failed", c="passed", **{"mod": "failed"}))
    assert vanished.ok is False and vanished.newly_failing == ("a",)
    fixed_b = compare(base, report(0, a="passed", b="passed", c="passed"))
    assert fixed_b.ok is True


def test_without_test_ids_only_a_green_base_can_judge_and_a_base_with_no_pass_says_nothing() -> None:
    assert compare(report(0), report(0)).ok is True
    assert compare(report(0), report(1)).ok is False
    unknown = compare(report(1), report(1))
    assert unknown.ok is None and unknown.note.startswith("tests not run")
    nothing_passes = compare(report(1, a="failed"), report(1, a="failed"))
    assert nothing_passes.ok is None
    timed_out = compare(report(0, a="passed"), SuiteReport(124, True, {}))
    assert timed_out.ok is False


@pytest.mark.parametrize(("files", "command"), [
    ({"tests/test_x.py": ""}, PYTEST_COMMAND),
    ({"test/test_x.py": ""}, PYTEST_COMMAND),
    ({"pytest.ini": "[pytest]\n"}, PYTEST_COMMAND),
    ({"pyproject.toml": "[tool.pytest.ini_options]\naddopts = '-q'\n"}, PYTEST_COMMAND),
    ({"setup.cfg": "[tool:pytest]\ntestpaths = t\n"}, PYTEST_COMMAND),
    ({"tox.ini": "[tox]\nenvlist = py311\n"}, PYTEST_COMMAND),
    ({"noxfile.py": ""}, PYTEST_COMMAND),
    ({"Makefile": "build:\n\ttrue\ntest: build\n\t./run-tests\n"}, "make test"),
    ({"Makefile": "build:\n\ttrue\n", "pyproject.toml": "[project]\nname = 'x'\n", "setup.cfg": "[metadata]\n"}, None),
])
def test_the_test_command_is_discovered_from_the_layout(tmp_path: Path, files: dict[str, str], command: str | None) -> None:
    assert discover_test_command(write_tree(tmp_path, files)) == command


# --- static checks -------------------------------------------------------------------------------


def test_a_patched_file_that_no_longer_compiles_is_a_problem_unless_it_never_did() -> None:
    good, bad = b"def f(x):\n    return x\n", b"def f(x):\n    return x +\n"
    assert problems({"a.py": good}, {"a.py": bad}) == ("a.py no longer compiles: invalid syntax (line 2)",)
    assert problems({"a.py": bad}, {"a.py": bad + b"\n"}) == ()
    assert problems({"a.txt": good}, {"a.txt": bad}) == ()  # not Python


def test_only_undefined_names_the_patch_adds_are_problems() -> None:
    before = b"def f(x):\n    return helper(x)\n"
    after_same = b"def f(x):\n    if x is None:\n        return 0\n    return helper(x)\n"
    after_new = b"def f(x):\n    if x is None:\n        return DEFAULT\n    return helper(x)\n"
    assert problems({"a.py": before}, {"a.py": after_same}) == ()
    assert problems({"a.py": before}, {"a.py": after_new}) == ("a.py: the patch adds an undefined name 'DEFAULT'",)
    assert problems({"new.py": None}, {"new.py": b"x = y\n"}) == ("new.py: the patch adds an undefined name 'y'",)
    assert problems({"gone.py": before}, {"gone.py": None}) == ()


def test_static_checks_read_the_declared_encoding() -> None:
    latin = "# -*- coding: latin-1 -*-\nNAME = 'caf\xe9'\n".encode("latin-1")
    assert problems({"a.py": latin}, {"a.py": latin + b"OTHER = NAME\n"}) == ()
    broken = b"NAME = '\xff'\n"
    assert problems({"a.py": latin}, {"a.py": broken})[0].startswith("a.py no longer compiles:")
