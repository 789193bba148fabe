"""structlog configuration: human-readable on a terminal, JSON lines otherwise; always to stderr.

stdout belongs to command output (tables, --json), so logs never go there.
"""

from __future__ import annotations

import logging
import sys

import structlog


def configure(level: int = logging.INFO, json_logs: bool | None = None) -> None:
    as_json = (not sys.stderr.isatty()) if json_logs is None else json_logs
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
