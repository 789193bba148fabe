"""The `autofix` command line. Commands and their --json output are a contract (DESIGN.md).

Argument parsing ends here: stages receive typed records and Settings, never the CLI's options.
Each module registers its commands on the one Typer app (`_app.app`); importing them here is what
puts them on it. Errors from the error tree end the process with one line on stderr and the exit
code of their class (see `exit_code`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pipeline.cli import (  # noqa: F401  (registers commands)
    config,
    events,
    fixing,
    grouping,
    ingestion,
    review,
    reviewing,
    runtime,
    sandbox,
    stats,
)
from pipeline.cli._app import ENVIRONMENT, FAILED, USAGE, app, err
from pipeline.errors import AutofixError, SandboxEscape, SandboxUnavailable, TransientError

__all__ = ["app", "exit_code", "main"]


def exit_code(exc: AutofixError) -> int:
    """3 when something the environment must provide is missing, 1 for a failed check, else 2."""
    # The sandbox backend, the store or the model endpoint is missing or unreachable.
    if isinstance(exc, (TransientError, SandboxUnavailable)):
        return ENVIRONMENT
    if isinstance(exc, SandboxEscape):
        return FAILED
    return USAGE  # bad input, bad configuration, unsupported event


def main() -> None:
    try:
        app(prog_name="autofix", standalone_mode=True)
    except AutofixError as exc:
        one_line = " ".join(str(exc).split())  # a driver's message can span lines; a log reader wants one
        err().print(f"autofix: error: {one_line}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(exit_code(exc)) from None
