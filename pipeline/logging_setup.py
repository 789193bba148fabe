"""structlog configuration: always to stderr, at a level and in a format chosen once per process.

stdout belongs to command output (tables, --json), so logs never go there. The level and format
come from, in order: the caller (the CLI's -v/-q), AUTOFIX_LOG_LEVEL / AUTOFIX_LOG_FORMAT, then the
process's defaults: the CLI logs warnings and up for a person (console); worker, beat and serve log
info and up as JSON lines for a collector. Records of the standard library's logging (alembic,
celery's libraries, httpx) go through the same renderer at the same level, except in Celery
processes, whose own logging setup owns the root logger.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal

import structlog

from pipeline.settings import LogSettings

Format = Literal["console", "json"]
CLI_DEFAULTS: tuple[str, Format] = ("warning", "console")
SERVICE_DEFAULTS: tuple[str, Format] = ("info", "json")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
           "critical": logging.CRITICAL}


def cli_level(verbose: int, quiet: bool) -> str | None:
    """The level the CLI's flags ask for: -v info, -vv debug, -q errors only; None without flags."""
    if quiet:
        return "error"
    return {0: None, 1: "info"}.get(verbose, "debug")


def configure(level: str | None = None, fmt: Format | None = None, *, defaults: tuple[str, Format] = CLI_DEFAULTS,
              stdlib: bool = True) -> tuple[int, Format]:
    """Set up structlog (and, with `stdlib`, the root logger) once; returns the level and format used."""
    env = LogSettings()
    chosen_level = _LEVELS[(level or env.level or defaults[0]).lower()]
    chosen_format: Format = fmt or env.format or defaults[1]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if chosen_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(chosen_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    if stdlib:
        _route_stdlib(chosen_level, shared, renderer)
    return chosen_level, chosen_format


def _route_stdlib(level: int, shared: list[structlog.typing.Processor], renderer: structlog.typing.Processor) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
