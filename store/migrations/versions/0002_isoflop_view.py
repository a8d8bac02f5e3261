"""Index runs by FLOP budget and add the `isoflop_points` view.

The view is the table an IsoFLOP fit reads: one row per completed run whose final validation
loss is finite, with the sweep's name beside its budget, N, D and C.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ISOFLOP_POINTS = """
CREATE VIEW isoflop_points AS
SELECT
    runs.id AS run_id,
    sweeps.name AS sweep,
    runs.budget_flops,
    runs.num_params,
    runs.num_non_embedding_params,
    runs.num_tokens,
    runs.compute_flops,
    runs.compute_flops_6nd,
    runs.final_val_loss AS final_loss
FROM runs JOIN sweeps ON sweeps.id = runs.sweep_id
WHERE runs.status = 'completed' AND runs.final_val_loss_kind = 'finite'
"""


def upgrade() -> None:
    op.create_index("ix_runs_budget_flops", "runs", ["budget_flops"])
    op.execute(ISOFLOP_POINTS)


def downgrade() -> None:
    op.execute("DROP VIEW isoflop_points")
    op.drop_index("ix_runs_budget_flops", table_name="runs")
