"""Alembic environment of the store.

`store.engine.migrate` runs it with an open connection in `config.attributes["connection"]`,
so no alembic.ini is needed. From a shell, the same upgrade runs on the next `open_store`.
"""

from alembic import context

from store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the store's migrations run through store.open_store(url), which passes a connection; "
        "the alembic command line is not configured for this package"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most constraints; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)

with context.begin_transaction():
    context.run_migrations()
