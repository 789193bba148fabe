"""`autofix init` (write autofix.toml for this checkout) and `autofix config check` (validate and show it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from pipeline.cli import _checks
from pipeline.cli._app import FAILED, JsonOpt, app, print_json, say, settings
from pipeline.config_file import CONFIG_NAME, masked
from pipeline.errors import InvalidInput

config_app = typer.Typer(no_args_is_help=True, help="The configuration file: autofix.toml.")
app.add_typer(config_app, name="config")


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        return [pair for k, v in value.items() for pair in _flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [pair for i, v in enumerate(value) for pair in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, value)]


def _checks_of_repos() -> list[Check]:
    results = []
    for repo in settings().repos:
        if repo.path is None:
            results.append(Check(f"repo {repo.name}", repo.remote_url is not None,
                                 "no local checkout: only publishing to remote_url" if repo.remote_url
                                 else "neither path nor remote_url is set"))
            continue
        top = _checks.git_toplevel(repo.path)
        if top != repo.path.resolve():
            detail = "not a git checkout" if top is None else f"inside the git checkout {top}, not its top folder"
            results.append(Check(f"repo {repo.name}", False, f"{repo.path}: {detail}"))
        else:
            results.append(Check(f"repo {repo.name}", True, f"{repo.path} is a git checkout"))
        if not repo.test_command:
            results.append(Check(f"repo {repo.name} tests", True,
                                 "no test_command: candidates are verified by their reproduction only"))
    return results


@config_app.command("check")
def config_check(as_json: JsonOpt = False) -> None:
    """Validate autofix.toml and the AUTOFIX_* variables; print the effective settings, secrets masked.

    Exits 2 when the configuration is invalid, 1 when a repo it names is not a usable checkout.
    """
    s = settings()
    effective = masked(s)
    checks = _checks_of_repos()
    facts = {"config_file": str(s.config_file) if s.config_file else None, "home": str(s.home.resolve()),
             "store_url": masked(s.resolved_store_url)}
    if as_json:
        print_json({**facts, "settings": effective, "checks": [c.__dict__ for c in checks]})
    else:
        say(f"config file   {facts['config_file'] or 'none (defaults and AUTOFIX_* variables only)'}")
        say(f"state folder  {facts['home']}")
        say(f"store         {facts['store_url']}")
        say("\neffective settings:")
        for key, value in _flatten(effective):
            say(f"  {key} = {'(unset)' if value is None else repr(value) if isinstance(value, str) else value}")
        if checks:
            say("")
        for c in checks:
            say(f"{'ok  ' if c.passed else 'FAIL'} {c.name}: {c.detail}")
    if not all(c.passed for c in checks):
        raise typer.Exit(FAILED)


@app.command()
def init(
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing autofix.toml.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Write a commented autofix.toml for the git checkout this runs in, and say what to do next."""
    from pipeline import scaffold

    top = _checks.git_toplevel(Path.cwd())
    if top is None:
        raise InvalidInput(str(Path.cwd()), "not inside a git checkout: run `autofix init` in the repo to fix")
    target = top / CONFIG_NAME
    if target.exists() and not force:
        raise InvalidInput(str(target), "already exists (pass --force to overwrite it)")
    guess = scaffold.guess(top)
    target.write_text(scaffold.render(guess), encoding="utf-8")
    excluded = scaffold.exclude_state_folder(top)
    if as_json:
        print_json({"path": str(target), "repo": asdict(guess), "state_folder_excluded": excluded})
        return
    say(f"wrote {target}")
    say(f"  repo {guess.name!r}, branch {guess.default_branch!r}, tests: {guess.test_command or 'none found'}, "
        f"app packages: {', '.join(guess.in_app_packages) or 'none found'}")
    if excluded:
        say("  .autofix/ (the state folder) added to .git/info/exclude")
    say("\nnext:\n"
        "  autofix config check            validate the file and see the effective settings\n"
        "  autofix sandbox check           make sure patches can run isolated on this host\n"
        "  autofix ingest EVENTS... LOGS   store error events: Sentry JSON, envelopes, webhook payloads, log files\n"
        "  autofix triage                  attempt fixes for the stored issues, then `autofix queue`")
