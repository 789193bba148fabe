"""The Typer app every command module registers on, and what those modules share.

Consoles and Settings are built on first use, never at import (a Console built at import time reads
the terminal of whatever process merely imports the CLI); `reset()` forgets them, for tests.
Exit codes are the contract of DESIGN.md: see EXIT_CODES, which is also the app's --help epilog.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from pipeline import logging_setup
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.wiring import Deps

OK, FAILED, USAGE, ENVIRONMENT = 0, 1, 2, 3
EXIT_CODES = (
    "Exit codes: 0 success (fix: verified); 1 ran but did not succeed (fix: unverified or no_fix; "
    "failed checks); 2 usage or input error (bad path, bad file, bad configuration); "
    "3 environment missing (no sandbox backend, store unreachable)."
)

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="Turn production errors into reviewed fixes.", epilog=EXIT_CODES)

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output: stdout holds only JSON.")]


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("autofix-pipeline")
        except PackageNotFoundError:  # run from a checkout that was never installed
            number = "unknown"
        sys.stdout.write(f"autofix {number}\n")
        raise typer.Exit()


@app.callback()
def _main(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, show_default=False,
                                         help="More logs on stderr: -v info, -vv debug.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors on stderr.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Turn production errors into reviewed fixes."""
    logging_setup.configure(logging_setup.cli_level(verbose, quiet))


@cache
def out() -> Console:
    """Human output: stdout, wide enough that tables stay legible when piped."""
    return Console(width=max(Console().width, 132))


@cache
def err() -> Console:
    """Errors and progress: stderr."""
    return Console(stderr=True)


@cache
def settings() -> Settings:
    """This command's Settings, read once."""
    return Settings()


@cache
def deps() -> Deps:
    from pipeline.wiring import (
        Deps,  # the adapters' imports (libcst, sqlalchemy) only when a command needs them
    )

    return Deps(settings())


def reset() -> None:
    out.cache_clear()
    err.cache_clear()
    settings.cache_clear()
    deps.cache_clear()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def progress() -> Progress:
    """A progress display on stderr; it draws only on a terminal and leaves nothing behind."""
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=err(), transient=True, disable=not err().is_terminal)


@contextmanager
def status(text: str) -> Iterator[None]:
    """A spinner on stderr while something slow runs (on a terminal only)."""
    if not err().is_terminal:
        yield
        return
    with err().status(text):
        yield


def plain(*cells: str) -> list[Text]:
    """Table cells shown as they are: event text is data, never rich markup."""
    return [Text(cell) for cell in cells]


def say(text: str) -> None:
    """A line of human output, printed as it is (no markup, no highlighting)."""
    out().print(text, markup=False, highlight=False)


def hint(text: str) -> None:
    """What to run next, after an empty listing."""
    out().print(text, markup=False, highlight=False)
