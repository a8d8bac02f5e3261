"""The results store: every sweep, run, loss point, fit and prediction in SQL.

SQLite by default (`sqlite:///scalelab.db`), PostgreSQL with `postgresql+psycopg://...`.
"""

from store.errors import StoreError
from store.models import RUN_STATUSES
from store.store import Store, open_store


def read_sql(query: str, db: str | None = None):
    """Run one read-only SQL query on a database and return a pandas DataFrame.

    `db` defaults to $SCALELAB_DB, then sqlite:///scalelab.db; meant for notebooks.
    """
    from store.readonly import read_only_query

    return read_only_query(db, query)


__all__ = ["RUN_STATUSES", "Store", "StoreError", "open_store", "read_sql"]
