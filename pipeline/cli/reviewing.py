"""Commands for reviewers who live in the terminal, and the review UI's accounts.

`autofix show ID` (error, diff, evidence, runs), `autofix diff ID` (the patch alone, pipeable to
`git apply`), `autofix retry ID --hint TEXT`, `autofix reviewer add NAME`, `autofix token create NAME`.
An id prefix is accepted wherever an id is; an ambiguous one exits 2 naming the matches.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli._app import JsonOpt, app, deps, out, plain, print_json, say
from pipeline.errors import InvalidInput

reviewer_app = typer.Typer(no_args_is_help=True, help="Reviewer accounts of the review UI.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens for the JSON API (/v1/).")
app.add_typer(reviewer_app, name="reviewer")
app.add_typer(token_app, name="token")

IdArg = Annotated[str, typer.Argument(metavar="ID", help="A candidate id, or a prefix naming one.")]


@app.command()
def show(candidate_id: IdArg, as_json: JsonOpt = False) -> None:
    """A candidate's error, diff, evidence and verification runs."""
    from pipeline import candidate_view
    from pipeline.render import candidate_json, issue_json
    from pipeline.review import resolve_candidate_id

    d = deps()
    full = resolve_candidate_id(d.accounts, candidate_id)
    candidate = d.store.get_candidate(full)
    assert candidate is not None  # resolved from the store just now
    view = candidate_view.build(d.store, d.accounts, d.settings, candidate)
    if as_json:
        print_json({"candidate": candidate_json(view.candidate),
                    "issue": issue_json(view.issue) if view.issue else None,
                    "event": candidate_view.event_json(view.event), "root_cause": view.root_cause,
                    "sentry_url": view.sentry_url,
                    "others": [{"id": o.candidate.id, "status": o.candidate.status.value, "why": o.why}
                               for o in view.others],
                    "pull_request": view.pull_request.url if view.pull_request else None,
                    "audit": [{"at": a.at.isoformat(), "actor": a.actor, "action": a.action, "via": a.via,
                               "client": a.client, "detail": a.detail} for a in view.audit]})
        return
    c, issue = view.candidate, view.issue
    say(f"candidate {c.id}  {c.status.value}  {c.strategy}  confidence {c.confidence:.2f}")
    if issue is not None:
        say(f"error: {issue.title}  ({issue.count} events, {issue.fix_class}, "
            f"first {issue.first_seen:%Y-%m-%d %H:%M}, last {issue.last_seen:%Y-%m-%d %H:%M})")
    if view.event is not None:
        say(f"environment {view.event.environment or '-'}  release {view.event.release or '-'}")
    if view.sentry_url:
        say(f"sentry: {view.sentry_url}")
    say(f"root cause: {view.root_cause}")
    for fv in view.frames:
        mark = "*" if fv.localised else " "
        say(f" {mark} {fv.frame.filename}:{fv.frame.lineno} in {fv.frame.function}")
    say("")
    out().print(c.patch.diff, markup=False, highlight=False, end="" if c.patch.diff.endswith("\n") else "\n")
    parts = ", ".join(f"{k} {v:.2f}" for k, v in sorted(c.confidence_parts.items()))
    say(f"confidence parts: {parts}")
    table = Table("kind", "command", "exit", "seconds", "output (tail)")
    for run in view.runs:
        table.add_row(*plain(run.kind, run.command, str(run.exit_code), f"{run.duration_s:.2f}",
                             run.output_tail[-300:]))
    out().print(table)
    if view.pull_request:
        say(f"pull request: {view.pull_request.url}")
    for a in view.audit:
        say(f"{a.at:%Y-%m-%d %H:%M:%S} {a.actor} {a.action} via {a.via} from {a.client or '-'}: {a.detail}")


@app.command()
def diff(candidate_id: IdArg) -> None:
    """A candidate's patch, alone on stdout: `autofix diff ID | git apply`."""
    from pipeline.review import resolve_candidate_id

    d = deps()
    candidate = d.store.get_candidate(resolve_candidate_id(d.accounts, candidate_id))
    assert candidate is not None
    text = candidate.patch.diff
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


@app.command()
def retry(
    candidate_id: IdArg,
    hint: Annotated[str, typer.Option(metavar="TEXT", help="What the next attempt should do differently.")],
    reviewer: Annotated[str, typer.Option(metavar="NAME", help="Who asks.")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Set a candidate aside; the hint goes into the issue's next attempt (`autofix triage`)."""
    from pipeline.review import Actor, decide_retry, host_user, resolve_candidate_id

    d = deps()
    full = resolve_candidate_id(d.accounts, candidate_id)
    record = decide_retry(d.store, d.accounts, full, Actor(reviewer, "cli", host_user()), hint)
    if as_json:
        print_json({"candidate_id": full, "status": "retried", "issue": record.issue_fingerprint,
                    "hint": record.text})
        return
    say(f"set aside {full}: the next attempt on its issue gets the hint")


@reviewer_app.command("add")
def reviewer_add(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
) -> None:
    """Add a reviewer (or set a new password): the password comes from a prompt or stdin."""
    from pipeline.accounts import MIN_PASSWORD, Reviewer, hash_password

    if not name.strip() or len(name) > 255:
        raise InvalidInput("NAME", "a reviewer needs a name of 1 to 255 characters")
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise InvalidInput("password", f"at least {MIN_PASSWORD} characters")
    deps().accounts.save_reviewer(Reviewer(name.strip(), hash_password(password)))
    say(f"reviewer {name.strip()} can log in")


@token_app.command("create")
def token_create(name: Annotated[str, typer.Argument(metavar="NAME", help="Whom or what it is for.")],
                 as_json: JsonOpt = False) -> None:
    """Make an API token; it is printed once and stored only hashed."""
    from pipeline.accounts import new_token

    token, record = new_token(name)
    deps().accounts.save_token(record)
    if as_json:
        print_json({"name": name, "id": record.id, "token": token})
        return
    say(token)
