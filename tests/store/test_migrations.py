"""Schema migrations: a database made at the first revision upgrades with its data intact."""

from __future__ import annotations

import math

from sqlalchemy import text

from store import open_store
from store.engine import create_store_engine, current_revision, head_revision, migrate

FIRST_REVISION = "0001"


def test_upgrade_from_first_revision_keeps_data(empty_db_url):
    engine = create_store_engine(empty_db_url)
    migrate(engine, FIRST_REVISION)
    assert current_revision(engine) == FIRST_REVISION
    with engine.begin() as connection:
        has_view = connection.execute(text("SELECT 1 FROM sweeps")).all()
        assert has_view == []
        connection.execute(
            text(
                "INSERT INTO sweeps (id, name, spec, external, created_at, updated_at) "
                "VALUES (1, 'old', '{\"budgets\": [1e12]}', false, :now, :now)"
            ),
            {"now": "2024-05-01 12:00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO runs (id, sweep_id, num_params, num_tokens, compute_flops, budget_flops, "
                "status, attempts, retries, final_val_loss, final_val_loss_kind, created_at, updated_at) "
                "VALUES ('r1', 1, 1e6, 2e7, 1.2e14, 1.2e14, 'completed', 1, 0, 3.5, 'finite', :now, :now), "
                "('r2', 1, 2e6, 1e7, 1.2e14, 1.2e14, 'diverged', 1, 0, :inf, 'nan', :now, :now)"
            ),
            {"now": "2024-05-01 12:00:00", "inf": math.inf},
        )
        connection.execute(
            text(
                "INSERT INTO loss_points (run_id, step, tokens_seen, train_loss, train_loss_kind) "
                "VALUES ('r1', 0, 0, 9.0, 'finite'), ('r1', 10, 5120, 5.0, 'finite')"
            )
        )
    engine.dispose()

    with open_store(empty_db_url) as store:
        assert current_revision(store.engine) == head_revision() != FIRST_REVISION
        runs = store.runs("old").set_index("id")
        assert runs.loc["r1", "final_val_loss"] == 3.5
        assert math.isnan(runs.loc["r2", "final_val_loss"])
        assert runs.loc["r1", "created_at"].year == 2024
        assert store.loss_points("r1")["train_loss"].tolist() == [9.0, 5.0]
        assert store.sweep("old")["spec"] == {"budgets": [1e12]}
        # The view added after the first revision returns the old rows.
        view = store.read_sql("SELECT run_id, final_loss FROM isoflop_points")
        assert view.to_dict(orient="records") == [{"run_id": "r1", "final_loss": 3.5}]


def test_fresh_database_is_at_head(empty_db_url):
    with open_store(empty_db_url) as store:
        assert current_revision(store.engine) == head_revision()


def test_models_match_migrations(empty_db_url):
    """The SQLAlchemy models and the migrations describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from store.models import Base

    with open_store(empty_db_url) as store, store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []
