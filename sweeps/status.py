"""Sweep status summaries and cancellation, read from and written to the store."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

RUN_STATUSES = ("pending", "running", "completed", "failed", "preempted", "diverged", "cancelled")
UNFINISHED_STATUSES = ("pending", "running", "preempted", "failed")


def sweep_status(store: Any, name: str | None = None) -> list[dict[str, Any]]:
    """Summarise each sweep (or only `name`): runs by status and the share of planned FLOPs done.

    FLOPs done count completed and diverged runs in full; running runs are not counted because the
    store contains their loss points, not a running total.
    """
    names = [name] if name else store.sweep_names()
    summaries = []
    for sweep in names:
        rows = store.runs(sweep)
        counts = {status: int((rows["status"] == status).sum()) for status in RUN_STATUSES}
        planned = float(rows["compute_flops"].fillna(0).sum())
        done_mask = rows["status"].isin(["completed", "diverged"])
        done = float(rows.loc[done_mask, "compute_flops"].fillna(0).sum())
        summaries.append(
            {
                "sweep": sweep,
                "num_runs": len(rows),
                "counts": counts,
                "compute_flops_planned": planned,
                "compute_flops_done": done,
                "progress": done / planned if planned else 0.0,
            }
        )
    return summaries


def cancel_sweep(store: Any, name: str) -> list[str]:
    """Mark every unfinished run of sweep `name` cancelled, and return their ids.

    A running driver polls the store, finds the mark, drops queued runs and requests running ones to
    checkpoint and stop. With no driver alive the mark alone is the whole effect; a later submit
    runs the cancelled runs again from their checkpoints.
    """
    rows = store.runs(name)
    run_ids = list(rows.loc[rows["status"].isin(UNFINISHED_STATUSES), "id"])
    for run_id in run_ids:
        store.set_run_status(run_id, "cancelled")
    logger.info("sweep %s: marked %d unfinished runs cancelled", name, len(run_ids))
    return run_ids
