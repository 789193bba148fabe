"""The `autofix` command line. Commands and their --json output are a contract (DESIGN.md).

Argument parsing ends here: stages receive typed records and Settings, never the CLI's options.
Each module registers its commands on the one Typer app (`_app.app`); importing them here is what
puts them on it.
"""

from __future__ import annotations

from pipeline import logging_setup
from pipeline.cli import events, fixing, ingestion, review, runtime, sandbox  # noqa: F401  (registers commands)
from pipeline.cli._app import app, err
from pipeline.errors import AutofixError

__all__ = ["app", "main"]


def main() -> None:
    logging_setup.configure()
    try:
        app(standalone_mode=True)
    except AutofixError as exc:
        err().print(f"autofix: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
