"""Alembic migrations of the store; `store.engine.migrate` runs them."""
