"""The inbox half of SqlStore (the Inbox port): accepted payloads, raw, until they are processed.

A mixin of SqlStore, which provides the sessions and the connection. `add_to_inbox` inserts a whole
batch in one transaction, so that one commit (one fsync) serves many requests; on SQLite it goes
through the driver on a connection of the calling thread's own (the inbox writer's), since that is
the accept path and SQLAlchemy's per-batch and per-row work was most of its cost. A replayed
webhook Request-ID is dropped by the unique constraint inside the same transaction.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Table, bindparam, func, insert, make_url, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from pipeline.adapters.sql_convert import inbox_from_row, inbox_values
from pipeline.adapters.sql_engine import configure_sqlite_connection
from pipeline.adapters.sql_models import InboxRow, as_utc
from pipeline.errors import StoreUnavailable
from pipeline.ports import InboxFinish
from pipeline.records import InboxItem, InboxStatus, utcnow


class SqlInbox:
    """The Inbox port on the store's database; SqlStore supplies what is declared here."""

    _url: str
    _sqlite_synchronous: str | None
    _local: threading.local
    _raw_connections: list[sqlite3.Connection]
    _migrate_lock: threading.Lock

    @property
    def dialect(self) -> str:
        raise NotImplementedError

    def migrate(self) -> None:
        raise NotImplementedError

    def _connection(self) -> AbstractContextManager[Connection]:
        raise NotImplementedError

    def _reading(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def _writing(self) -> AbstractContextManager[Session]:
        raise NotImplementedError

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
        own: SQLAlchemy's per-batch and per-row work would be most of the cost (3x, measured).

        Each statement the driver runs lets go of the GIL and must take it back, and while the event
        loop is busy every take-back waits out a switch interval (1 ms in `autofix serve`, 5 ms by
        default), with the batch's requests waiting on it: so a batch is as few statements as it can be. The usual one (SDK events, no
        Request-ID) is a single multi-row INSERT in autocommit, its own transaction; one statement
        holds the write lock throughout, so its rowids are the consecutive ones ending at the last."""
        self.migrate()
        plain = [i for i, item in enumerate(items) if item.request_id is None]
        keyed = [i for i, item in enumerate(items) if item.request_id is not None]
        ids: dict[int, int | None] = {}
        connection = self._raw_sqlite()
        try:
            if not keyed and len(plain) <= _SQLITE_ROWS_PER_INSERT:
                self._sqlite_insert_plain(connection, items, plain, ids)
                return [ids[i] for i in range(len(items))]
            connection.execute("BEGIN IMMEDIATE")
            try:
                for start in range(0, len(plain), _SQLITE_ROWS_PER_INSERT):
                    self._sqlite_insert_plain(connection, items, plain[start : start + _SQLITE_ROWS_PER_INSERT], ids)
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

    @staticmethod
    def _sqlite_insert_plain(connection: sqlite3.Connection, items: Sequence[InboxItem], rows: list[int],
                             ids: dict[int, int | None]) -> None:
        if not rows:
            return
        cursor = connection.execute(_sqlite_multi_insert(len(rows)),
                                    [value for i in rows for value in _sqlite_inbox_row(items[i])])
        last = cursor.lastrowid
        assert last is not None
        ids.update(zip(rows, range(last - len(rows) + 1, last + 1), strict=True))

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


_INBOX_COLUMNS = ("kind", "status", "received_at", "project", "headers", "body", "request_id", "event_id",
                  "attempts", "error", "outcome", "processed_at")
_SQLITE_INBOX_INSERT = (f"INSERT INTO inbox ({', '.join(_INBOX_COLUMNS)}) "
                        f"VALUES ({', '.join('?' for _ in _INBOX_COLUMNS)})")


_SQLITE_INBOX_INSERT_ONCE = _SQLITE_INBOX_INSERT + " ON CONFLICT (request_id) DO NOTHING RETURNING id"
# One multi-row INSERT rather than executemany (a statement step per row, each a GIL take-back; see
# _sqlite_add_to_inbox). Rows per statement stay under SQLite's default bound of 32,766 variables.
_SQLITE_ROWS_PER_INSERT = 1000


@functools.lru_cache(maxsize=64)
def _sqlite_multi_insert(rows: int) -> str:
    one = f"({', '.join('?' for _ in _INBOX_COLUMNS)})"
    return f"INSERT INTO inbox ({', '.join(_INBOX_COLUMNS)}) VALUES {', '.join([one] * rows)}"


def _sqlite_time(value: datetime | None) -> str | None:
    # How SQLAlchemy stores a DateTime on SQLite (UTCDateTime makes it UTC first): read back by it.
    return None if value is None else as_utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def _sqlite_inbox_row(item: InboxItem) -> tuple[Any, ...]:
    return (item.kind.value, item.status.value, _sqlite_time(item.received_at), item.project,
            json.dumps(dict(item.headers)), item.body, item.request_id, item.event_id, item.attempts,
            item.error, item.outcome, _sqlite_time(item.processed_at))
