"""Alembic environment for the store: which database to migrate and how.

autofix calls the migrations itself (sql_engine.migrate) and hands over an open connection, already
holding the migration lock; the alembic command line gets its URL from `-x url=...`, sqlalchemy.url, or
else the autofix settings. SQLite runs in batch mode, since it can alter tables only by rebuilding them.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from pipeline.adapters.sql_engine import migration_engine
from pipeline.adapters.sql_models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from pipeline.settings import Settings  # only the command line needs settings

    return Settings().resolved_store_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        transactional_ddl=True,  # SQLite too: SQLAlchemy emits BEGIN (sql_engine), so DDL is transactional
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
        return
    if config.cmd_opts is not None and config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    engine = migration_engine(_url())
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
