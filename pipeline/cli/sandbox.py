"""`autofix sandbox ...`: the sandbox backends."""

from __future__ import annotations

import typer

from pipeline.cli._app import JsonOpt, app, deps, out, print_json

sandbox_app = typer.Typer(no_args_is_help=True, help="Sandbox backends.")
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("check")
def sandbox_check(as_json: JsonOpt = False) -> None:
    """Isolation self-test of the configured backend."""
    from sandbox.check import self_check

    d = deps()
    results = self_check(d.sandbox)
    if as_json:
        print_json({"backend": d.sandbox.name, "checks": [r.__dict__ for r in results]})
    else:
        for r in results:
            out().print(f"{'ok  ' if r.passed else 'FAIL'} {r.name}: {r.detail}", markup=False, highlight=False)
    if not all(r.passed for r in results):
        raise typer.Exit(1)
