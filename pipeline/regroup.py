"""Regroup: recompute every stored event's fingerprint and cluster with today's rules (a new
FINGERPRINT_VERSION, other in-app packages or path mappings) and move the store over to them.

Nothing is lost: every event stays, under its new issue. Issues merge (several old issues' events
now share one fingerprint) and split (one old issue's events now have several). Each old issue has
an heir, the new issue that received most of its events; the heir takes the old issue's candidates
(and so their reviews and pull requests) and the furthest status any of its predecessors reached,
so a log traceback judged unfixable on its own and the Sentry event of the same crash with a fix
awaiting review become one issue awaiting review. A new issue that is nobody's heir starts as new.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

import structlog

from pipeline.grouping import TemplateNamer, group
from pipeline.ports import RegroupPlan, Store
from pipeline.records import ErrorEvent, Issue, IssueStatus
from pipeline.source_lines import SourceLines
from pipeline.sources.in_app import InAppRules

log = structlog.get_logger(__name__)

# How far along an issue is; a merged issue keeps the furthest of its predecessors.
PROGRESS = (
    IssueStatus.NEW, IssueStatus.TRIAGED, IssueStatus.UNFIXABLE, IssueStatus.REJECTED, IssueStatus.FIXING,
    IssueStatus.AWAITING_REVIEW, IssueStatus.APPROVED, IssueStatus.PR_OPEN, IssueStatus.CLOSED,
    IssueStatus.MERGED,
)


@dataclass(frozen=True)
class RegroupReport:
    events: int
    moved: int  # events whose fingerprint changed
    issues_before: int
    issues_after: int
    merged: dict[str, list[str]] = field(default_factory=dict)  # new fingerprint -> old ones it joins
    split: dict[str, list[str]] = field(default_factory=dict)  # old fingerprint -> new ones
    candidates_moved: int = 0


@dataclass
class _NewIssue:
    latest: tuple[datetime, str, Issue]  # (seen, event id, the issue grouping made of that event)
    first_seen: datetime
    count: int = 0


def plan(store: Store, rules: InAppRules, templates: TemplateNamer | None = None,
         lines: SourceLines | None = None, page: int = 500) -> tuple[RegroupPlan, RegroupReport]:
    """What regrouping would change, computed without writing anything."""
    if lines is not None:  # learn from every event first, so the order events came in does not matter
        for batch in _pages(store, page):
            for stored in batch:
                lines.learn(rules.mark(stored))
    new_issues: dict[str, _NewIssue] = {}
    shares: defaultdict[str, Counter[str]] = defaultdict(Counter)  # old fp -> new fp -> events
    changed: list[ErrorEvent] = []
    total = moved = 0
    for batch in _pages(store, page):
        for stored in batch:
            total += 1
            marked = rules.mark(stored)
            _, issue = group(lines.fill(marked) if lines is not None else marked, templates)
            event = replace(marked, fingerprint=issue.fingerprint)
            _count(new_issues, event, issue)
            shares[stored.fingerprint or ""][issue.fingerprint] += 1
            moved += issue.fingerprint != stored.fingerprint
            if event.fingerprint != stored.fingerprint or event.exceptions != stored.exceptions:
                changed.append(event)
    old_issues = {issue.fingerprint: issue for issue in store.list_issues()}
    heirs = {old: _heir(old, counts) for old, counts in shares.items()}
    issues = tuple(_issue(fp, new, [old_issues[o] for o, h in heirs.items() if h == fp and o in old_issues])
                   for fp, new in sorted(new_issues.items()))
    moves = {c.id: heirs[c.issue_fingerprint] for c in store.list_candidates()
             if heirs.get(c.issue_fingerprint, c.issue_fingerprint) != c.issue_fingerprint}
    removed = tuple(sorted(fp for fp in shares if fp in old_issues and fp not in new_issues))
    eventless = [fp for fp in old_issues if fp not in shares and fp not in new_issues]
    report = RegroupReport(
        events=total, moved=moved, issues_before=len(old_issues), issues_after=len(new_issues) + len(eventless),
        merged={fp: sorted(o for o, h in heirs.items() if h == fp) for fp in new_issues
                if sum(1 for h in heirs.values() if h == fp) > 1},
        split={old: sorted(counts) for old, counts in shares.items() if len(counts) > 1},
        candidates_moved=len(moves),
    )
    return RegroupPlan(issues, tuple(changed), moves, removed), report


def regroup(store: Store, rules: InAppRules, templates: TemplateNamer | None = None,
            lines: SourceLines | None = None, dry_run: bool = False) -> RegroupReport:
    """Regroup the store (or, with `dry_run`, only say what would change)."""
    regroup_plan, report = plan(store, rules, templates, lines)
    if not dry_run:
        store.apply_regroup(regroup_plan)
    log.info("store.regrouped" if not dry_run else "store.regroup_planned", events=report.events,
             moved=report.moved, issues_before=report.issues_before, issues_after=report.issues_after)
    return report


def _pages(store: Store, page: int) -> Iterator[list[ErrorEvent]]:
    after: str | None = None
    while batch := store.list_events(after=after, limit=page):
        yield batch
        after = batch[-1].id


def _count(new_issues: dict[str, _NewIssue], event: ErrorEvent, issue: Issue) -> None:
    seen = event.timestamp or event.received_at
    entry = new_issues.get(issue.fingerprint)
    if entry is None:
        new_issues[issue.fingerprint] = _NewIssue((seen, event.id, issue), seen, 1)
        return
    entry.count += 1
    entry.first_seen = min(entry.first_seen, seen)
    if (seen, event.id) > entry.latest[:2]:
        entry.latest = (seen, event.id, issue)


def _heir(old: str, counts: Counter[str]) -> str:
    """The new issue that received most of the old one's events; on a tie, the same fingerprint."""
    return max(counts, key=lambda new: (counts[new], new == old, new))


def _issue(fingerprint: str, new: _NewIssue, predecessors: list[Issue]) -> Issue:
    seen, event_id, grouped = new.latest
    issue = replace(grouped, count=new.count, first_seen=new.first_seen, last_seen=seen, latest_event_id=event_id)
    if not predecessors:
        return issue
    furthest = max(predecessors, key=lambda i: (PROGRESS.index(i.status) if i.status in PROGRESS else 0, i.count))
    return replace(issue, status=furthest.status, priority=furthest.priority,
                   repo=furthest.repo or next((p.repo for p in predecessors if p.repo), None))
