"""Shared fixtures: store URLs for a fresh SQLite file and a fresh PostgreSQL schema; the container engine.

PostgreSQL is the server at AUTOFIX_TEST_POSTGRES_URL (default: the local one, user postgres, database
test). Its tests fail when the server cannot be reached, so a broken setup is never mistaken for a
pass; set AUTOFIX_SKIP_POSTGRES=1 to skip them instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError

if TYPE_CHECKING:
    from sandbox.config import DockerConfig

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _redis_database_per_worker() -> None:
    """Under `pytest -n N` each worker gets a Redis database of its own (the base one plus its
    index), set before the test modules read AUTOFIX_TEST_BROKER_URL: the Celery tests flush theirs."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, ...
    if not worker:
        return
    base = os.environ.get("AUTOFIX_TEST_BROKER_URL", "redis://127.0.0.1:6379/7")
    prefix, _, database = base.rpartition("/")
    os.environ["AUTOFIX_TEST_BROKER_URL"] = f"{prefix}/{(int(database or 0) + int(worker.removeprefix('gw'))) % 16}"


_redis_database_per_worker()


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


# --- container engine (the docker sandbox backend) -------------------------------------------------


@pytest.fixture(scope="session")
def docker_config() -> DockerConfig:
    """The docker backend against the engine here (Podman's API at DOCKER_HOST in CI), image ready.

    Fails when no engine answers, like the PostgreSQL tests; AUTOFIX_SKIP_DOCKER=1 skips instead.
    The image is found by its recipe's hash, or built once (a few minutes: debootstrap) and kept.
    """
    from pipeline.errors import SandboxUnavailable
    from sandbox.config import DockerConfig
    from sandbox.docker import connect
    from sandbox.image import ensure_image, load_recipe

    if os.environ.get("AUTOFIX_SKIP_DOCKER") == "1":
        pytest.skip("AUTOFIX_SKIP_DOCKER=1")
    config = DockerConfig(base_url=os.environ.get("AUTOFIX_TEST_DOCKER_HOST") or None)
    try:
        client, _ = connect(config)
        ensure_image(client, load_recipe())
    except SandboxUnavailable as exc:
        pytest.fail(f"{exc} (.ci/run installs and starts Podman; set AUTOFIX_SKIP_DOCKER=1 to skip these tests)")
    client.close()
    return config
