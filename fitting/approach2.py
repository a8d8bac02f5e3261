"""Approach 2: an IsoFLOP parabola per budget, then power laws in C over the budgets' minima.

For each FLOP budget the final losses are fitted with a parabola in log N (and, separately, in
log D); its vertex is that budget's N_opt (D_opt). Hoffmann et al. (2022, section 3.2). Weighted
least squares is solved through 3x3 normal equations, so that many bootstrap resamples (run
weights) are fitted at once.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fitting.conventions import FitData, data_summary
from fitting.results import BudgetRejection, Flag, PowerLawFit

logger = logging.getLogger(__name__)

MIN_POINTS_PER_BUDGET = 4
MIN_BUDGETS = 2


def budget_groups(data: FitData) -> list[np.ndarray]:
    """Row indices of each FLOP budget, budgets in ascending order.

    Budgets within 1e-6 (relative) of each other are one budget, because stored budgets that
    went through a text format may differ in the last digits.
    """
    order = np.argsort(data.budget_flops, kind="stable")
    groups: list[list[int]] = []
    previous = None
    for index in order:
        budget = data.budget_flops[index]
        if previous is None or abs(budget - previous) > 1e-6 * previous:
            groups.append([])
        groups[-1].append(int(index))
        previous = budget
    return [np.array(group, dtype=np.int64) for group in groups]


def weighted_parabolas(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Least-squares coefficients (c0, c1, c2) of y = c0 + c1 x + c2 x^2 for each weight row.

    x, y [n]; weights [R, n]; returns [R, 3], NaN where the weighted design is singular (fewer
    than 3 distinct x with positive weight).
    """
    centre = x.mean()
    xc = x - centre
    powers = np.stack([xc**k for k in range(5)])  # [5, n]
    moments = weights @ powers.T  # [R, 5]
    rhs = weights @ np.stack([y, xc * y, xc**2 * y]).T  # [R, 3]
    normal = np.stack(
        [moments[:, 0:3], moments[:, 1:4], moments[:, 2:5]], axis=1
    )  # [R, 3, 3]
    distinct = (weights[:, _distinct_columns(xc)] > 0).sum(axis=1)
    solution = np.full((weights.shape[0], 3), np.nan)
    solvable = distinct >= 3
    if solvable.any():
        solution[solvable] = np.linalg.solve(normal[solvable], rhs[solvable][..., None])[..., 0]
    # Move the coefficients back from centred x to x.
    c0, c1, c2 = solution[:, 0], solution[:, 1], solution[:, 2]
    return np.stack([c0 - c1 * centre + c2 * centre**2, c1 - 2 * c2 * centre, c2], axis=1)


def _distinct_columns(x: np.ndarray) -> np.ndarray:
    """Index of the first occurrence of each distinct value of x."""
    _, first = np.unique(x, return_index=True)
    return first


