"""SqlStore: the Store port (pipeline/ports.py) on SQLAlchemy, for a SQLite file or PostgreSQL.

The schema comes from the Alembic migrations, run on first use (sql_engine.migrate); tables are in
sql_models, record <-> row conversions in sql_convert. Each method is one transaction. Database errors
that a retry can cure (unreachable server, locked file) become StoreUnavailable here, once.

Duplicate events are caught by the events primary key, not by looking first: two processes storing
the same event id at once both try, one insert wins, the other rolls back its whole transaction.

The inbox (the Inbox port) is a table of accepted payloads; `add_to_inbox` inserts a whole batch in
one transaction (one commit, one fsync for many requests) and replayed webhook Request-IDs are
dropped by a unique constraint inside it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    case,
    func,
    insert,
    make_url,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, selectinload

from pipeline.adapters.sql_convert import (
    candidate_from_row,
    event_from_row,
    event_row,
    event_values,
    fill_candidate_row,
    inbox_from_row,
    inbox_values,
    issue_from_row,
    issue_values,
    pull_request_from_row,
    pull_request_values,
    review_from_row,
    review_values,
)
from pipeline.adapters.sql_engine import configure_sqlite_connection, make_engine, migrate, writer
from pipeline.adapters.sql_models import (
    Base,
    CandidateRow,
    EventRow,
    InboxRow,
    IssueRow,
    PullRequestRow,
    ReviewRow,
    as_utc,
)
from pipeline.errors import InvalidInput, StoreUnavailable
from pipeline.ports import InboxFinish
from pipeline.records import (
    CandidateStatus,
    ErrorEvent,
    FixCandidate,
    InboxItem,
    InboxStatus,
    Issue,
    IssueStatus,
    PullRequest,
    Review,
    utcnow,
)

if TYPE_CHECKING:
    from pipeline.settings import Settings

log = structlog.get_logger(__name__)

_Insert = sqlite.Insert | postgresql.Insert


class SqlStore:
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

    def _issue_counted(self, event: ErrorEvent, issue: Issue) -> _Insert:
        """INSERT the issue as given, or count this event against the stored one (keeping status)."""
        values = issue_values(issue)
        values["latest_event_id"] = issue.latest_event_id or event.id
        stmt = self._insert(IssueRow).values(values)
        new = stmt.excluded
        return stmt.on_conflict_do_update(
            index_elements=[IssueRow.fingerprint],
            set_={
                "count": IssueRow.count + 1,
                "first_seen": case(
                    (new.first_seen < IssueRow.first_seen, new.first_seen), else_=IssueRow.first_seen
                ),
                "last_seen": case(
                    (new.last_seen > IssueRow.last_seen, new.last_seen), else_=IssueRow.last_seen
                ),
                "latest_event_id": event.id,
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
                connection.execute(self._event_insert, event_values(event, issue.fingerprint))
                recorded.append(True)
        return recorded

    def _record_with_savepoints(self, pairs: Sequence[tuple[ErrorEvent, Issue]]) -> list[bool]:
        recorded: list[bool] = []
        with self._connection() as connection:
            for event, issue in pairs:
                try:
                    with connection.begin_nested():  # a duplicate undoes only itself
                        connection.execute(self._issue_upsert, self._issue_params(event, issue))
                        connection.execute(self._event_insert, event_values(event, issue.fingerprint))
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
        """Store the candidate, replacing every field and its verification runs if already stored."""
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
                # Delete the old runs before inserting new ones, which reuse their positions.
                row.runs.clear()
                row.verification = None
                session.flush()
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

    # --- inbox ---------------------------------------------------------------------------------------

    def add_to_inbox(self, items: Sequence[InboxItem]) -> list[int | None]:
        if self.dialect == "sqlite":
            return self._sqlite_add_to_inbox(items)
        ids: dict[int, int | None] = {}
        plain = [(i, inbox_values(item)) for i, item in enumerate(items) if item.request_id is None]
        keyed = [(i, inbox_values(item)) for i, item in enumerate(items) if item.request_id is not None]
        # Core on a plain connection: this is the accept path, where an ORM session's cost per batch
        # is most of the work.
        with self._connection() as connection:
            if plain:
                new_ids = connection.execute(self._inbox_insert, [values for _, values in plain]).scalars().all()
                ids.update(zip([i for i, _ in plain], new_ids, strict=True))
            for i, values in keyed:
                ids[i] = connection.execute(self._inbox_insert_once, values).scalars().one_or_none()
        return [ids[i] for i in range(len(items))]

    def _sqlite_add_to_inbox(self, items: Sequence[InboxItem]) -> list[int | None]:
        """The accept path's batch on SQLite, through the driver on a connection of this thread's
        own: SQLAlchemy's per-batch and per-row work would be most of the cost (3x, measured). Within
        the write transaction (BEGIN IMMEDIATE) nobody else inserts, so a multi-row insert's rowids
        are the consecutive ones ending at the last."""
        self.migrate()
        plain = [i for i, item in enumerate(items) if item.request_id is None]
        keyed = [i for i, item in enumerate(items) if item.request_id is not None]
        ids: dict[int, int | None] = {}
        connection = self._raw_sqlite()
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                if plain:
                    connection.executemany(_SQLITE_INBOX_INSERT, [_sqlite_inbox_row(items[i]) for i in plain])
                    last = connection.execute("SELECT last_insert_rowid()").fetchone()[0]
                    ids.update(zip(plain, range(last - len(plain) + 1, last + 1), strict=True))
                for i in keyed:
                    row = connection.execute(_SQLITE_INBOX_INSERT_ONCE, _sqlite_inbox_row(items[i])).fetchone()
                    ids[i] = row[0] if row else None
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk full...
            raise StoreUnavailable(str(exc)) from exc
        return [ids[i] for i in range(len(items))]

    def _raw_sqlite(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "sqlite", None)
        if connection is None:
            database = make_url(self._url).database
            assert database, "make_engine refuses a SQLite URL without a file"
            connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
            configure_sqlite_connection(connection, None, self._sqlite_synchronous)
            self._local.sqlite = connection
            with self._migrate_lock:
                self._raw_connections.append(connection)
        return connection

    @cached_property
    def _inbox_insert(self) -> Any:
        """One multi-row INSERT ... RETURNING id for a batch, ids in parameter order (insertmanyvalues)."""
        table = InboxRow.__table__
        assert isinstance(table, Table)
        return insert(table).returning(table.c.id, sort_by_parameter_order=True)

    @cached_property
    def _inbox_insert_once(self) -> Any:
        """INSERT ... ON CONFLICT (request_id) DO NOTHING RETURNING id, built once (values bound)."""
        table = InboxRow.__table__
        assert isinstance(table, Table)
        insert_ = postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)
        return insert_.on_conflict_do_nothing(index_elements=[table.c.request_id]).returning(table.c.id)

    def inbox_item(self, item_id: int) -> InboxItem | None:
        with self._reading() as session:
            row = session.get(InboxRow, item_id)
            return inbox_from_row(row) if row is not None else None

    def inbox_items(
        self, status: InboxStatus | None = None, limit: int = 100, before: datetime | None = None
    ) -> list[InboxItem]:
        query = select(InboxRow).order_by(InboxRow.id).limit(limit)
        if status is not None:
            query = query.where(InboxRow.status == InboxStatus(status).value)
        if before is not None:
            query = query.where(InboxRow.received_at < before)
        with self._reading() as session:
            return [inbox_from_row(row) for row in session.scalars(query)]

    def finish_inbox(
        self, item_id: int, status: InboxStatus, *, outcome: str | None = None, error: str | None = None,
        replace_body: bool = False, body: bytes | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": InboxStatus(status).value, "outcome": outcome, "error": error,
            "attempts": InboxRow.attempts + 1, "processed_at": utcnow(),
        }
        if replace_body:
            values["body"] = body
        with self._writing() as session:
            session.execute(update(InboxRow).where(InboxRow.id == item_id).values(values))

    def finish_inbox_many(self, finishes: Sequence[InboxFinish]) -> None:
        if not finishes:
            return
        now = utcnow()
        keep_body = update(InboxRow).where(InboxRow.id == bindparam("item_id")).values(
            status=bindparam("new_status"), outcome=bindparam("new_outcome"), error=bindparam("new_error"),
            attempts=InboxRow.attempts + 1, processed_at=bindparam("now"))
        new_body = keep_body.values(body=bindparam("new_body"))
        rows = {True: [], False: []}  # type: dict[bool, list[dict[str, Any]]]
        for f in finishes:
            values: dict[str, Any] = {"item_id": f.item_id, "new_status": InboxStatus(f.status).value,
                                      "new_outcome": f.outcome, "new_error": f.error, "now": now}
            if f.replace_body:
                values["new_body"] = f.body
            rows[f.replace_body].append(values)
        with self._writing() as session:
            connection = session.connection()
            for replace_body, batch in rows.items():
                if batch:
                    connection.execute(new_body if replace_body else keep_body, batch)

    def retry_inbox(self, item_id: int | None = None) -> list[int]:
        stmt = (
            update(InboxRow)
            .where(InboxRow.status == InboxStatus.FAILED.value)
            .values(status=InboxStatus.PENDING.value)
            .returning(InboxRow.id)
        )
        if item_id is not None:
            stmt = stmt.where(InboxRow.id == item_id)
        with self._writing() as session:
            return sorted(session.scalars(stmt))

    def inbox_backlog(self) -> int:
        query = select(func.count()).select_from(InboxRow).where(InboxRow.status == InboxStatus.PENDING.value)
        with self._reading() as session:
            return int(session.scalar(query) or 0)

    def inbox_counts(self) -> dict[str, int]:
        query = select(InboxRow.status, func.count()).group_by(InboxRow.status)
        with self._reading() as session:
            return {str(status): int(n) for status, n in session.execute(query)}

    def ping(self) -> None:
        with self._reading() as session:
            session.execute(text("SELECT 1"))

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


_INBOX_COLUMNS = ("kind", "status", "received_at", "project", "headers", "body", "request_id", "event_id",
                  "attempts", "error", "outcome", "processed_at")
_SQLITE_INBOX_INSERT = (f"INSERT INTO inbox ({', '.join(_INBOX_COLUMNS)}) "
                        f"VALUES ({', '.join('?' for _ in _INBOX_COLUMNS)})")


_SQLITE_INBOX_INSERT_ONCE = _SQLITE_INBOX_INSERT + " ON CONFLICT (request_id) DO NOTHING RETURNING id"


def _sqlite_time(value: datetime | None) -> str | None:
    # How SQLAlchemy stores a DateTime on SQLite (UTCDateTime makes it UTC first): read back by it.
    return None if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_inbox_row(item: InboxItem) -> tuple[Any, ...]:
    return (item.kind.value, item.status.value, _sqlite_time(item.received_at), item.project,
            json.dumps(dict(item.headers)), item.body, item.request_id, item.event_id, item.attempts,
            item.error, item.outcome, _sqlite_time(item.processed_at))


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        # Connection refused, server gone, SQLite file locked past the busy timeout: all may pass.
        raise StoreUnavailable(str(exc.orig or exc)) from exc
