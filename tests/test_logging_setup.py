"""Logging: stderr only, warnings by default for the CLI, JSON and info for services, env and flags obeyed."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from pipeline import logging_setup


@pytest.fixture(autouse=True)
def _restore_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("AUTOFIX_LOG_LEVEL", raising=False)
    monkeypatch.delenv("AUTOFIX_LOG_FORMAT", raising=False)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


def emit() -> None:
    log = structlog.get_logger("test")
    log.info("thing.done", n=1)
    log.warning("thing.odd", n=2)
    logging.getLogger("somelib").info("library chatter")
    logging.getLogger("somelib").warning("library warning")


def test_the_cli_default_shows_warnings_only_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert logging_setup.configure() == (logging.WARNING, "console")
    emit()
    out, err = capsys.readouterr()
    assert out == ""
    assert "thing.odd" in err and "library warning" in err
    assert "thing.done" not in err and "library chatter" not in err


def test_services_default_to_json_lines_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    logging_setup.configure(defaults=logging_setup.SERVICE_DEFAULTS)
    emit()
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [
        ("thing.done", "info"), ("thing.odd", "warning"), ("library chatter", "info"), ("library warning", "warning")]
    assert lines[2]["logger"] == "somelib"


def test_the_environment_chooses_level_and_format(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUTOFIX_LOG_LEVEL", "error")
    monkeypatch.setenv("AUTOFIX_LOG_FORMAT", "json")
    assert logging_setup.configure() == (logging.ERROR, "json")
    emit()
    assert capsys.readouterr().err == ""


def test_flags_win_over_the_environment(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AUTOFIX_LOG_LEVEL", "error")
    logging_setup.configure(logging_setup.cli_level(verbose=1, quiet=False))
    emit()
    assert "thing.done" in capsys.readouterr().err


@pytest.mark.parametrize(("verbose", "quiet", "level"), [(0, False, None), (1, False, "info"), (2, False, "debug"),
                                                          (3, False, "debug"), (0, True, "error")])
def test_verbose_and_quiet_flags_map_to_levels(verbose: int, quiet: bool, level: str | None) -> None:
    assert logging_setup.cli_level(verbose, quiet) == level
