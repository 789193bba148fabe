"""Ingest: mark, scrub, group and store events. Everything parses before anything is stored.

A file that fails to parse stores nothing of itself; a duplicate event id is dropped by the store.
Before grouping, log frames are marked in-app by the configured rules (pipeline/sources/in_app.py),
frames that came without their source line get the one remembered for their place
(pipeline/source_lines.py; the stored event keeps what it carried) and message events are named
by the mined templates (pipeline/log_templates.py), so that `autofix ingest`, the follower and the
workers give one event one fingerprint. The events of one call are stored BATCH to a transaction
(`record`), so a log's thousands of tracebacks cost a few commits.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from pipeline.grouping import group
from pipeline.log_templates import Templates
from pipeline.ports import Store
from pipeline.records import ErrorEvent, Issue
from pipeline.scrub import scrub_event
from pipeline.source_lines import SourceLines
from pipeline.sources import load_path
from pipeline.sources.in_app import InAppRules

log = structlog.get_logger(__name__)

BATCH = 200  # events stored per transaction: a log's thousands of tracebacks are not a commit each


@dataclass
class IngestReport:
    stored: list[str] = field(default_factory=list)  # event ids
    duplicates: list[str] = field(default_factory=list)
    issues: set[str] = field(default_factory=set)  # fingerprints touched
    fingerprints: set[str] = field(default_factory=set)  # every event's issue, duplicates' included
    recorded: list[bool] = field(default_factory=list)  # per event, in order: stored (True) or a duplicate

    def extend(self, other: IngestReport) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.issues |= other.issues
        self.fingerprints |= other.fingerprints
        self.recorded += other.recorded


def ingest_events(
    store: Store,
    events: Iterable[ErrorEvent],
    in_app: InAppRules | Collection[str] = (),
    templates: Templates | None = None,
    lines: SourceLines | None = None,
) -> IngestReport:
    """Prepare and store every event, BATCH of them per transaction."""
    rules = in_app if isinstance(in_app, InAppRules) else InAppRules.of(in_app)
    report = IngestReport()
    with ExitStack() as stack:
        if templates is not None:
            stack.enter_context(templates.session())
        if lines is not None:
            stack.enter_context(lines.session())
        batch: list[tuple[ErrorEvent, Issue]] = []
        for raw in events:
            batch.append(prepare(raw, rules, templates, lines))
            if len(batch) >= BATCH:
                report.extend(record(store, batch))
                batch = []
        report.extend(record(store, batch))
    if report.recorded:
        log.info("events.ingested", events=len(report.recorded), stored=len(report.stored))
    return report


def record(store: Store, pairs: Sequence[tuple[ErrorEvent, Issue]]) -> IngestReport:
    """Store prepared events in one transaction; duplicates are dropped, and a duplicate that arrives
    through Sentry gives the stored event's issue Sentry's issue id."""
    report = IngestReport()
    report.recorded = store.record_events(pairs) if pairs else []
    for (event, issue), stored in zip(pairs, report.recorded, strict=True):
        report.fingerprints.add(issue.fingerprint)
        if stored:
            report.stored.append(event.id)
            report.issues.add(issue.fingerprint)
            log.debug("event.stored", event_id=event.id, fingerprint=issue.fingerprint)
        else:
            report.duplicates.append(event.id)
            if event.sentry_issue_id is not None:  # the same event, now through Sentry: link the issues
                store.link_sentry_issue(event.id, event.sentry_issue_id)
            log.info("event.duplicate_dropped", event_id=event.id)
    return report


def prepare(
    raw: ErrorEvent, in_app: InAppRules | Collection[str] = (), templates: Templates | None = None,
    lines: SourceLines | None = None,
) -> tuple[ErrorEvent, Issue]:
    """The event as it is stored (marked, scrubbed, fingerprinted) and a new Issue for it."""
    rules = in_app if isinstance(in_app, InAppRules) else InAppRules.of(in_app)
    event = scrub_event(rules.mark(raw))
    if lines is None:
        event, issue = group(event, templates)
    else:
        lines.learn(event)
        _, issue = group(lines.fill(event), templates)
        event = replace(event, fingerprint=issue.fingerprint)
    if event.sentry_issue_id is not None:
        issue = replace(issue, sentry_issue_id=event.sentry_issue_id)
    return event, issue


def parse_paths(paths: Sequence[Path]) -> list[ErrorEvent]:
    """All events of all files, or InvalidInput for the first bad file (then nothing is stored)."""
    return [event for path in paths for event in load_path(path)]


def ingest_paths(
    store: Store,
    paths: Sequence[Path],
    in_app: InAppRules | Collection[str] = (),
    templates: Templates | None = None,
    lines: SourceLines | None = None,
) -> IngestReport:
    return ingest_events(store, parse_paths(paths), in_app, templates, lines)
