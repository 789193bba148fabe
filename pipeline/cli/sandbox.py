"""`autofix sandbox ...`: the sandbox backends' escape suite and the docker backend's image."""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli._app import JsonOpt, app, out, print_json
from pipeline.settings import Settings

sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox backends: escape suite, docker image.")
app.add_typer(sandbox_app, name="sandbox")


class Backend(StrEnum):
    auto = "auto"
    docker = "docker"
    bwrap = "bwrap"
    local = "local"


class ImageBackend(StrEnum):
    docker = "docker"


@sandbox_app.command("check")
def sandbox_check(
    backend: Annotated[Backend | None, typer.Option(help="Backend to test (default: AUTOFIX_SANDBOX).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the escape suite on a backend; exit 1 if any attack got through (or could not be tried)."""
    from pipeline.wiring import docker_config
    from sandbox.check import self_check
    from sandbox.config import make_sandbox

    settings = Settings()
    sandbox = make_sandbox(backend.value if backend else settings.sandbox, docker=docker_config(settings))
    started = time.monotonic()
    results = self_check(sandbox, state_dir=settings.home.resolve())
    seconds = round(time.monotonic() - started, 1)
    failed = [r for r in results if not r.passed]
    if as_json:
        print_json({"backend": sandbox.name, "passed": not failed, "seconds": seconds,
                    "checks": [r.__dict__ for r in results]})
    else:
        table = Table("check", "result", "how", "detail", title=f"escape suite on {sandbox.name}")
        for r in results:
            table.add_row(r.name, "ok" if r.passed else "[bold red]FAIL[/]", r.how, r.detail)
        out().print(table)
        out().print(f"{len(results) - len(failed)}/{len(results)} contained in {seconds}s")
    if failed:
        raise typer.Exit(1)


@sandbox_app.command("image")
def sandbox_image(
    backend: Annotated[ImageBackend, typer.Option(help="Backend whose image to build.")] = ImageBackend.docker,
    recipe: Annotated[Path | None, typer.Option(help="Recipe folder (default: deploy/sandbox/).")] = None,
    rebuild: Annotated[bool, typer.Option(help="Build even when the recipe's image exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Find the sandbox image by its recipe's hash, or build it (debootstrap, then import)."""
    from pipeline.wiring import docker_config
    from sandbox.docker import connect
    from sandbox.image import ensure_image, load_recipe

    config = docker_config(Settings())
    client, engine = connect(config)
    ref = ensure_image(client, load_recipe(recipe or config.recipe), rebuild=rebuild)
    if as_json:
        print_json({"backend": backend.value, "engine": engine, **ref.__dict__})
    else:
        verb = f"built in {ref.seconds}s" if ref.built else "found"
        out().print(f"{ref.tag} ({ref.id[:19]}) {verb} on {engine}")
