"""Ingest: parse, scrub, group and store events. Everything parses before anything is stored.

A file that fails to parse stores nothing of itself; a duplicate event id is dropped by the store.
The events of one call are stored in one transaction (`record`), so a batch costs one commit.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import structlog

from pipeline.grouping import group
from pipeline.ports import Store
from pipeline.records import ErrorEvent, Issue
from pipeline.scrub import scrub_event
from pipeline.sources import load_path
from pipeline.sources.in_app import mark_in_app

log = structlog.get_logger(__name__)


@dataclass
class IngestReport:
    stored: list[str] = field(default_factory=list)  # event ids
    duplicates: list[str] = field(default_factory=list)
    issues: set[str] = field(default_factory=set)  # fingerprints touched
    recorded: list[bool] = field(default_factory=list)  # per event, in order: stored (True) or a duplicate


def prepare(raw: ErrorEvent, in_app_packages: Collection[str] = ()) -> tuple[ErrorEvent, Issue]:
    """The event as it is stored (in-app marks, scrubbed, fingerprinted) and its new Issue."""
    event, issue = group(scrub_event(mark_in_app(raw, in_app_packages)))
    if event.sentry_issue_id is not None:
        issue = replace(issue, sentry_issue_id=event.sentry_issue_id)
    return event, issue


def record(store: Store, pairs: Sequence[tuple[ErrorEvent, Issue]]) -> IngestReport:
    """Store prepared events in one transaction; duplicates are dropped, and a duplicate that arrives
    through Sentry gives the stored event's issue Sentry's issue id."""
    report = IngestReport()
    report.recorded = store.record_events(pairs) if pairs else []
    for (event, issue), stored in zip(pairs, report.recorded, strict=True):
        if stored:
            report.stored.append(event.id)
            report.issues.add(issue.fingerprint)
            log.info("event.stored", event_id=event.id, fingerprint=issue.fingerprint)
        else:
            report.duplicates.append(event.id)
            if event.sentry_issue_id is not None:  # the same event, now through Sentry: link the issues
                store.link_sentry_issue(event.id, event.sentry_issue_id)
            log.info("event.duplicate_dropped", event_id=event.id)
    return report


def ingest_events(store: Store, events: Iterable[ErrorEvent], in_app_packages: Collection[str] = ()) -> IngestReport:
    return record(store, [prepare(raw, in_app_packages) for raw in events])


def parse_paths(paths: Sequence[Path]) -> list[ErrorEvent]:
    """All events of all files, or InvalidInput for the first bad file (then nothing is stored)."""
    return [event for path in paths for event in load_path(path)]


def ingest_paths(store: Store, paths: Sequence[Path], in_app_packages: Collection[str] = ()) -> IngestReport:
    return ingest_events(store, parse_paths(paths), in_app_packages)
