"""L-BFGS over many independent problems at once, as one batch of tensor operations.

Each row of the batch is its own minimisation (one start, or one start of one bootstrap
resample). Every iteration runs the two-loop recursion, an Armijo backtracking line search and
the convergence checks for all rows together, and drops converged rows from the batch so that
later iterations only pay for the rows still moving.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import torch

logger = logging.getLogger(__name__)

# fg(x, rows) -> (f, g): objective values [S] and gradients [S, P] of the problems `rows` at x [S, P].
ObjectiveFn = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True, kw_only=True)
class BatchedResult:
    """Final iterates of a batched L-BFGS run; one row per problem."""

    x: torch.Tensor
    """Final parameters [S, P]."""
    f: torch.Tensor
    """Objective at x [S]."""
    grad: torch.Tensor
    """Gradient at x [S, P]."""
    iterations: torch.Tensor
    """Iterations each row ran [S]."""
    converged: torch.Tensor
    """True where the gradient or objective tolerance was met [S]; False where the row ran out of
    iterations or its line search failed."""


def minimize_batched(
    fg: ObjectiveFn,
    x0: torch.Tensor,
    *,
    history: int = 10,
    max_iter: int = 1000,
    gtol: float = 1e-9,
    ftol: float = 1e-13,
    max_line_search: int = 30,
    armijo: float = 1e-4,
    max_step: float = 1.0,
    merge_every: int = 5,
    merge_resolution: float = 1e-3,
) -> BatchedResult:
    """Minimise S independent smooth objectives from the starts x0 [S, P] with L-BFGS.

    A row converges when the largest absolute gradient component is below `gtol`, or when its
    objective improved by less than `ftol * max(|f|, 1e-300)` on three iterations in a row.

    Every `merge_every` iterations, active rows whose iterates agree to `merge_resolution` in
    every coordinate (and that minimise the same problem, `fg.problem_of(rows)` where fg has it)
    are merged: one keeps running and the others take its final result. Starts that reach the
    same point follow the same path from there, so this only removes repeated work; it is what
    makes thousands of grid starts, most of which fall into a few basins, cheap.
    """
    x = x0.clone()
    num_rows, num_dims = x.shape
    all_rows = torch.arange(num_rows)
    f, g = fg(x, all_rows)

    s_hist = torch.zeros(num_rows, history, num_dims, dtype=x.dtype)
    y_hist = torch.zeros(num_rows, history, num_dims, dtype=x.dtype)
    rho = torch.zeros(num_rows, history, dtype=x.dtype)
    # Initial inverse-Hessian scale; before the first curvature pair, scale the steepest-descent
    # step so that its first trial moves x by at most 1 in the largest coordinate.
    gamma = 1.0 / g.abs().amax(dim=1).clamp_min(1e-300)
    small_steps = torch.zeros(num_rows, dtype=torch.int64)
    iterations = torch.zeros(num_rows, dtype=torch.int64)
    converged = g.abs().amax(dim=1) < gtol
    active = ~converged

    merged_into = torch.arange(num_rows)
    problem_of = getattr(fg, "problem_of", None)

    for step in range(max_iter):
        rows = active.nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        if merge_every and step > 0 and step % merge_every == 0 and rows.numel() > 1:
            rows = _merge_duplicates(x, rows, active, merged_into, merge_resolution, problem_of)
        gr = g[rows]
        direction = -_two_loop(gr, s_hist[rows], y_hist[rows], rho[rows], gamma[rows], step, history)

        slope = (gr * direction).sum(dim=1)
        not_descent = ~(slope < 0)
        if bool(not_descent.any()):
            # The quasi-Newton model went bad for these rows: restart them from steepest descent.
            bad = rows[not_descent]
            rho[bad] = 0.0
            gamma[bad] = 1.0 / g[bad].abs().amax(dim=1).clamp_min(1e-300)
            direction[not_descent] = -gamma[bad, None] * g[bad]
            slope[not_descent] = (g[bad] * direction[not_descent]).sum(dim=1)

        new_x, new_f, new_g, accepted = _backtrack(
            fg, x[rows], f[rows], direction, slope, rows, max_line_search, armijo, max_step
        )

        # Rows whose line search found no decrease are at a point where the model of the
        # objective is no better than machine precision; stop them there.
        stalled = rows[~accepted]
        active[stalled] = False
        converged[stalled] = g[stalled].abs().amax(dim=1) < gtol

        moved = rows[accepted]
        s = new_x[accepted] - x[moved]
        y = new_g[accepted] - g[moved]
        sy = (s * y).sum(dim=1)
        yy = (y * y).sum(dim=1)
        curvature_ok = sy > 1e-16 * (s.norm(dim=1) * y.norm(dim=1)).clamp_min(1e-300)
        slot = step % history
        s_hist[moved, slot] = s
        y_hist[moved, slot] = y
        rho[moved, slot] = torch.where(curvature_ok, 1.0 / sy.clamp_min(1e-300), torch.zeros_like(sy))
        gamma[moved] = torch.where(curvature_ok, sy / yy.clamp_min(1e-300), gamma[moved])
        # Rows that did not move keep their old pair out of this slot.
        rho[stalled, slot] = 0.0

        decrease = f[moved] - new_f[accepted]
        scale = torch.maximum(f[moved].abs(), new_f[accepted].abs()).clamp_min(1e-300)
        small = decrease <= ftol * scale
        small_steps[moved] = torch.where(small, small_steps[moved] + 1, torch.zeros_like(small_steps[moved]))

        x[moved] = new_x[accepted]
        f[moved] = new_f[accepted]
        g[moved] = new_g[accepted]
        iterations[rows] += 1

        done = (g[moved].abs().amax(dim=1) < gtol) | (small_steps[moved] >= 3)
        converged[moved[done]] = True
        active[moved[done]] = False

    # Merged rows take the result of the row they were merged into (following chains of merges).
    while True:
        target = merged_into[merged_into]
        if bool((target == merged_into).all()):
            break
        merged_into = target
    return BatchedResult(
        x=x[merged_into], f=f[merged_into], grad=g[merged_into], iterations=iterations,
        converged=converged[merged_into],
    )


def _merge_duplicates(x, rows, active, merged_into, resolution, problem_of):
    """Deactivate active rows whose iterate duplicates another's; return the rows left active."""
    keys = torch.round(x[rows] / resolution).to(torch.int64)
    if problem_of is not None:
        keys = torch.cat([problem_of(rows).to(torch.int64)[:, None], keys], dim=1)
    _, inverse = torch.unique(keys, dim=0, return_inverse=True)
    # The first row of each group of equal keys keeps running.
    first = torch.full((int(inverse.max()) + 1,), rows.numel(), dtype=torch.int64)
    first.scatter_reduce_(0, inverse, torch.arange(rows.numel()), reduce="amin")
    keeper = rows[first[inverse]]
    duplicate = keeper != rows
    if bool(duplicate.any()):
        merged_into[rows[duplicate]] = keeper[duplicate]
        active[rows[duplicate]] = False
        rows = rows[~duplicate]
    return rows


