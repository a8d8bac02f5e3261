"""Read-only SQL queries, for `scalelab sql`, `Store.read_sql` and notebooks.

Two independent guards stop a query from writing, in each engine:
- SQLite: the file is opened with `mode=ro`, so the library itself refuses any write, and an
  authorizer rejects every statement other than reads, with a message naming the action.
- PostgreSQL: the session starts with `default_transaction_read_only=on` and the connection is
  read-only, and the query runs as one prepared statement, which cannot hold a second command
  (so `COMMIT; DELETE ...` cannot escape the read-only transaction).
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from store.engine import SQLITE_BUSY_TIMEOUT_MS, display_url, parse_url, resolve_url, sqlite_path
from store.errors import StoreError

if TYPE_CHECKING:
    import pandas as pd

READ_ONLY_HELP = (
    "`scalelab sql` and read_sql are read-only; write through the Store API or `scalelab import`"
)

# PRAGMAs that only report; any other PRAGMA with an argument may change the database.
READ_ONLY_PRAGMAS = frozenset(
    {
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo",
        "foreign_key_list", "database_list", "collation_list", "function_list", "module_list",
        "pragma_list", "compile_options", "integrity_check", "quick_check", "foreign_key_check",
    }
)
ALLOWED_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
)
ACTION_NAMES = {
    value: name[len("SQLITE_"):].replace("_", " ").lower()
    for name, value in vars(sqlite3).items()
    if name.startswith("SQLITE_") and isinstance(value, int) and name not in (
        "SQLITE_OK", "SQLITE_DENY", "SQLITE_IGNORE",
    ) and not name.startswith(("SQLITE_LIMIT", "SQLITE_DBCONFIG"))
}


def read_only_query(url: str | None, query: str) -> pd.DataFrame:
    """Run one SQL statement read-only on the database at `url` and return a DataFrame."""
    import pandas as pd

    if not query or not query.strip():
        raise StoreError("empty SQL query: pass one statement, such as 'SELECT count(*) FROM runs'")
    resolved = resolve_url(url)
    parsed = parse_url(resolved)
    if parsed.get_backend_name() == "sqlite":
        columns, rows = _query_sqlite(display_url(resolved), parsed, query)
    else:
        columns, rows = _query_postgres(display_url(resolved), parsed, query)
    return pd.DataFrame.from_records(rows, columns=columns)


def _query_sqlite(url: str, parsed: Any, query: str) -> tuple[list[str], list[tuple]]:
    path = sqlite_path(parsed)
    if path is None:
        raise StoreError(f"cannot query {url!r} read-only: an in-memory database has no file to open")
    path = path.expanduser().resolve()
    if not path.is_file():
        raise StoreError(
            f"cannot open database {url!r}: file {str(path)!r} not found; "
            "check --db or $SCALELAB_DB, or create it by running a sweep or `scalelab import`"
        )
    denied: list[str] = []

    def authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        if action in ALLOWED_ACTIONS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and (arg2 is None or arg1 in READ_ONLY_PRAGMAS):
            return sqlite3.SQLITE_OK
        action_name = ACTION_NAMES.get(action, f"action {action}")
        target = " ".join(part for part in (arg1, arg2) if part)
        denied.append(f"{action_name} {target}".strip())
        return sqlite3.SQLITE_DENY

    connection = sqlite3.connect(
        f"file:{quote(str(path))}?mode=ro", uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000
    )
    try:
        connection.set_authorizer(authorize)
        cursor = connection.execute(query)
        columns = [description[0] for description in cursor.description or ()]
        rows = cursor.fetchall() if cursor.description else []
    except (sqlite3.Warning, sqlite3.ProgrammingError) as error:
        if "one statement" in str(error):
            raise StoreError(f"query rejected: {error}; pass a single SQL statement") from error
        raise StoreError(f"query failed on {url!r}: {error}") from error
    except sqlite3.Error as error:
        message = str(error)
        if denied:
            raise StoreError(f"query rejected ({denied[0]}): {READ_ONLY_HELP}") from error
        if "readonly" in message or "read-only" in message:
            raise StoreError(f"query rejected ({message}): {READ_ONLY_HELP}") from error
        raise StoreError(f"query failed on {url!r}: {message}") from error
    finally:
        connection.close()
    return columns, rows


def _query_postgres(url: str, parsed: Any, query: str) -> tuple[list[str], list[tuple]]:
    import psycopg

    conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        connection = psycopg.connect(
            conninfo, connect_timeout=10, options="-c default_transaction_read_only=on"
        )
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StoreError(
            f"cannot open database {url!r}: {reason}; check that the server is running and "
            "the host, port, user and database are right"
        ) from error
    try:
        connection.read_only = True
        with connection.cursor() as cursor:
            cursor.execute(query, prepare=True)
            columns = [column.name for column in cursor.description or ()]
            rows = cursor.fetchall() if cursor.description else []
        connection.rollback()
    except psycopg.errors.ReadOnlySqlTransaction as error:
        raise StoreError(f"query rejected ({error.diag.message_primary}): {READ_ONLY_HELP}") from error
    except psycopg.errors.SyntaxError as error:
        message = error.diag.message_primary or str(error)
        if "multiple commands" in message:
            raise StoreError(f"query rejected: {message}; pass a single SQL statement") from error
        raise StoreError(f"query failed on {url!r}: {message}") from error
    except psycopg.Error as error:
        message = (error.diag.message_primary if error.diag else None) or str(error)
        raise StoreError(f"query failed on {url!r}: {message}") from error
    finally:
        connection.close()
    return columns, rows
