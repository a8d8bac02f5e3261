"""Database URLs, engines and schema migrations.

SQLite runs in WAL mode so that readers do not block the writer, and with a busy timeout so
that a writer waits for another instead of failing. Every write transaction starts with
`BEGIN IMMEDIATE`, which takes the write lock up front. Two processes therefore never
deadlock on read locks that each wants to upgrade, a case where SQLite returns "database is
locked" at once without waiting.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from store.errors import StoreError
from store.floats import json_safe

logger = logging.getLogger(__name__)

DEFAULT_URL = "sqlite:///scalelab.db"
ENV_VAR = "SCALELAB_DB"
# How long a SQLite writer waits for another writer's lock before it gives up.
SQLITE_BUSY_TIMEOUT_MS = 60_000
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any 64-bit number works; it only has to be the same in every process that migrates.
POSTGRES_MIGRATION_LOCK = 0x5CA1E1AB

URL_HELP = (
    "use sqlite:///PATH (a file; its folder must exist) or "
    "postgresql+psycopg://USER:PASSWORD@HOST:PORT/DATABASE"
)


def display_url(url: str) -> str:
    """Return the URL for messages and logs, with any password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def resolve_url(url: str | None) -> str:
    """Return the URL to open: the argument, else $SCALELAB_DB, else sqlite:///scalelab.db."""
    if url:
        return url
    return os.environ.get(ENV_VAR) or DEFAULT_URL


def parse_url(url: str) -> URL:
    """Parse a database URL, mapping `postgresql://` and `postgres://` onto psycopg 3."""
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise StoreError(f"cannot open database {url!r}: not a database URL; {URL_HELP}") from error
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise StoreError(
            f"cannot open database {display_url(url)!r}: unsupported scheme {parsed.drivername!r}; "
            f"{URL_HELP}"
        )
    return parsed


def sqlite_path(parsed: URL) -> Path | None:
    """Return the file of a SQLite URL, or None for an in-memory database."""
    database = parsed.database
    if not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    return Path(database)


def _json_serializer(value: Any) -> str:
    return json.dumps(json_safe(value), allow_nan=False)


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def configure_connection(dbapi_connection: Any, connection_record: Any) -> None:
        # The driver's own transaction handling is turned off so that `begin` below decides.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        # NORMAL is durable across application crashes in WAL mode; only a power loss can
        # drop the last transactions.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: Any) -> None:
        if connection.get_execution_options().get("read_only"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def create_store_engine(url: str) -> Engine:
    """Create the read-write engine for a URL, raising StoreError when it cannot connect."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {"json_serializer": _json_serializer}
    if backend == "sqlite":
        path = sqlite_path(parsed)
        if path is None:
            # One shared connection, or each connection would see its own empty database.
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            folder = path.expanduser().resolve().parent
            if not folder.is_dir():
                raise StoreError(
                    f"cannot open database {display_url(url)!r}: folder {str(folder)!r} does not exist; "
                    "create it or choose another path"
                )
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": 10})
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ArgumentError) as error:
        raise StoreError(f"cannot open database {display_url(url)!r}: {error}; {URL_HELP}") from error
    if backend == "sqlite":
        _install_sqlite_hooks(engine)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, SQLAlchemyError) as error:
        engine.dispose()
        reason = str(getattr(error, "orig", error)).strip().splitlines()[0]
        fix = (
            "check that the server is running and the host, port, user and database are right"
            if backend == "postgresql"
            else "check the path and its permissions"
        )
        raise StoreError(f"cannot open database {display_url(url)!r}: {reason}; {fix}") from error
    return engine


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """Return the newest migration revision of this package."""
    with _quiet_alembic():
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """Return the database's migration revision, or None for an empty database."""
    with _quiet_alembic(), engine.connect().execution_options(read_only=True) as connection:
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(connection).get_current_revision()


@contextlib.contextmanager
def _quiet_alembic() -> Iterator[None]:
    # Alembic logs every plugin and context setup at INFO; our own log line names the upgrade.
    alembic_logger = logging.getLogger("alembic")
    level = alembic_logger.level
    alembic_logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        alembic_logger.setLevel(level)


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the schema to `revision`; concurrent callers upgrade it once.

    SQLite serializes the upgrade through BEGIN IMMEDIATE, PostgreSQL through an advisory lock
    held until the migration transaction ends.
    """
    if revision == "head" and current_revision(engine) == head_revision():
        return
    with _quiet_alembic():
        from alembic import command
    config = _alembic_config()
    with _quiet_alembic(), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"SELECT pg_advisory_xact_lock({POSTGRES_MIGRATION_LOCK})"))
        config.attributes["connection"] = connection
        logger.info("migrating database %s to revision %s", engine.url.render_as_string(), revision)
        command.upgrade(config, revision)