def _two_loop(
    g: torch.Tensor,
    s_hist: torch.Tensor,
    y_hist: torch.Tensor,
    rho: torch.Tensor,
    gamma: torch.Tensor,
    step: int,
    history: int,
) -> torch.Tensor:
    """Apply the L-BFGS inverse-Hessian estimate to g [S, P] (Nocedal and Wright, algorithm 7.4).

    Pairs with rho = 0 (never written, or rejected for bad curvature) drop out on their own.
    """
    q = g.clone()
    newest_first = [(step - 1 - j) % history for j in range(min(step, history))]
    coefficients = []
    for slot in newest_first:
        a = rho[:, slot] * (s_hist[:, slot] * q).sum(dim=1)
        q = q - a[:, None] * y_hist[:, slot]
        coefficients.append(a)
    r = gamma[:, None] * q
    for slot, a in zip(reversed(newest_first), reversed(coefficients)):
        b = rho[:, slot] * (y_hist[:, slot] * r).sum(dim=1)
        r = r + s_hist[:, slot] * (a - b)[:, None]
    return r


def _backtrack(
    fg: ObjectiveFn,
    x: torch.Tensor,
    f: torch.Tensor,
    direction: torch.Tensor,
    slope: torch.Tensor,
    rows: torch.Tensor,
    max_line_search: int,
    armijo: float,
    max_step: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shrink the step until the Armijo condition holds, for all rows together.

    The first trial step is 1, or less where that would move a coordinate by more than
    `max_step`; each retry takes the minimum of the quadratic through f, the slope and the failed
    trial, kept within 0.1 to 0.5 of the failed step.
    """
    new_x = x.clone()
    new_f = f.clone()
    new_g = torch.zeros_like(x)
    accepted = torch.zeros(x.shape[0], dtype=torch.bool)
    t = (max_step / direction.abs().amax(dim=1).clamp_min(1e-300)).clamp(max=1.0)
    pending = torch.arange(x.shape[0])
    for _ in range(max_line_search):
        trial_x = x[pending] + t[pending, None] * direction[pending]
        trial_f, trial_g = fg(trial_x, rows[pending])
        ok = torch.isfinite(trial_f) & (trial_f <= f[pending] + armijo * t[pending] * slope[pending])
        done = pending[ok]
        new_x[done] = trial_x[ok]
        new_f[done] = trial_f[ok]
        new_g[done] = trial_g[ok]
        accepted[done] = True
        failed = pending[~ok]
        if failed.numel() == 0:
            break
        t_failed = t[failed]
        curvature = trial_f[~ok] - f[failed] - slope[failed] * t_failed
        t_quadratic = -slope[failed] * t_failed**2 / (2.0 * curvature)
        t_quadratic = torch.where(torch.isfinite(t_quadratic), t_quadratic, 0.1 * t_failed)
        t[failed] = torch.minimum(torch.maximum(t_quadratic, 0.1 * t_failed), 0.5 * t_failed)
        pending = failed
    return new_x, new_f, new_g, accepted
