"""The figures of each dashboard view, built from `DashboardData`; shared by the app and the report."""

from __future__ import annotations

import logging

import pandas as pd
import plotly.graph_objects as go

from dashboards import figures
from dashboards.analysis import APPROACH_LABELS, SweepAnalysis
from dashboards.data import DashboardData

logger = logging.getLogger(__name__)

# View id -> tab label, in the order the app shows them.
VIEWS = {
    "runs": "Sweeps and runs",
    "curves": "Training curves",
    "isoflop": "IsoFLOP profiles",
    "approach1": "Approach 1 envelope",
    "approach3": "Approach 3 contours",
    "frontier": "N_opt(C) and D_opt(C)",
    "predictions": "LLaMA predictions",
}

# Points per run kept in drawn curves: enough to show the shape of a cosine-schedule curve,
# few enough that 200 runs render in a browser in well under a second.
CURVE_POINTS_APP = 300
CURVE_POINTS_ENVELOPE = 200
# Default number of runs drawn in the training-curves view when none are chosen.
DEFAULT_CURVE_RUNS = 12


def default_curve_runs(runs: pd.DataFrame, limit: int = DEFAULT_CURVE_RUNS) -> list[str]:
    """Pick the runs drawn when the user chose none: the lowest-loss run of each budget first."""
    if runs.empty:
        return []
    ranked = runs.assign(_loss=runs["final_loss"].fillna(float("inf"))).sort_values("_loss", kind="stable")
    best_per_budget = ranked.drop_duplicates("budget_flops")["run_id"].tolist()
    rest = [run_id for run_id in ranked["run_id"] if run_id not in best_per_budget]
    return (best_per_budget + rest)[:limit]


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Return the runs table the views show: status, N, D, C and final loss per run."""
    table = runs[
        ["run_id", "status", "budget_flops", "num_params", "num_non_embedding_params",
         "num_tokens", "compute_flops", "final_loss"]
    ].reset_index(drop=True)
    return table


def curve_figures(data: DashboardData, sweep: str, run_ids: list[str] | None, *,
                  hide_failed: bool, max_points: int = CURVE_POINTS_APP) -> list[go.Figure]:
    """Build the training-curve figures (against tokens, then against FLOPs) of chosen runs."""
    runs = data.runs(sweep, hide_failed=hide_failed)
    chosen = [run_id for run_id in (run_ids or []) if run_id in runs.index] or default_curve_runs(runs)
    points = figures.downsample_curves(data.loss_points(chosen), max_points)
    return [
        figures.training_curves_figure(points, runs, x_axis="tokens"),
        figures.training_curves_figure(points, runs, x_axis="flops"),
    ]


def envelope_figure(data: DashboardData, sweep: str, analysis: SweepAnalysis, *,
                    hide_failed: bool, max_points: int = CURVE_POINTS_ENVELOPE) -> go.Figure:
    """Build the Approach 1 envelope figure from every run's curve of the sweep."""
    runs = data.runs(sweep, hide_failed=hide_failed)
    points = figures.downsample_curves(data.loss_points(list(runs["run_id"])), max_points)
    return figures.approach1_figure(points, runs, analysis.approaches.get("approach1"))


def fit_status_lines(analysis: SweepAnalysis) -> list[str]:
    """Describe in one line per approach whether it was fitted, and if not, why."""
    lines = []
    for name, result in analysis.approaches.items():
        label = APPROACH_LABELS.get(name, name)
        if result.error:
            lines.append(f"{label}: not fitted, {result.error}")
        elif result.n_opt is not None:
            lines.append(
                f"{label}: N_opt ∝ C^{result.n_opt.exponent:.3f}, D_opt ∝ C^{result.d_opt.exponent:.3f}"
                if result.d_opt is not None else f"{label}: N_opt ∝ C^{result.n_opt.exponent:.3f}"
            )
    return lines
