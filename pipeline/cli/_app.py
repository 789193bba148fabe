"""The Typer app every command module registers on, and what those modules share.

Consoles are built on first use, never at import (a Console built at import time reads the terminal
of whatever process merely imports the CLI); `reset()` forgets them, for tests.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import Annotated, Any

import typer
from rich.console import Console

from pipeline.settings import Settings
from pipeline.wiring import Deps

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Turn production errors into reviewed fixes.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output: stdout holds only JSON.")]


@cache
def out() -> Console:
    """Human output: stdout, wide enough that tables stay legible when piped."""
    return Console(width=max(Console().width, 132))


@cache
def err() -> Console:
    """Errors and progress: stderr."""
    return Console(stderr=True)


def reset() -> None:
    out.cache_clear()
    err.cache_clear()


def deps() -> Deps:
    return Deps(Settings())


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
