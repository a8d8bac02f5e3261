"""Approach 1: the lower envelope of loss against FLOPs over model sizes trained at several budgets.

Hoffmann et al. (2022, section 3.1) read the envelope from smoothed training curves. Here each
run contributes its final loss only, because a run's cosine schedule is sized to its own token
budget and a checkpoint part-way through is not a compute-optimal run of that shorter length.
So for every model size with runs at two or more token budgets, loss is interpolated linearly in
log C between its runs; at each of `num_levels` log-spaced FLOP levels the size with the lowest
interpolated loss is N_opt, and D_opt is that size's tokens interpolated in log C.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fitting.approach2 import exponent_flags, fit_power_law
from fitting.conventions import FitData, data_summary
from fitting.results import Flag, PowerLawFit

logger = logging.getLogger(__name__)

# Two sizes on the envelope, plus one larger and one smaller so that neither optimum is at an edge.
MIN_SIZES = 2


def size_groups(num_params: np.ndarray) -> list[np.ndarray]:
    """Row indices per model size; sizes within 1e-9 (relative) are one size."""
    order = np.argsort(num_params, kind="stable")
    groups: list[list[int]] = []
    previous = None
    for index in order:
        value = num_params[index]
        if previous is None or abs(value - previous) > 1e-9 * previous:
            groups.append([])
        groups[-1].append(int(index))
        previous = value
    return [np.array(group, dtype=np.int64) for group in groups]


def envelope(data: FitData, weights: np.ndarray | None = None, num_levels: int = 30) -> pd.DataFrame:
    """Compute the lower envelope at log-spaced FLOP levels: compute_flops, n_opt, d_opt, loss_opt, size_index.

    Runs with weight 0 are left out and runs drawn twice count once, because a duplicated point
    changes no interpolation.
    """
    present = np.ones(data.num_runs, dtype=bool) if weights is None else weights > 0
    curves = []
    for group in size_groups(data.num_params):
        group = group[present[group]]
        log_c = np.log(data.compute_flops[group])
        unique_c, first = np.unique(log_c, return_index=True)
        if unique_c.size < 2:
            continue
        rows = group[first]
        curves.append((float(data.num_params[rows[0]]), unique_c, data.loss[rows], np.log(data.num_tokens[rows])))
    if len(curves) < MIN_SIZES + 1:
        return pd.DataFrame(columns=["compute_flops", "n_opt", "d_opt", "loss_opt", "size_index"])


    low = min(curve[1][0] for curve in curves)
    high = max(curve[1][-1] for curve in curves)
    levels = np.linspace(low, high, num_levels)
    loss = np.full((len(curves), num_levels), np.inf)
    log_tokens = np.full_like(loss, np.nan)
    for index, (_, log_c, run_loss, run_log_tokens) in enumerate(curves):
        inside = (levels >= log_c[0]) & (levels <= log_c[-1])
        loss[index, inside] = np.interp(levels[inside], log_c, run_loss)
        log_tokens[index, inside] = np.interp(levels[inside], log_c, run_log_tokens)
    best = np.argmin(loss, axis=0)
    columns = np.arange(num_levels)
    # Where the smallest or largest size wins, the true optimum may lie beyond the sampled
    # sizes, so those levels are censored rather than read as N_opt.
    interior = (best > 0) & (best < len(curves) - 1)
    frame = pd.DataFrame(
        {
            "compute_flops": np.exp(levels),
            "n_opt": np.array([curves[i][0] for i in best]),
            "d_opt": np.exp(log_tokens[best, columns]),
            "loss_opt": loss[best, columns],
            "size_index": best,
        }
    )
    frame.attrs["num_edge_levels"] = int((~interior).sum())
    interior_frame = frame[interior].reset_index(drop=True)
    interior_frame.attrs["num_edge_levels"] = int((~interior).sum())
    return interior_frame


def _power_laws(points: pd.DataFrame) -> tuple[float, float, float, float] | None:
    if points["n_opt"].nunique() < 2:
        return None
    log_c = np.log(points["compute_flops"].to_numpy())
    a, log_k_n = fit_power_law(log_c, np.log(points["n_opt"].to_numpy()))
    b, log_k_d = fit_power_law(log_c, np.log(points["d_opt"].to_numpy()))
    return a, b, log_k_n, log_k_d


def fit_approach1(data: FitData, num_levels: int = 30) -> PowerLawFit:
    """Fit Approach 1; raise ValueError when the envelope cannot be formed or has one size only."""
    points = envelope(data, num_levels=num_levels)
    sizes_with_curves = sum(
        np.unique(data.compute_flops[group]).size >= 2 for group in size_groups(data.num_params)
    )
    if sizes_with_curves < MIN_SIZES + 2:
        raise ValueError(
            f"Approach 1 needs at least {MIN_SIZES + 2} model sizes with runs at two or more "
            f"token budgets each, got {sizes_with_curves}: train each size at several token "
            "budgets (an IsoFLOP sweep with one run per size suits Approaches 2 and 3)"
        )
    if points.empty:
        raise ValueError(
            "Approach 1 found no FLOP level where a model size other than the smallest or "
            "largest has the lowest loss: add sizes around the optimum"
        )
    laws = _power_laws(points)
    if laws is None:
        raise ValueError(
            f"Approach 1 found one model size ({points['n_opt'].iloc[0]:.4g} parameters) on the "
            "whole lower envelope, so N_opt does not change with C over the sampled range: add "
            "larger and smaller models with runs that cross its curve"
        )
    a, b, log_k_n, log_k_d = laws
    flags = list(exponent_flags(a, b))
    num_edge_levels = points.attrs.get("num_edge_levels", 0)
    if num_edge_levels:
        flags.append(
            Flag(
                code="edge_minimum",
                message=f"{num_edge_levels} of {num_levels} FLOP levels have the smallest or largest "
                "model size as their optimum and were left out; add sizes beyond the sampled range",
            )
        )
    distinct = int(points["n_opt"].nunique())
    if distinct < 3:
        flags.append(Flag(code="few_points", message=f"only {distinct} model sizes lie on the envelope"))
    return PowerLawFit(
        approach=1,
        a=a,
        b=b,
        log_k_n=log_k_n,
        log_k_d=log_k_d,
        points=points.drop(columns=["size_index"]),
        **data_summary(data),
        flags=tuple(flags),
    )


def bootstrap_approach1(data: FitData, weights: np.ndarray, num_levels: int = 30) -> dict[str, np.ndarray]:
    """Refit Approach 1 under each row of run weights [R, n]; NaN where a resample fails."""
    out = {name: np.full(weights.shape[0], np.nan) for name in ("a", "b", "log_k_n", "log_k_d")}
    for row in range(weights.shape[0]):
        points = envelope(data, weights[row], num_levels)
        laws = None if points.empty else _power_laws(points)
        if laws is None:
            continue
        for name, value in zip(("a", "b", "log_k_n", "log_k_d"), laws):
            out[name][row] = value
    return out
