"""Commands for reviewers: queue, approve, reject (id prefixes accepted; every decision audited)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pipeline.cli._app import JsonOpt, app, deps, hint, out, plain, print_json, say
from pipeline.render import candidate_json


@app.command()
def queue(
    repo: Annotated[str | None, typer.Option(metavar="NAME", help="Only this repo's candidates.")] = None,
    fix_class: Annotated[str | None, typer.Option(metavar="CLASS", help="Only this fix class.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Candidates awaiting review, by the issue's priority then confidence (as the review UI's queue)."""
    from pipeline.candidate_view import queue as ordered

    store = deps().store
    candidates = [row.candidate for row in ordered(store, repo=repo, fix_class=fix_class)]
    if as_json:
        print_json([candidate_json(c) for c in candidates])
        return
    if not candidates:
        hint("nothing awaiting review: `autofix triage` attempts fixes for the stored issues")
        return
    table = Table("id", "issue", "strategy", "confidence", "files", "description")
    for c in candidates:
        table.add_row(*plain(c.id, c.issue_fingerprint[:12], c.strategy, f"{c.confidence:.2f}",
                             ", ".join(c.patch.files), c.patch.description[:70]))
    out().print(table)


@app.command()
def approve(
    candidate_id: Annotated[str, typer.Argument(metavar="ID")],
    reviewer: Annotated[str, typer.Option(metavar="NAME", help="Who approves.")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Approve a candidate: opens its pull request on the code host."""
    from pipeline.review import Actor, decide_approve, host_user, resolve_candidate_id

    d = deps()
    candidate_id = resolve_candidate_id(d.accounts, candidate_id)
    pr = decide_approve(d.store, d.accounts, d.code_host, d.settings, candidate_id,
                        Actor(reviewer, "cli", host_user()))
    if as_json:
        print_json({"candidate_id": candidate_id, "status": "approved", "repo": pr.repo, "branch": pr.branch,
                    "url": pr.url, "commit_sha": pr.commit_sha, "state": pr.state, "number": pr.number})
        return
    say(f"approved {candidate_id}: {pr.url} ({pr.commit_sha[:10]})")


@app.command()
def reject(
    candidate_id: Annotated[str, typer.Argument(metavar="ID")],
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why: reasons feed the gates.")],
    reviewer: Annotated[str, typer.Option(metavar="NAME", help="Who rejects.")] = "cli",
    as_json: JsonOpt = False,
) -> None:
    """Reject a candidate, with a reason."""
    from pipeline.review import Actor, decide_reject, host_user, require_reason, resolve_candidate_id

    require_reason(reason)  # before the id: the reason is what the gates learn from
    d = deps()
    candidate_id = resolve_candidate_id(d.accounts, candidate_id)
    decide_reject(d.store, d.accounts, candidate_id, Actor(reviewer, "cli", host_user()), reason)
    if as_json:
        print_json({"candidate_id": candidate_id, "status": "rejected", "reason": reason, "reviewer": reviewer})
        return
    say(f"rejected {candidate_id}")
