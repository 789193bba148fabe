"""SqlStore: the Store port (pipeline/ports.py) on SQLAlchemy, for a SQLite file or PostgreSQL.

The schema comes from the Alembic migrations, run on first use (sql_engine.migrate); tables are in
sql_models, record <-> row conversions in sql_convert. Each method is one transaction. Database errors
that a retry can cure (unreachable server, locked file) become StoreUnavailable here, once.

Duplicate events are caught by the events primary key, not by looking first: two processes storing
the same event id at once both try, one insert wins, the other rolls back its whole transaction.

The inbox methods (the Inbox port) live in sql_inbox.py, a mixin of SqlStore. `record_events` stores
many events in one transaction, for the inbox stage and file ingestion.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, selectinload

from pipeline.adapters.sql_accounts import SqlAccounts
from pipeline.adapters.sql_attempts import SqlAttempts
from pipeline.adapters.sql_convert import (
    candidate_from_row,
    event_from_row,
    event_insert_values,
    event_row,
    event_values,
    fill_candidate_row,
    hint_from_row,
    hint_values,
    issue_from_row,
    issue_values,
    log_cursor_from_row,
    log_cursor_values,
    pull_request_from_row,
    pull_request_values,
    review_from_row,
    review_values,
)
from pipeline.adapters.sql_engine import make_engine, migrate, writer
from pipeline.adapters.sql_inbox import SqlInbox
from pipeline.adapters.sql_models import (
    Base,
    CandidateRow,
    EventRow,
    HintRow,
    IssueRow,
    LogCursorRow,
    PullRequestRow,
    ReviewRow,
)
from pipeline.errors import InvalidInput, StoreUnavailable
from pipeline.ports import Outcome, OutcomeKind, RegroupPlan
from pipeline.records import (
    CandidateStatus,
    ErrorEvent,
    FixCandidate,
    Hint,
    Issue,
    IssueStatus,
    LogCursor,
    PullRequest,
    Review,
)

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = structlog.get_logger(__name__)

_Insert = sqlite.Insert | postgresql.Insert


class SqlStore(SqlInbox, SqlAttempts, SqlAccounts):
    """The Store port on a SQLite file or a PostgreSQL database, migrated to head on first use."""

    def __init__(self, url: str, *, sqlite_synchronous: str | None = None) -> None:
        """`sqlite_synchronous="NORMAL"` skips SQLite's fsync per commit on this store's connections.
        Safe for work that is redone when lost, such as processing inbox rows: WAL frames reach the
        disk in commit order, so a power cut can lose only a tail of such commits, never an inbox row
        committed (FULL) after them, and the lost rows are still pending."""
        self._url = url
        self._sqlite_synchronous = sqlite_synchronous
        self._engine: Engine = make_engine(url, sqlite_synchronous=sqlite_synchronous)
        self._local = threading.local()  # SQLite: each thread's own driver connection for the inbox
        self._raw_connections: list[sqlite3.Connection] = []
        self._writer: Engine = writer(self._engine)
        self._migrated = False
        self._migrate_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, *, sqlite_synchronous: str | None = None) -> SqlStore:
        """The store the settings name (AUTOFIX_STORE_URL, else SQLite in AUTOFIX_HOME)."""
        settings.home.mkdir(parents=True, exist_ok=True)
        return cls(settings.resolved_store_url, sqlite_synchronous=sqlite_synchronous)

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def migrate(self) -> None:
        """Run `alembic upgrade head` now (otherwise it runs before the first read or write)."""
        with self._migrate_lock:
            if self._migrated:
                return
            with _translated_errors():
                migrate(self._url)
            self._migrated = True

    def close(self) -> None:
        """Close the pooled connections; the store reconnects if used again."""
        self._engine.dispose()
        with self._migrate_lock:
            raw, self._raw_connections = self._raw_connections, []
        for connection in raw:
            connection.close()
        self._local = threading.local()

    # --- events and issues -----------------------------------------------------------------------

    def record_event(self, event: ErrorEvent, issue: Issue) -> bool:
        if event.fingerprint != issue.fingerprint:
            raise InvalidInput(
                f"event {event.id}",
                f"fingerprint {event.fingerprint!r} differs from its issue's {issue.fingerprint!r}",
            )
        try:
            with self._writing() as session:
                session.execute(self._issue_counted(event, issue))
                session.add(event_row(event, issue.fingerprint))
                session.flush()
        except IntegrityError:
            if self.get_event(event.id) is None:
                raise  # some other constraint failed: a bug, not a duplicate
            log.info("event.duplicate_dropped", event_id=event.id, fingerprint=issue.fingerprint)
            return False
        log.debug("event.recorded", event_id=event.id, fingerprint=issue.fingerprint)
        return True

    def _issue_counted(self, event: ErrorEvent, issue: Issue, events: int = 1) -> _Insert:
        """INSERT the issue as given, or count `events` events (the last being `event`) against the
        stored one, keeping its status."""
        values = issue_values(issue)
        values["latest_event_id"] = issue.latest_event_id or event.id
        stmt = self._insert(IssueRow).values(values)
        new = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=[IssueRow.fingerprint],
            set_={
                "count": IssueRow.count + events,
                "first_seen": case(
                    (new.first_seen < IssueRow.first_seen, new.first_seen), else_=IssueRow.first_seen
                ),
                "last_seen": case(
                    (new.last_seen > IssueRow.last_seen, new.last_seen), else_=IssueRow.last_seen
                ),
                "latest_event_id": event.id,
                # An issue stored before clusters existed gets one from its next event.
                "cluster_id": func.coalesce(IssueRow.cluster_id, new.cluster_id),
                # The first Sentry issue id seen stays; a state that arrives with the event wins.
                "sentry_issue_id": func.coalesce(IssueRow.sentry_issue_id, new.sentry_issue_id),
                "sentry_status": func.coalesce(new.sentry_status, IssueRow.sentry_status),
            },
        )

    def record_events(self, pairs: Sequence[tuple[ErrorEvent, Issue]]) -> list[bool]:
        for event, issue in pairs:
            if event.fingerprint != issue.fingerprint:
                raise InvalidInput(f"event {event.id}", f"fingerprint {event.fingerprint!r} differs from its "
                                   f"issue's {issue.fingerprint!r}")
        try:
            recorded = self._record_known_duplicates(pairs)
        except IntegrityError:
            # A concurrent writer stored one of these ids after we looked (PostgreSQL): redo the
            # batch with a savepoint per event, so that only the duplicate is left out.
            recorded = self._record_with_savepoints(pairs)
        for (event, issue), stored in zip(pairs, recorded, strict=True):
            log.debug("event.recorded" if stored else "event.duplicate_dropped", event_id=event.id,
                      fingerprint=issue.fingerprint)
        return recorded

    def _record_known_duplicates(self, pairs: Sequence[tuple[ErrorEvent, Issue]]) -> list[bool]:
        """Look up which ids are stored, inside the write transaction, and insert the others."""
        recorded: list[bool] = []
        with self._connection() as connection:
            ids = [event.id for event, _ in pairs]
            seen = set(connection.execute(select(EventRow.id).where(EventRow.id.in_(ids))).scalars())
            for event, issue in pairs:
                if event.id in seen:
                    recorded.append(False)
                    continue
                seen.add(event.id)
                connection.execute(self._issue_upsert, self._issue_params(event, issue))
                connection.execute(self._event_insert, event_insert_values(event, issue.fingerprint))
                recorded.append(True)
        return recorded

    def _record_with_savepoints(self, pairs: Sequence[tuple[ErrorEvent, Issue]]) -> list[bool]:
        recorded: list[bool] = []
        with self._connection() as connection:
            for event, issue in pairs:
                try:
                    with connection.begin_nested():  # a duplicate undoes only itself
                        connection.execute(self._issue_upsert, self._issue_params(event, issue))
                        connection.execute(self._event_insert, event_insert_values(event, issue.fingerprint))
                    recorded.append(True)
                except IntegrityError:
                    if connection.execute(select(EventRow.id).where(EventRow.id == event.id)).first() is None:
                        raise  # some other constraint failed: a bug, not a duplicate
                    recorded.append(False)
        return recorded

    @cached_property
    def _issue_upsert(self) -> _Insert:
        """The statement of _issue_counted built once, with the counted event id as a parameter."""
        stmt = self._insert(IssueRow)
        new = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=[IssueRow.fingerprint],
            set_={
                "count": IssueRow.count + 1,
                "first_seen": case((new.first_seen < IssueRow.first_seen, new.first_seen), else_=IssueRow.first_seen),
                "last_seen": case((new.last_seen > IssueRow.last_seen, new.last_seen), else_=IssueRow.last_seen),
                "latest_event_id": bindparam("counted_event_id"),
                "sentry_issue_id": func.coalesce(IssueRow.sentry_issue_id, new.sentry_issue_id),
                "sentry_status": func.coalesce(new.sentry_status, IssueRow.sentry_status),
                # An issue stored before clusters existed gets one from its next event.
                "cluster_id": func.coalesce(IssueRow.cluster_id, new.cluster_id),
            },
        )

    @staticmethod
    def _issue_params(event: ErrorEvent, issue: Issue) -> dict[str, Any]:
        values = issue_values(issue)
        values["latest_event_id"] = issue.latest_event_id or event.id
        values["counted_event_id"] = event.id
        return values

    @cached_property
    def _event_insert(self) -> Any:
        table = EventRow.__table__
        assert isinstance(table, Table)
        return insert(table)  # Core, on the table: the ORM's bulk machinery is not needed here

    def get_event(self, event_id: str) -> ErrorEvent | None:
        with self._reading() as session:
            row = session.get(EventRow, event_id)
            return event_from_row(row) if row is not None else None

    def events_for_issue(self, fingerprint: str, limit: int = 20) -> list[ErrorEvent]:
        """The issue's events, newest first."""
        query = (
            select(EventRow)
            .where(EventRow.fingerprint == fingerprint)
            .order_by(EventRow.received_at.desc(), EventRow.id)
            .limit(limit)
        )
        with self._reading() as session:
            return [event_from_row(row) for row in session.scalars(query)]

    def get_issue(self, fingerprint: str) -> Issue | None:
        with self._reading() as session:
            row = session.get(IssueRow, fingerprint)
            return issue_from_row(row) if row is not None else None

    def list_issues(self, status: IssueStatus | None = None) -> list[Issue]:
        """Issues by priority, highest first; among equals, the most recently seen first."""
        query = select(IssueRow).order_by(
            IssueRow.priority.desc(), IssueRow.last_seen.desc(), IssueRow.fingerprint
        )
        if status is not None:
            query = query.where(IssueRow.status == IssueStatus(status).value)
        with self._reading() as session:
            return [issue_from_row(row) for row in session.scalars(query)]

    def update_issue(self, issue: Issue) -> None:
        """Store every field of the issue as given (inserting it when it is not stored yet)."""
        values = issue_values(issue)
        stmt = self._insert(IssueRow).values(values)
        changed = {name: value for name, value in values.items() if name != "fingerprint"}
        with self._writing() as session:
            session.execute(stmt.on_conflict_do_update(index_elements=[IssueRow.fingerprint], set_=changed))

    def set_issue_status(self, fingerprint: str, status: IssueStatus) -> None:
        self._set_issue_field(fingerprint, status=IssueStatus(status).value)

    def set_issue_priority(self, fingerprint: str, priority: float) -> None:
        self._set_issue_field(fingerprint, priority=priority)

    def issues_for_sentry_id(self, sentry_issue_id: str) -> list[Issue]:
        query = select(IssueRow).where(IssueRow.sentry_issue_id == sentry_issue_id).order_by(IssueRow.fingerprint)
        with self._reading() as session:
            return [issue_from_row(row) for row in session.scalars(query)]

    def link_sentry_issue(self, event_id: str, sentry_issue_id: str) -> str | None:
        fingerprint = select(EventRow.fingerprint).where(EventRow.id == event_id).scalar_subquery()
        stmt = (
            update(IssueRow)
            .where(IssueRow.fingerprint == fingerprint)
            .values(sentry_issue_id=func.coalesce(IssueRow.sentry_issue_id, sentry_issue_id))
            .returning(IssueRow.fingerprint)
        )
        with self._writing() as session:
            return session.scalars(stmt).one_or_none()

    def set_sentry_status(self, sentry_issue_id: str, status: str) -> list[str]:
        stmt = (
            update(IssueRow)
            .where(IssueRow.sentry_issue_id == sentry_issue_id)
            .values(sentry_status=status)
            .returning(IssueRow.fingerprint)
        )
        with self._writing() as session:
            return sorted(session.scalars(stmt))

    def _set_issue_field(self, fingerprint: str, **values: object) -> None:
        """Change one column, leaving whatever another writer set in the others."""
        with self._writing() as session:
            row = session.get(IssueRow, fingerprint, with_for_update=True)
            if row is None:
                raise InvalidInput(f"issue {fingerprint}", "no issue with this fingerprint is stored")
            for name, value in values.items():
                setattr(row, name, value)

    # --- candidates --------------------------------------------------------------------------------

    def save_candidate(self, candidate: FixCandidate) -> None:
        """Store the candidate; a stored one keeps its first created_at and its status (a held one may
        be promoted), and takes the rest (confidence, verification and its runs) from this one."""
        try:
            self._save_candidate_once(candidate)
        except IntegrityError:
            # A concurrent first save of the same candidate won the insert; this one now updates it.
            self._save_candidate_once(candidate)

    def _save_candidate_once(self, candidate: FixCandidate) -> None:
        with self._writing() as session:
            row = session.get(CandidateRow, candidate.id, with_for_update=True)
            if row is None:
                row = CandidateRow()
                session.add(row)
            else:
                # A re-save (a repeated attempt) keeps when it was first made and its status, so a
                # candidate under review, approved or published is not reset; only a held one may be
                # promoted by a newer verdict. Old runs go before new ones reuse their positions.
                keep_created, keep_status = row.created_at, row.status
                row.runs.clear()
                row.verification = None
                session.flush()
                fill_candidate_row(row, candidate)
                row.created_at = keep_created
                if keep_status != CandidateStatus.HELD.value:
                    row.status = keep_status
                return
            fill_candidate_row(row, candidate)

    def get_candidate(self, candidate_id: str) -> FixCandidate | None:
        with self._reading() as session:
            row = session.get(CandidateRow, candidate_id)
            return candidate_from_row(row) if row is not None else None

    def list_candidates(
        self, status: CandidateStatus | None = None, issue_fingerprint: str | None = None
    ) -> list[FixCandidate]:
        """Candidates by confidence, highest first; among equals, the oldest first."""
        query = (
            select(CandidateRow)
            .options(selectinload(CandidateRow.verification), selectinload(CandidateRow.runs))
            .order_by(CandidateRow.confidence.desc(), CandidateRow.created_at, CandidateRow.id)
        )
        if status is not None:
            query = query.where(CandidateRow.status == CandidateStatus(status).value)
        if issue_fingerprint is not None:
            query = query.where(CandidateRow.issue_fingerprint == issue_fingerprint)
        with self._reading() as session:
            return [candidate_from_row(row) for row in session.scalars(query)]

    def set_candidate_status(self, candidate_id: str, status: CandidateStatus) -> None:
        with self._writing() as session:
            row = session.get(CandidateRow, candidate_id, with_for_update=True)
            if row is None:
                raise InvalidInput(f"candidate {candidate_id}", "no candidate with this id is stored")
            row.status = CandidateStatus(status).value

    # --- reviews and pull requests -------------------------------------------------------------------

    def save_review(self, review: Review) -> None:
        """Store the review; the same decision by the same reviewer at the same instant is kept once."""
        stmt = self._insert(ReviewRow).values(review_values(review))
        key = [ReviewRow.candidate_id, ReviewRow.reviewer, ReviewRow.decision, ReviewRow.at]
        with self._writing() as session:
            session.execute(stmt.on_conflict_do_nothing(index_elements=key))

    def reviews_for(self, candidate_id: str) -> list[Review]:
        """The candidate's reviews, oldest first."""
        query = (
            select(ReviewRow)
            .where(ReviewRow.candidate_id == candidate_id)
            .order_by(ReviewRow.at, ReviewRow.id)
        )
        with self._reading() as session:
            return [review_from_row(row) for row in session.scalars(query)]

    def save_pull_request(self, pr: PullRequest) -> None:
        """Store the candidate's pull request, replacing the one stored for it (e.g. its state)."""
        values = pull_request_values(pr)
        stmt = self._insert(PullRequestRow).values(values)
        changed = {name: value for name, value in values.items() if name != "candidate_id"}
        with self._writing() as session:
            session.execute(
                stmt.on_conflict_do_update(index_elements=[PullRequestRow.candidate_id], set_=changed)
            )

    def get_pull_request(self, candidate_id: str) -> PullRequest | None:
        query = select(PullRequestRow).where(PullRequestRow.candidate_id == candidate_id)
        with self._reading() as session:
            row = session.scalars(query).one_or_none()
            return pull_request_from_row(row) if row is not None else None

    def list_pull_requests(self) -> list[PullRequest]:
        """Every pull request, oldest first."""
        query = select(PullRequestRow).order_by(PullRequestRow.created_at, PullRequestRow.id)
        with self._reading() as session:
            return [pull_request_from_row(row) for row in session.scalars(query)]

    def pull_requests_for(self, fingerprint: str) -> list[PullRequest]:
        """The issue's pull requests (through their first candidate), oldest first."""
        query = (
            select(PullRequestRow)
            .join(CandidateRow, CandidateRow.id == PullRequestRow.candidate_id)
            .where(CandidateRow.issue_fingerprint == fingerprint)
            .order_by(PullRequestRow.created_at, PullRequestRow.id)
        )
        with self._reading() as session:
            return [pull_request_from_row(row) for row in session.scalars(query)]

    # --- hints and outcomes --------------------------------------------------------------------------

    def add_hint(self, hint: Hint) -> bool:
        """Store a hint; False, storing nothing, when the issue has one with the same source and ref."""
        stmt = self._insert(HintRow).values(hint_values(hint))
        key = [HintRow.issue_fingerprint, HintRow.source, HintRow.ref]
        with self._writing() as session:
            result = session.execute(stmt.on_conflict_do_nothing(index_elements=key).returning(HintRow.id))
            return result.first() is not None

    def hints_for(self, fingerprint: str, limit: int = 5) -> list[Hint]:
        """The issue's newest `limit` hints, oldest of them first."""
        query = (
            select(HintRow)
            .where(HintRow.issue_fingerprint == fingerprint)
            .order_by(HintRow.at.desc(), HintRow.id.desc())
            .limit(limit)
        )
        with self._reading() as session:
            return [hint_from_row(row) for row in reversed(session.scalars(query).all())]

    def outcomes(self) -> list[Outcome]:
        """Reviews, then pull-request outcomes (credited to the candidate at the branch head)."""
        reviews = (
            select(ReviewRow, CandidateRow.strategy, CandidateRow.confidence, IssueRow.fix_class)
            .join(CandidateRow, CandidateRow.id == ReviewRow.candidate_id)
            .join(IssueRow, IssueRow.fingerprint == CandidateRow.issue_fingerprint)
            .order_by(ReviewRow.at, ReviewRow.id)
        )
        credited = func.coalesce(PullRequestRow.head_candidate_id, PullRequestRow.candidate_id)
        prs = (
            select(PullRequestRow, CandidateRow.id, CandidateRow.strategy, CandidateRow.confidence,
                   IssueRow.fix_class)
            .join(CandidateRow, CandidateRow.id == credited)
            .join(IssueRow, IssueRow.fingerprint == CandidateRow.issue_fingerprint)
            .order_by(PullRequestRow.created_at, PullRequestRow.id)
        )
        found: list[Outcome] = []
        with self._reading() as session:
            for review, strategy, confidence, fix_class in session.execute(reviews):
                kind: OutcomeKind = "approved" if review.decision == "approved" else "rejected"
                found.append(Outcome(review.candidate_id, fix_class, strategy, confidence, kind, review.reason))
            for pr, candidate_id, strategy, confidence, fix_class in session.execute(prs):
                if pr.state in ("merged", "closed"):
                    state: OutcomeKind = "merged" if pr.state == "merged" else "closed"
                    found.append(Outcome(candidate_id, fix_class, strategy, confidence, state))
                if pr.regressed_at is not None:
                    found.append(Outcome(candidate_id, fix_class, strategy, confidence, "regressed"))
        return found
    # --- clusters, regrouping, followed logs ---------------------------------------------------------

    def list_events(self, after: str | None = None, limit: int = 500) -> list[ErrorEvent]:
        query = select(EventRow).order_by(EventRow.id).limit(limit)
        if after is not None:
            query = query.where(EventRow.id > after)
        with self._reading() as session:
            return [event_from_row(row) for row in session.scalars(query)]

    def issues_in_cluster(self, cluster_id: str) -> list[Issue]:
        """The cluster's issues, most events first."""
        query = (
            select(IssueRow)
            .where(IssueRow.cluster_id == cluster_id)
            .order_by(IssueRow.count.desc(), IssueRow.fingerprint)
        )
        with self._reading() as session:
            return [issue_from_row(row) for row in session.scalars(query)]

    def set_cluster_status(
        self, cluster_id: str, status: IssueStatus, among: Collection[IssueStatus]
    ) -> list[str]:
        wanted = [IssueStatus(s).value for s in among]
        query = (
            select(IssueRow)
            .where(IssueRow.cluster_id == cluster_id, IssueRow.status.in_(wanted))
            .with_for_update()
        )
        with self._writing() as session:
            rows = list(session.scalars(query))
            for row in rows:
                row.status = IssueStatus(status).value
            return sorted(row.fingerprint for row in rows)

    def apply_regroup(self, plan: RegroupPlan) -> None:
        """Issues first (so every new fingerprint exists), then events and candidates move onto them,
        then the issues nothing refers to any more go; one transaction, so a failure changes nothing."""
        with self._writing() as session:
            for issue in plan.issues:
                values = issue_values(issue)
                changed = {name: value for name, value in values.items() if name != "fingerprint"}
                stmt = self._insert(IssueRow).values(values)
                session.execute(stmt.on_conflict_do_update(index_elements=[IssueRow.fingerprint], set_=changed))
            if plan.events:
                session.execute(update(EventRow), [event_values(e) for e in plan.events])
            if plan.candidates:
                session.execute(
                    update(CandidateRow),
                    [{"id": cid, "issue_fingerprint": fp} for cid, fp in plan.candidates.items()],
                )
            if plan.removed:
                self._move_hints(session, plan)
                session.execute(delete(IssueRow).where(IssueRow.fingerprint.in_(plan.removed)))
        log.info("store.regrouped", issues=len(plan.issues), events=len(plan.events),
                 candidates=len(plan.candidates), removed=len(plan.removed))

    @staticmethod
    def _move_hints(session: Session, plan: RegroupPlan) -> None:
        """Hints of issues that go follow the candidate they were about; the others go with the issue
        (a hint is feedback for the next attempt of that grouping, and the grouping is no more)."""
        rows = session.scalars(select(HintRow).where(HintRow.issue_fingerprint.in_(plan.removed))).all()
        for row in rows:
            target = plan.candidates.get(row.candidate_id or "")
            if target is None or target in plan.removed:
                session.delete(row)
            else:
                row.issue_fingerprint = target
        session.flush()

    def get_log_cursor(self, path: str) -> LogCursor | None:
        with self._reading() as session:
            row = session.get(LogCursorRow, path)
            return log_cursor_from_row(row) if row is not None else None

    def save_log_cursor(self, cursor: LogCursor) -> None:
        values = log_cursor_values(cursor)
        stmt = self._insert(LogCursorRow).values(values)
        changed = {name: value for name, value in values.items() if name != "path"}
        with self._writing() as session:
            session.execute(stmt.on_conflict_do_update(index_elements=[LogCursorRow.path], set_=changed))

    # --- sessions ----------------------------------------------------------------------------------

    def _insert(self, model: type[Base]) -> _Insert:
        """INSERT for this backend; both dialects offer the same ON CONFLICT clauses."""
        if self.dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    @contextmanager
    def _reading(self) -> Iterator[Session]:
        with self._session(self._engine) as session:
            yield session

    @contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._session(self._writer) as session:
            yield session

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """One write transaction on a Core connection (no ORM session), for the hot paths."""
        self.migrate()
        with _translated_errors(), self._writer.begin() as connection:
            yield connection

    @contextmanager
    def _session(self, bind: Engine) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        self.migrate()
        with _translated_errors(), Session(bind, expire_on_commit=False) as session, session.begin():
            yield session


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        # Connection refused, server gone, SQLite file locked past the busy timeout: all may pass.
        raise StoreUnavailable(str(exc.orig or exc)) from exc
