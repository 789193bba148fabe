"""The attempts half of SqlStore: claims on issues, their budgets, their ends (records.Attempt).

A mixin of SqlStore, which provides the sessions. `claim_attempt` is the only way an attempt
starts. In one write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-level advisory
lock, so that the budget counts and the insert are one step for every process) it reaps attempts
whose lease ran out, checks the issue's backoff and the budgets (running attempts, attempts of the
issue, today's tokens and cost), moves the issue from new or triaged to fixing with
`UPDATE ... WHERE status IN ('new', 'triaged')`, and inserts a running attempt, which the partial
unique index admits once per issue. `finish_attempt` ends only a running attempt and moves the issue
only out of `fixing`: each is one column-level UPDATE, never a whole row from a stale copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from pipeline.adapters.sql_models import AttemptRow, IssueRow, as_utc
from pipeline.records import (
    ATTEMPT_SKIPPED,
    Attempt,
    AttemptStatus,
    Budgets,
    ClaimRefused,
    Cost,
    IssueStatus,
    utcnow,
)

_CLAIM_LOCK_KEY = 0x6175746F66697801  # any fixed number, distinct from the migration lock's
_CLAIMABLE = (IssueStatus.NEW.value, IssueStatus.TRIAGED.value)
_RUNNING = AttemptStatus.RUNNING.value


def attempt_from_row(row: AttemptRow) -> Attempt:
    return Attempt(
        id=row.id, issue_fingerprint=row.issue_fingerprint, started_at=as_utc(row.started_at),
        status=AttemptStatus(row.status), task_id=row.task_id,
        finished_at=as_utc(row.finished_at) if row.finished_at else None, outcome=row.outcome, error=row.error,
        cost=Cost(tokens=row.tokens, seconds=row.seconds, usd=row.usd), sandbox_runs=row.sandbox_runs,
        retry_after=as_utc(row.retry_after) if row.retry_after else None,
    )


def start_of_day(now: datetime) -> datetime:
    return as_utc(now).replace(hour=0, minute=0, second=0, microsecond=0)


class SqlAttempts:
    """Claims and attempts on the store's database; SqlStore supplies what is declared here."""

    @property
    def dialect(self) -> str:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _reading(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    # --- claims --------------------------------------------------------------------------------

    def claim_attempt(self, fingerprint: str, budgets: Budgets, *, task_id: str | None = None,
                      repo: str | None = None, now: datetime | None = None) -> Attempt | ClaimRefused:
        """Start an attempt of the issue, or say why not (see the module docstring).

        A task redelivered after its worker died carries the same task id: it takes over the attempt
        it started, rather than being refused by its own ghost.
        """
        now = as_utc(now or utcnow())
        try:
            with self._writing() as session:
                return self._claim(session, fingerprint, budgets, task_id, repo, now)
        except IntegrityError:
            # Only reachable without the lock serialising claims (a foreign writer): the index held.
            return ClaimRefused("another attempt of this issue is running")

    def _claim(self, session: Session, fingerprint: str, budgets: Budgets, task_id: str | None,
               repo: str | None, now: datetime) -> Attempt | ClaimRefused:
        if self.dialect == "postgresql":
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CLAIM_LOCK_KEY})
        self._reap(session, now - timedelta(seconds=budgets.lease_s), now)
        issue = session.get(IssueRow, fingerprint)
        if issue is None:
            return ClaimRefused("no such issue")
        mine = select(AttemptRow).where(AttemptRow.issue_fingerprint == fingerprint, AttemptRow.status == _RUNNING)
        running = session.scalars(mine).one_or_none()
        if running is not None:
            if task_id is not None and running.task_id == task_id:
                return attempt_from_row(running)  # this task's own attempt, cut off by a dead worker
            return ClaimRefused("another attempt of this issue is running")
        if issue.status not in _CLAIMABLE:
            return ClaimRefused(f"issue is {issue.status}")
        backoff = session.scalar(select(func.max(AttemptRow.retry_after))
                                 .where(AttemptRow.issue_fingerprint == fingerprint))
        if backoff is not None and as_utc(backoff) > now:
            return ClaimRefused(f"backing off until {as_utc(backoff).isoformat(timespec='seconds')}")
        tried = session.scalar(select(func.count()).select_from(AttemptRow).where(
            AttemptRow.issue_fingerprint == fingerprint, AttemptRow.outcome.is_distinct_from(ATTEMPT_SKIPPED))) or 0
        if tried >= budgets.max_per_issue:
            return ClaimRefused(f"attempted {tried} time(s), the most per issue")
        busy = session.scalar(select(func.count()).select_from(AttemptRow).where(AttemptRow.status == _RUNNING)) or 0
        if busy >= budgets.max_concurrent:
            return ClaimRefused(f"{busy} attempt(s) running, the most at once", budget=True)
        tokens, usd = self._spent(session, start_of_day(now))
        if budgets.daily_tokens is not None and tokens >= budgets.daily_tokens:
            return ClaimRefused(f"today's token budget is spent ({tokens} of {budgets.daily_tokens})", budget=True)
        if budgets.daily_usd is not None and usd >= budgets.daily_usd:
            return ClaimRefused(f"today's cost budget is spent (${usd:.2f} of ${budgets.daily_usd:.2f})",
                                budget=True)
        claimed = session.execute(
            update(IssueRow)
            .where(IssueRow.fingerprint == fingerprint, IssueRow.status.in_(_CLAIMABLE))
            .values(status=IssueStatus.FIXING.value, repo=func.coalesce(IssueRow.repo, repo))
            .returning(IssueRow.fingerprint)
        ).first()
        if claimed is None:
            return ClaimRefused("the issue moved on")
        row = AttemptRow(id=uuid.uuid4().hex, issue_fingerprint=fingerprint, status=_RUNNING, task_id=task_id,
                         started_at=now, tokens=0, usd=0.0, seconds=0.0, sandbox_runs=0)
        session.add(row)
        session.flush()
        return attempt_from_row(row)

    @staticmethod
    def _spent(session: Session, since: datetime) -> tuple[int, float]:
        tokens, usd = session.execute(
            select(func.coalesce(func.sum(AttemptRow.tokens), 0), func.coalesce(func.sum(AttemptRow.usd), 0.0))
            .where(AttemptRow.started_at >= since)
        ).one()
        return int(tokens), float(usd)

    @staticmethod
    def _reap(session: Session, started_before: datetime, now: datetime) -> list[str]:
        lost = session.execute(
            update(AttemptRow)
            .where(AttemptRow.status == _RUNNING, AttemptRow.started_at < started_before)
            .values(status=AttemptStatus.LOST.value, finished_at=now, outcome="lost",
                    error="its worker vanished: the attempt's lease ran out")
            .returning(AttemptRow.issue_fingerprint)
        ).scalars().all()
        if lost:
            session.execute(update(IssueRow).where(IssueRow.fingerprint.in_(lost),
                                                   IssueRow.status == IssueStatus.FIXING.value)
                            .values(status=IssueStatus.TRIAGED.value))
        return sorted(lost)

    def reap_attempts(self, lease_s: float, now: datetime | None = None) -> list[str]:
        """Mark running attempts older than the lease lost and return their issues to triaged."""
        now = as_utc(now or utcnow())
        with self._writing() as session:
            return self._reap(session, now - timedelta(seconds=lease_s), now)

    def finish_attempt(self, attempt_id: str, status: AttemptStatus, issue_status: IssueStatus, *,
                       outcome: str | None = None, error: str | None = None, cost: Cost | None = None,
                       sandbox_runs: int = 0, retry_after: datetime | None = None) -> bool:
        """End a running attempt and move its issue out of `fixing`; False when it was not running
        any more (reaped as lost meanwhile): then nothing changes."""
        cost = cost or Cost()
        values: dict[str, Any] = dict(
            status=AttemptStatus(status).value, finished_at=utcnow(), outcome=outcome, error=error,
            tokens=cost.tokens, usd=cost.usd, seconds=cost.seconds, sandbox_runs=sandbox_runs,
            retry_after=as_utc(retry_after) if retry_after else None)
        with self._writing() as session:
            fingerprint = session.execute(
                update(AttemptRow).where(AttemptRow.id == attempt_id, AttemptRow.status == _RUNNING)
                .values(values).returning(AttemptRow.issue_fingerprint)
            ).scalar_one_or_none()
            if fingerprint is None:
                return False
            session.execute(update(IssueRow).where(IssueRow.fingerprint == fingerprint,
                                                   IssueRow.status == IssueStatus.FIXING.value)
                            .values(status=IssueStatus(issue_status).value))
            return True

    # --- reading -------------------------------------------------------------------------------

    def get_attempt(self, attempt_id: str) -> Attempt | None:
        with self._reading() as session:
            row = session.get(AttemptRow, attempt_id)
            return attempt_from_row(row) if row is not None else None

    def list_attempts(self, issue_fingerprint: str | None = None, status: AttemptStatus | None = None,
                      since: datetime | None = None) -> list[Attempt]:
        """Attempts, oldest first."""
        query = select(AttemptRow).order_by(AttemptRow.started_at, AttemptRow.id)
        if issue_fingerprint is not None:
            query = query.where(AttemptRow.issue_fingerprint == issue_fingerprint)
        if status is not None:
            query = query.where(AttemptRow.status == AttemptStatus(status).value)
        if since is not None:
            query = query.where(AttemptRow.started_at >= as_utc(since))
        with self._reading() as session:
            return [attempt_from_row(row) for row in session.scalars(query)]

    def backing_off(self, now: datetime | None = None) -> set[str]:
        """Issues whose last failed or deferred attempt asks to wait past `now`."""
        now = as_utc(now or utcnow())
        query = select(AttemptRow.issue_fingerprint).where(AttemptRow.retry_after > now).distinct()
        with self._reading() as session:
            return set(session.scalars(query))

    def attempt_totals(self) -> Iterator[tuple[str, str, int, float, int]]:
        """(status, outcome, attempts, seconds, sandbox runs) summed per status and outcome (metrics)."""
        query = (select(AttemptRow.status, func.coalesce(AttemptRow.outcome, ""), func.count(),
                        func.coalesce(func.sum(AttemptRow.seconds), 0.0),
                        func.coalesce(func.sum(AttemptRow.sandbox_runs), 0))
                 .group_by(AttemptRow.status, AttemptRow.outcome))
        with self._reading() as session:
            rows = session.execute(query).all()
        for status, outcome, n, seconds, runs in rows:
            yield str(status), str(outcome), int(n), float(seconds), int(runs)

    def attempt_spend(self) -> tuple[int, float]:
        """Tokens and cost recorded on every attempt (metrics)."""
        with self._reading() as session:
            return self._spent(session, datetime(1970, 1, 1, tzinfo=UTC))

    def attempt_seconds(self, limit: int = 10_000) -> list[float]:
        """Durations of the latest finished attempts (metrics: fix latency)."""
        query = (select(AttemptRow.seconds).where(AttemptRow.status != _RUNNING)
                 .order_by(AttemptRow.started_at.desc()).limit(limit))
        with self._reading() as session:
            return [float(s) for s in session.scalars(query)]
