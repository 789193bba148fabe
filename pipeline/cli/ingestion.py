"""Commands of ingestion: serve (the HTTP edge), inbox (accepted payloads), pull (the Sentry API)."""

from __future__ import annotations

from typing import Annotated

import structlog
import typer
from rich.table import Table

from pipeline.cli._app import JsonOpt, app, deps, out, print_json
from pipeline.records import InboxItem, InboxStatus

log = structlog.get_logger(__name__)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port; the log says which).")] = 8000,
) -> None:
    """Webhooks, the SDK's envelope endpoint, the review UI, the /v1 JSON API and /metrics."""
    from pipeline import logging_setup
    from pipeline.web.app import create_app
    from pipeline.web.server import bind, run

    logging_setup.configure(defaults=logging_setup.SERVICE_DEFAULTS)  # info, JSON lines (AUTOFIX_LOG_* win)
    d = deps()
    application = create_app(d.settings, deps=d)
    if not run(application, bind(host, port)):
        raise typer.Exit(3)  # the store (or the broker) could not be reached at start


def _item_row(item: InboxItem) -> dict[str, object]:
    return {"id": item.id, "kind": item.kind.value, "status": item.status.value, "project": item.project,
            "event_id": item.event_id, "received_at": item.received_at.isoformat(), "attempts": item.attempts,
            "outcome": item.outcome, "error": item.error,
            "body_bytes": len(item.body) if item.body is not None else None}


@app.command()
def inbox(
    failed: Annotated[bool, typer.Option("--failed", help="List the items that failed, with why.")] = False,
    retry: Annotated[int | None, typer.Option(metavar="ID", help="Process this failed item again now.")] = None,
    retry_all: Annotated[bool, typer.Option("--retry-all", help="Process every failed item again now.")] = False,
    limit: Annotated[int, typer.Option(help="Items listed at most.")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Accepted payloads: counts per status, the failed ones, and re-running them."""
    from pipeline.inbox import InboxContext, process_id

    d = deps()
    store = d.inbox_store
    if retry is not None or retry_all:
        if retry is not None and retry_all:
            raise typer.BadParameter("give --retry ID or --retry-all, not both")
        ids = store.retry_inbox(retry)
        if retry is not None and not ids:
            item = store.inbox_item(retry)
            why = "no such item" if item is None else f"it is {item.status.value}, not failed"
            raise typer.BadParameter(f"inbox item {retry} cannot be retried: {why}", param_hint="--retry")
        ctx = InboxContext(store=store, inbox=store, in_app_packages=tuple(d.settings.in_app_packages),
                           retention=d.settings.inbox_retention, sentry_api=lambda: d.sentry_api)
        results = [r for r in (process_id(ctx, i) for i in ids) if r is not None]
        if as_json:
            print_json([{"id": r.item_id, "status": r.status.value, "outcome": r.outcome, "error": r.error}
                        for r in results])
        else:
            for r in results:
                out().print(f"{r.item_id}  {r.status.value:<9}  {r.outcome or r.error}", markup=False)
        if any(r.status is InboxStatus.FAILED for r in results):
            raise typer.Exit(1)
        return
    items = store.inbox_items(InboxStatus.FAILED if failed else None, limit=limit)
    counts = store.inbox_counts()
    if as_json:
        print_json({"counts": counts, "items": [_item_row(i) for i in items]})
        return
    out().print("  ".join(f"{status}: {counts.get(status.value, 0)}" for status in InboxStatus))
    table = Table("id", "kind", "status", "received", "event", "outcome / error")
    for item in items:
        table.add_row(str(item.id), item.kind.value, item.status.value, item.received_at.strftime("%Y-%m-%d %H:%M:%S"),
                      (item.event_id or "")[:12], (item.error or item.outcome or "")[:90])
    out().print(table)


@app.command()
def pull(
    target: Annotated[str, typer.Argument(metavar="ORG/PROJECT", help="Sentry organization and project slugs "
                                           "(PROJECT alone uses AUTOFIX_SENTRY_ORG).")],
    query: Annotated[str, typer.Option(help="Sentry search query.")] = "is:unresolved",
    sort: Annotated[str, typer.Option(help="date, new, freq or user.")] = "date",
    limit: Annotated[int, typer.Option(help="Issues pulled at most.")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """Pull a project's issues (each one's recommended event) through the Sentry REST API."""
    from pipeline.adapters.sentry_api import SentryClient
    from pipeline.inbox import InboxContext
    from pipeline.pull import pull_project

    org, _, project = target.rpartition("/")
    if not project:
        raise typer.BadParameter("expected ORG/PROJECT", param_hint="ORG/PROJECT")
    d = deps()
    client = SentryClient.from_settings(d.settings, org or None)
    store = d.inbox_store
    ctx = InboxContext(store=store, inbox=store, in_app_packages=tuple(d.settings.in_app_packages),
                       retention=d.settings.inbox_retention, sentry_api=lambda: client)
    try:
        report = pull_project(client, ctx, project, query=query, sort=sort, limit=limit)
    finally:
        client.close()
    if as_json:
        print_json({"project": report.project, "issues": report.issues, "stored": report.stored,
                    "duplicates": report.duplicates, "failed": report.failed, "inbox_ids": report.inbox_ids})
    else:
        out().print(f"pulled {len(report.issues)} issue(s) of {org or d.settings.sentry_org}/{project}: "
                    f"stored {len(report.stored)} event(s), {len(report.duplicates)} duplicate(s), "
                    f"{len(report.failed)} failed", markup=False)
        for issue_id, why in report.failed.items():
            out().print(f"  {issue_id}: {why}", markup=False)
    if report.failed:
        raise typer.Exit(1)
