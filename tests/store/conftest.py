"""Fixtures that run every store test on SQLite and on a real PostgreSQL server.

The PostgreSQL server comes from $SCALELAB_TEST_POSTGRES_URL when it is set. Otherwise the
session starts a throwaway server from /usr/lib/postgresql/*/bin on a free loopback port
and stops it at the end. When neither works the PostgreSQL cases are skipped with the
reason, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# pytest puts tests/ on sys.path, where tests/store would be found as a namespace package
# named `store` that hides the real one installed in editable mode. The repository root
# first on sys.path makes `import store` find the real package.
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from store.pgserver import ThrowawayPostgres  # noqa: E402 - needs the path set above

POSTGRES_ENV = "SCALELAB_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the maintenance database of a running PostgreSQL server."""
    configured_url = os.environ.get(POSTGRES_ENV)
    if configured_url:
        yield configured_url
        return
    server = None
    try:
        server = ThrowawayPostgres()
        url = server.start()
    except (RuntimeError, OSError, subprocess.TimeoutExpired, LookupError) as error:
        if server is not None:
            server.stop()
        reason = f"no PostgreSQL server: set {POSTGRES_ENV} or install PostgreSQL server binaries ({error})"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield url
    finally:
        server.stop()


def _admin_conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = f"scalelab_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(postgres_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_admin_conninfo(postgres_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def shared_postgres_url(postgres_url: str) -> Iterator[str]:
    """URL of one PostgreSQL database at the latest schema, shared by the session's tests.

    Creating a database costs most of a second, so tests share this one and `db_url`
    empties its tables after each test.
    """
    import psycopg
    from sqlalchemy.engine import make_url

    from store import open_store

    name = f"scalelab_shared_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_conninfo(postgres_url), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    open_store(url).close()
    try:
        yield url
    finally:
        with psycopg.connect(_admin_conninfo(postgres_url), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_all(url: str) -> None:
    import psycopg

    from store.models import Base

    tables = ", ".join(table.name for table in Base.metadata.sorted_tables)
    with psycopg.connect(_admin_conninfo(url), autocommit=True) as connection:
        connection.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a database at the latest schema with empty tables, on each engine."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    url = request.getfixturevalue("shared_postgres_url")
    _truncate_all(url)
    yield url


@pytest.fixture(params=ENGINES)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a database without any table, on each engine."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    return request.getfixturevalue("fresh_postgres_url")


@pytest.fixture
def store(db_url: str):
    from store import open_store

    opened = open_store(db_url)
    yield opened
    opened.close()
