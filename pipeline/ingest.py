"""Ingest: mark, scrub, group and store events. Everything parses before anything is stored.

A file that fails to parse stores nothing of itself; a duplicate event id is dropped by the store.
Before grouping, log frames are marked in-app by the configured rules (pipeline/sources/in_app.py),
frames that came without their source line get the one remembered for their place
(pipeline/source_lines.py; the stored event keeps what it carried) and message events are named
by the mined templates (pipeline/log_templates.py), so that `autofix ingest`, the follower and the
workers give one event one fingerprint.
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


def ingest_events(
    store: Store,
    events: Iterable[ErrorEvent],
    in_app: InAppRules | Collection[str] = (),
    templates: Templates | None = None,
    lines: SourceLines | None = None,
) -> IngestReport:
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
                _record(store, batch, report)
        _record(store, batch, report)
    return report


def _record(store: Store, batch: list[tuple[ErrorEvent, Issue]], report: IngestReport) -> None:
    for (event, issue), stored in zip(batch, store.record_events(batch), strict=True):
        report.fingerprints.add(issue.fingerprint)
        if stored:
            report.stored.append(event.id)
            report.issues.add(issue.fingerprint)
            log.debug("event.stored", event_id=event.id, fingerprint=issue.fingerprint)
        else:
            report.duplicates.append(event.id)
            log.info("event.duplicate_dropped", event_id=event.id)
    if batch:
        log.info("events.ingested", events=len(batch), stored=len(report.stored))
    batch.clear()


def prepare(
    raw: ErrorEvent, rules: InAppRules, templates: Templates | None = None, lines: SourceLines | None = None
) -> tuple[ErrorEvent, Issue]:
    """The event as it is stored (marked, scrubbed, fingerprinted) and a new Issue for it."""
    event = scrub_event(rules.mark(raw))
    if lines is None:
        return group(event, templates)
    lines.learn(event)
    _, issue = group(lines.fill(event), templates)
    return replace(event, fingerprint=issue.fingerprint), issue


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
