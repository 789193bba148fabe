"""A repo's tests: finding the command, reading which tests passed, comparing base and patch.

Test ids come from pytest's junit-xml file when there is one (autofix asks for it through
PYTEST_ADDOPTS, so any command that ends up running pytest writes it), else from the `-rA` summary
lines in the output. A patch passes when no test that passed on the base fails (or vanishes) after
it: a suite already red on the base blocks nothing, and a test the patch newly breaks rejects it.
Without test ids only the exit status can be compared, which says nothing when the base is red.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

PYTEST_COMMAND = "python -m pytest -q"

_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)\s+(\S+::\S+|\S+\.py)(?:\s+-\s+(.*))?$")


def discover_test_command(repo: Path) -> str | None:
    """The test command a repo's layout implies, or None when nothing says it has tests.

    pytest configuration, a tests/ or test/ folder, tox.ini or a noxfile: pytest, run with the env's
    python (tox and nox themselves would need the network). A Makefile `test` target: `make test`.
    """
    if _pytest_configured(repo) or any((repo / d).is_dir() for d in ("tests", "test")) or \
            (repo / "tox.ini").is_file() or (repo / "noxfile.py").is_file():
        return PYTEST_COMMAND
    makefile = repo / "Makefile"
    if makefile.is_file() and re.search(r"(?m)^test\s*:", makefile.read_text(encoding="utf-8", errors="replace")):
        return "make test"
    return None


def _pytest_configured(repo: Path) -> bool:
    if (repo / "pytest.ini").is_file() or (repo / "conftest.py").is_file():
        return True
    pyproject = repo / "pyproject.toml"
    if pyproject.is_file():
        try:
            tool = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("tool", {})
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            tool = {}
        if isinstance(tool, Mapping) and "pytest" in tool:
            return True
    for name, section in (("setup.cfg", "tool:pytest"), ("tox.ini", "pytest")):
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read(repo / name, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        if parser.has_section(section):
            return True
    return False


@dataclass(frozen=True)
class CaseOutcome:
    status: str  # passed | failed | skipped
    message: str = ""


@dataclass(frozen=True)
class SuiteReport:
    """What one run of a test command said, test by test when it said so."""

    exit_code: int
    timed_out: bool
    tests: Mapping[str, CaseOutcome]  # by test id; empty when the run reported none

    @property
    def passed(self) -> frozenset[str]:
        return frozenset(k for k, v in self.tests.items() if v.status == "passed")

    @property
    def failed(self) -> frozenset[str]:
        return frozenset(k for k, v in self.tests.items() if v.status == "failed")

    @property
    def green(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def read_report(exit_code: int, timed_out: bool, output: str, junit: Path | None) -> SuiteReport:
    tests = parse_junit(junit.read_text(encoding="utf-8", errors="replace")) if junit and junit.is_file() else {}
    return SuiteReport(exit_code, timed_out, tests or parse_summary(output))


def parse_junit(xml: str) -> dict[str, CaseOutcome]:
    """Test id -> outcome from a junit-xml document (pytest's, any family)."""
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return {}
    out: dict[str, CaseOutcome] = {}
    for case in root.iter("testcase"):
        name = case.get("name", "")
        classname = case.get("classname", "")
        test_id = f"{classname}::{name}" if classname else name
        bad = case.find("failure") if case.find("failure") is not None else case.find("error")
        if bad is not None:
            text = (bad.text or "").strip().splitlines()
            message = bad.get("message") or (text[-1] if text else "")
            # A teardown error after a pass is still a failure of that test.
            out[test_id] = CaseOutcome("failed", message[:300])
        elif case.find("skipped") is not None:
            out.setdefault(test_id, CaseOutcome("skipped"))
        else:
            out.setdefault(test_id, CaseOutcome("passed"))
    return out


def parse_summary(output: str) -> dict[str, CaseOutcome]:
    """Test id -> outcome from pytest's `-rA` short summary lines."""
    out: dict[str, CaseOutcome] = {}
    for line in output.splitlines():
        match = _SUMMARY.match(line.strip())
        if not match:
            continue
        word, test_id, message = match.group(1), match.group(2), match.group(3) or ""
        status = {"PASSED": "passed", "XPASS": "passed", "XFAIL": "skipped", "SKIPPED": "skipped"}.get(word, "failed")
        if status == "failed" or test_id not in out:
            out[test_id] = CaseOutcome(status, message[:300])
    return out


@dataclass(frozen=True)
class SuiteVerdict:
    ok: bool | None  # None: the runs cannot tell (no test ids and a red base, or no passing test on it)
    newly_failing: tuple[str, ...]
    note: str


def compare(before: SuiteReport, after: SuiteReport) -> SuiteVerdict:
    if after.timed_out:
        return SuiteVerdict(False, (), "the tests ran over their time limit after the patch")
    if before.tests and after.tests:
        if not before.passed:
            return SuiteVerdict(None, (), "tests not run: no test passes on the base, so none can show a regression")
        newly = tuple(sorted(before.passed - after.passed))
        red = len(before.failed)
        base = f" ({red} already failing on the base)" if red else ""
        if newly:
            shown = ", ".join(newly[:3]) + (f" and {len(newly) - 3} more" if len(newly) > 3 else "")
            return SuiteVerdict(False, newly, f"the patch breaks {len(newly)} test(s) that passed on the base: {shown}")
        return SuiteVerdict(True, (), f"{len(before.passed)} tests passed on the base and still pass{base}")
    if before.green:
        if after.green:
            return SuiteVerdict(True, (), "the test command passes before and after")
        return SuiteVerdict(False, (), "the test command passes on the base and fails after the patch")
    return SuiteVerdict(None, (), "tests not run: the test command fails on the base and reports no test ids")
