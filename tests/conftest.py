"""Shared fixtures: store URLs for a fresh SQLite file and a fresh PostgreSQL schema.

PostgreSQL is the server at AUTOFIX_TEST_POSTGRES_URL (default: the local one, user postgres, database
test). Its tests fail when the server cannot be reached, so a broken setup is never mistaken for a
pass; set AUTOFIX_SKIP_POSTGRES=1 to skip them instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def repo_env_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache of repo environments for the whole session: each distinct env is built once."""
    return tmp_path_factory.mktemp("repo-envs")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'autofix.db'}"


@pytest.fixture(scope="session")
def _postgres_server() -> str:
    if os.environ.get("AUTOFIX_SKIP_POSTGRES") == "1":
        pytest.skip("AUTOFIX_SKIP_POSTGRES=1")
    url = os.environ.get("AUTOFIX_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {make_url(url)!r} is unreachable ({exc.orig}); "
            "set AUTOFIX_SKIP_POSTGRES=1 to skip these tests"
        )
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(_postgres_server: str) -> Iterator[str]:
    """A URL whose connections use a new, empty schema of their own, dropped after the test."""
    schema = f"autofix_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(_postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