def vertices(
    x: np.ndarray, y: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Vertex (x*, y*) of each weighted parabola, with a rejection reason or None per row.

    A parabola is rejected when it has fewer than 4 distinct points with positive weight, opens
    downwards (no minimum), or has its minimum outside the sampled x range, because in each case
    the vertex is an extrapolation rather than a measured optimum.
    """
    coefficients = weighted_parabolas(x, y, weights)
    c0, c1, c2 = coefficients.T
    with np.errstate(divide="ignore", invalid="ignore"):
        x_star = -c1 / (2 * c2)
        y_star = c0 - c1**2 / (4 * c2)
    points = (weights[:, _distinct_columns(x)] > 0).sum(axis=1)
    reasons: list[str | None] = []
    with np.errstate(over="ignore"):
        for row in range(weights.shape[0]):
            reasons.append(_rejection(x, weights[row], points[row], c2[row], x_star[row]))
    return x_star, y_star, reasons


def _rejection(x, row_weights, num_points, curvature, x_star) -> str | None:
    """Return why one weighted parabola has no usable minimum, or None when it has one."""
    present = x[row_weights > 0]
    if num_points < MIN_POINTS_PER_BUDGET:
        return (
            f"only {int(num_points)} distinct points; a parabola needs at least "
            f"{MIN_POINTS_PER_BUDGET} to have a residual degree of freedom"
        )
    if not curvature > 0:
        return f"parabola opens downwards (curvature {curvature:.3g}), so it has no minimum"
    if not (present.min() <= x_star <= present.max()):
        return (
            f"minimum at {np.exp(x_star):.4g} lies outside the sampled range "
            f"{np.exp(present.min()):.4g} to {np.exp(present.max()):.4g}"
        )
    return None


def budget_compute(log_n: np.ndarray, log_c: np.ndarray, log_n_opt: float) -> float:
    """C at the optimum of one budget: a line of log C against log N, read at log N_opt.

    Runs of one budget share 6 N D, but the C convention with attention (or a non-embedding N)
    makes C vary a little with N; the line reads C where the optimum lies.
    """
    if np.ptp(log_c) == 0 or np.ptp(log_n) == 0:
        return float(np.exp(log_c.mean()))
    slope, intercept = np.polyfit(log_n, log_c, 1)
    return float(np.exp(intercept + slope * log_n_opt))


def fit_power_law(log_c: np.ndarray, log_y: np.ndarray) -> tuple[float, float]:
    """Least-squares (exponent, log coefficient) of y = exp(log_coefficient) * C^exponent."""
    exponent, log_coefficient = np.polyfit(log_c, log_y, 1)
    return float(exponent), float(log_coefficient)


def fit_approach2(data: FitData) -> PowerLawFit:
    """Fit Approach 2; raise ValueError when fewer than 2 budgets survive the parabola checks."""
    log_n = np.log(data.num_params)
    log_d = np.log(data.num_tokens)
    log_c = np.log(data.compute_flops)
    rows = []
    rejected: list[BudgetRejection] = []
    for group in budget_groups(data):
        budget = float(data.budget_flops[group[0]])
        ones = np.ones((1, group.size))
        n_star, n_loss, n_reason = vertices(log_n[group], data.loss[group], ones)
        d_star, d_loss, d_reason = vertices(log_d[group], data.loss[group], ones)
        if n_reason[0] is not None:
            rejected.append(BudgetRejection(budget_flops=budget, variable="num_params", reason=n_reason[0]))
        if d_reason[0] is not None:
            rejected.append(BudgetRejection(budget_flops=budget, variable="num_tokens", reason=d_reason[0]))
        if n_reason[0] is None and d_reason[0] is None:
            rows.append(
                {
                    "budget_flops": budget,
                    "compute_flops": budget_compute(log_n[group], log_c[group], float(n_star[0])),
                    "n_opt": float(np.exp(n_star[0])),
                    "d_opt": float(np.exp(d_star[0])),
                    "loss_opt": float(n_loss[0]),
                    "num_runs": int(group.size),
                }
            )
    for rejection in rejected:
        logger.debug("Approach 2 rejected budget %.4g (%s): %s", rejection.budget_flops, rejection.variable, rejection.reason)
    if len(rows) < MIN_BUDGETS:
        shown = "; ".join(f"C={r.budget_flops:.4g} ({r.variable}): {r.reason}" for r in rejected[:3])
        more = f"; and {len(rejected) - 3} more" if len(rejected) > 3 else ""
        reasons = (shown + more) or "none rejected"
        raise ValueError(
            f"Approach 2 needs at least {MIN_BUDGETS} budgets with a valid IsoFLOP minimum, got "
            f"{len(rows)} (rejected: {reasons}): add budgets, or add model sizes around each minimum"
        )
    points = pd.DataFrame(rows)
    a, log_k_n = fit_power_law(np.log(points["compute_flops"]), np.log(points["n_opt"]))
    b, log_k_d = fit_power_law(np.log(points["compute_flops"]), np.log(points["d_opt"]))
    flags = [
        Flag(code="rejected_budget", message=f"budget {r.budget_flops:.4g} ({r.variable}): {r.reason}")
        for r in rejected
    ]
    if len(rows) == MIN_BUDGETS:
        flags.append(Flag(code="two_budgets", message="only 2 budgets: the power law passes exactly through them and has no residual to judge it by"))
    flags += exponent_flags(a, b)
    return PowerLawFit(
        approach=2,
        a=a,
        b=b,
        log_k_n=log_k_n,
        log_k_d=log_k_d,
        points=points,
        **data_summary(data),
        rejected=tuple(rejected),
        flags=tuple(flags),
    )


def exponent_flags(a: float, b: float) -> list[Flag]:
    """Flag exponents of N_opt and D_opt outside 0.1-0.9, which no published LLM sweep reports."""
    flags = []
    for name, value in (("a", a), ("b", b)):
        if not 0.1 <= value <= 0.9:
            flags.append(Flag(code="absurd_exponent", message=f"{name}={value:.4g} lies outside 0.1-0.9"))
    if abs(a + b - 1.0) > 0.1:
        flags.append(
            Flag(code="exponents_inconsistent", message=f"a + b = {a + b:.4g}; with C proportional to N D they should add up to about 1")
        )
    return flags


def bootstrap_approach2(data: FitData, weights: np.ndarray) -> dict[str, np.ndarray]:
    """Refit Approach 2 under each row of run weights [R, n]; NaN where a resample fails."""
    log_n = np.log(data.num_params)
    log_d = np.log(data.num_tokens)
    log_c = np.log(data.compute_flops)
    num_resamples = weights.shape[0]
    groups = budget_groups(data)
    log_c_opt = np.full((num_resamples, len(groups)), np.nan)
    log_n_opt = np.full_like(log_c_opt, np.nan)
    log_d_opt = np.full_like(log_c_opt, np.nan)
    for column, group in enumerate(groups):
        w = weights[:, group]
        n_star, _, n_reason = vertices(log_n[group], data.loss[group], w)
        d_star, _, d_reason = vertices(log_d[group], data.loss[group], w)
        valid = np.array([r is None for r in n_reason]) & np.array([r is None for r in d_reason])
        if np.ptp(log_c[group]) > 0 and np.ptp(log_n[group]) > 0:
            slope, intercept = np.polyfit(log_n[group], log_c[group], 1)
            c_at = intercept + slope * n_star
        else:
            c_at = np.full(num_resamples, log_c[group].mean())
        log_c_opt[valid, column] = c_at[valid]
        log_n_opt[valid, column] = n_star[valid]
        log_d_opt[valid, column] = d_star[valid]
    a = np.full(num_resamples, np.nan)
    b = np.full_like(a, np.nan)
    log_k_n = np.full_like(a, np.nan)
    log_k_d = np.full_like(a, np.nan)
    for row in range(num_resamples):
        keep = np.isfinite(log_c_opt[row])
        if keep.sum() < MIN_BUDGETS:
            continue
        a[row], log_k_n[row] = fit_power_law(log_c_opt[row, keep], log_n_opt[row, keep])
        b[row], log_k_d[row] = fit_power_law(log_c_opt[row, keep], log_d_opt[row, keep])
    return {"a": a, "b": b, "log_k_n": log_k_n, "log_k_d": log_k_d}
