"""Engines for the store's two backends, and the Alembic migrations that create their schema.

SQLite (a file, the embedded default) and PostgreSQL (via psycopg 3, in deployment) are supported.
SQLite connections get WAL, foreign keys and a busy timeout, and SQLAlchemy, not the sqlite3 module,
emits BEGIN: sqlite3's legacy mode would leave SELECTs and DDL outside the transaction. Engines made
with `writer()` begin with BEGIN IMMEDIATE, taking SQLite's write lock up front, so two writers wait
for each other (busy timeout) instead of failing on a lock upgrade halfway through a transaction.

The schema comes only from `migrate()`, which runs `alembic upgrade head` on the packaged migrations.
"""

from __future__ import annotations

import io
import sqlite3
import time
from importlib import resources
from typing import Any

import structlog
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, pool, text
from sqlalchemy.engine import Connection

from pipeline.errors import ConfigError

log = structlog.get_logger(__name__)

SUPPORTED_DIALECTS = ("sqlite", "postgresql")
BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10
_BEGIN_OPTION = "autofix_sqlite_begin"
# Any fixed number: every process that migrates the same PostgreSQL database takes this lock first.
_MIGRATION_LOCK_KEY = 0x6175746F666978


def make_engine(
    url: str, *, poolclass: type[pool.Pool] | None = None, sqlite_synchronous: str | None = None
) -> Engine:
    """An engine for a SQLite file or a PostgreSQL URL; ConfigError for anything else.

    `sqlite_synchronous` ("NORMAL") relaxes SQLite's fsync on commit for this engine's connections
    (see SqlStore); the default keeps SQLite's FULL.
    """
    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect not in SUPPORTED_DIALECTS:
        raise ConfigError(f"store URL uses {dialect!r}; supported: {', '.join(SUPPORTED_DIALECTS)}")
    kwargs: dict[str, Any] = {} if poolclass is None else {"poolclass": poolclass}
    if dialect == "postgresql":
        if "connect_timeout" not in parsed.query:
            # libpq waits for the OS by default (minutes) before reporting an unreachable server.
            kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S}
        return create_engine(url, pool_pre_ping=True, **kwargs)
    if parsed.database in (None, "", ":memory:"):
        # Each pooled connection would open its own empty database, unseen by the migrations.
        raise ConfigError("an in-memory SQLite store is not supported; give a file path")
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _configure_sqlite_connection)
    if sqlite_synchronous is not None:
        if sqlite_synchronous.upper() not in ("FULL", "NORMAL"):
            raise ConfigError(f"sqlite_synchronous must be FULL or NORMAL, not {sqlite_synchronous!r}")
        event.listen(engine, "connect", _synchronous(sqlite_synchronous.upper()))
    event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def writer(engine: Engine) -> Engine:
    """The same engine (same pool), whose transactions take SQLite's write lock when they begin."""
    return engine.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})


def configure_sqlite_connection(dbapi_connection: Any, _record: Any, synchronous: str | None = None) -> None:
    """The pragmas of every store connection (also for a driver connection opened by hand)."""
    _configure_sqlite_connection(dbapi_connection, _record)
    if synchronous is not None:
        dbapi_connection.execute(f"PRAGMA synchronous={synchronous.upper()}")


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see the begin hook)
    cursor = dbapi_connection.cursor()
    try:
        # The busy timeout first: switching a new database to WAL needs its exclusive lock, and a
        # store starting beside another must wait for that lock rather than fail at once.
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def _synchronous(mode: str) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute(f"PRAGMA synchronous={mode}")

    return configure


def _switch_to_wal(cursor: Any) -> None:
    # SQLite answers SQLITE_BUSY to a journal-mode change without calling the busy handler when
    # another connection holds a conflicting lock, so the wait is ours to do.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _begin_sqlite_transaction(conn: Connection) -> None:
    conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))


# --- migrations ----------------------------------------------------------------------------------


def alembic_config(url: str) -> Config:
    """An Alembic Config for the packaged migrations, independent of the working directory."""
    adapters = resources.files("pipeline.adapters")
    config = Config(str(adapters / "alembic.ini"), stdout=io.StringIO())
    config.set_main_option("script_location", str(adapters / "migrations"))
    # ConfigParser interpolation would read a '%' in a password as a placeholder.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite:///unused")).get_current_head()


def migrate(url: str) -> None:
    """Bring the database at `url` to the newest schema (`alembic upgrade head`); safe to race.

    The migrations run on their own engine (see migration_engine), inside one transaction that first
    takes a lock, so stores starting together in several processes migrate one after the other.
    """
    engine = migration_engine(url)
    try:
        with writer(engine).begin() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            before = MigrationContext.configure(connection).get_current_revision()
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
        head = head_revision()
        # Every command opens the store: only a schema change is news.
        if before != head:
            log.info("store.migrated", dialect=engine.dialect.name, previous=before, head=head)
        else:
            log.debug("store.up_to_date", dialect=engine.dialect.name, head=head)
    finally:
        engine.dispose()


def migration_engine(url: str) -> Engine:
    """An unpooled engine for migrations: its connections never serve the store afterwards."""
    engine = make_engine(url, poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _foreign_keys_off)
    return engine


def _foreign_keys_off(dbapi_connection: Any, _record: Any) -> None:
    # Batch mode copies a table and drops the old one; with foreign keys on, the drop would fire
    # ON DELETE actions of the tables referring to it. Runs after the pragmas of make_engine.
    dbapi_connection.execute("PRAGMA foreign_keys=OFF")


def current_revision(url: str) -> str:
    """What `alembic current` prints for the database at `url` (e.g. "0001 (head)")."""
    config = alembic_config(url)
    command.current(config)
    stdout = config.stdout
    assert isinstance(stdout, io.StringIO)
    return stdout.getvalue().strip()
