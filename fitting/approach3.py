r"""Approach 3: the parametric loss $L(N, D) = E + A / N^\alpha + B / D^\beta$.

Fitted as Hoffmann et al. (2022, section 3.3 and appendix D.2) describe it, with the correction
of Besiroglu et al. (2024) that the Huber losses are summed over runs rather than averaged:

$$\min_{a, b, e, \alpha, \beta} \sum_i \mathrm{Huber}_{\delta}\big(
  \mathrm{LSE}(a - \alpha \log N_i,\ b - \beta \log D_i,\ e) - \log L_i\big),\quad \delta = 10^{-3}$$

with $A = e^a$, $B = e^b$, $E = e^e$, from the grid of 4,500 starts $\alpha, \beta \in \{0, 0.5,
\dots, 2\}$, $e \in \{-1, -0.5, \dots, 1\}$, $a, b \in \{0, 5, \dots, 25\}$.

All starts run at once through the batched L-BFGS in `fitting.lbfgs` to a loose tolerance, in
coordinates where log N and log D are centred. That linear change of variables leaves every
objective value unchanged and makes the problem far better conditioned. The starts near the best
objective then converge with the batched Newton of `fitting.newton`, and the best optimum is
polished with scipy's L-BFGS-B in the original coordinates, where the gradient is reported.
"""

from __future__ import annotations

import itertools
import logging

import numpy as np
from scipy import optimize

from fitting.conventions import FitData, flops_per_param_token
from fitting.results import Flag, ParametricFit

logger = logging.getLogger(__name__)

HUBER_DELTA = 1e-3
# Parameter order everywhere in this module: (log_A, log_B, log_E, alpha, beta).
PARAM_NAMES = ("log_A", "log_B", "log_E", "alpha", "beta")
GRID_ALPHA_BETA = np.arange(0.0, 2.0 + 1e-9, 0.5)
GRID_LOG_E = np.arange(-1.0, 1.0 + 1e-9, 0.5)
GRID_LOG_A_B = np.arange(0.0, 25.0 + 1e-9, 5.0)

# Tolerances of the scipy polish: ftol is relative to max(|f|, 1), and the summed objective is of
# order 1e-3 per run, so 1e-15 makes scipy stop only at machine precision, not at a visible gap.
POLISH_OPTIONS = {"maxiter": 20_000, "maxfun": 40_000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20}
GRAD_NORM_CONVERGED = 1e-6
# Optima whose objective is within this factor of the best are kept as polish and bootstrap starts.
CANDIDATE_RATIO = 1.1


def chinchilla_grid() -> np.ndarray:
    """Return the 4,500 starts [4500, 5] in (log_A, log_B, log_E, alpha, beta) order."""
    rows = [
        (log_a, log_b, log_e, alpha, beta)
        for alpha, beta, log_e, log_a, log_b in itertools.product(
            GRID_ALPHA_BETA, GRID_ALPHA_BETA, GRID_LOG_E, GRID_LOG_A_B, GRID_LOG_A_B
        )
    ]
    return np.array(rows, dtype=np.float64)


def huber(residual: np.ndarray, delta: float = HUBER_DELTA) -> np.ndarray:
    magnitude = np.abs(residual)
    return np.where(magnitude <= delta, 0.5 * residual**2, delta * (magnitude - 0.5 * delta))


def objective_and_gradient(
    params: np.ndarray, log_n: np.ndarray, log_d: np.ndarray, log_loss: np.ndarray,
    weights: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Summed Huber objective and its analytic gradient at one parameter vector [5]."""
    log_a, log_b, log_e, alpha, beta = params
    terms = np.stack([log_a - alpha * log_n, log_b - beta * log_d, np.full_like(log_n, log_e)])
    top = terms.max(axis=0)
    exp_terms = np.exp(terms - top)
    total = exp_terms.sum(axis=0)
    residual = top + np.log(total) - log_loss
    softmax = exp_terms / total
    slope = np.clip(residual, -HUBER_DELTA, HUBER_DELTA)
    values = huber(residual)
    if weights is not None:
        slope = slope * weights
        values = values * weights
    gradient = np.array(
        [
            np.dot(slope, softmax[0]),
            np.dot(slope, softmax[1]),
            np.dot(slope, softmax[2]),
            -np.dot(slope, softmax[0] * log_n),
            -np.dot(slope, softmax[1] * log_d),
        ]
    )
    return float(values.sum()), gradient


class _BatchedObjective:
    """Summed Huber objective for many parameter rows at once, in centred coordinates.

    Row r of the batch uses the run weights `weights[weight_row[r]]`: all ones for the full
    fit, multinomial counts for a bootstrap resample (resampling runs with replacement is the
    same as weighting each run by how often it was drawn).
    """

    def __init__(self, log_n, log_d, log_loss, weights=None, weight_row=None):
        import torch

        self.torch = torch
        self.u = torch.as_tensor(log_n, dtype=torch.float64)
        self.v = torch.as_tensor(log_d, dtype=torch.float64)
        self.log_loss = torch.as_tensor(log_loss, dtype=torch.float64)
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float64)
        self.weight_row = None if weight_row is None else torch.as_tensor(weight_row)
        self.neg_u, self.neg_v = -self.u, -self.v
        self.ones_and_neg_u = torch.stack([torch.ones_like(self.u), self.neg_u], dim=1)  # [n, 2]
        self.ones_and_neg_v = torch.stack([torch.ones_like(self.v), self.neg_v], dim=1)

    def __call__(self, z, rows):
        torch = self.torch
        # z columns: centred log_A, centred log_B, log_E, alpha, beta.  Shapes: z [S, 5], data [n].
        # Plain exponentials rather than logsumexp: the terms stay far below exp's overflow at
        # 709 for any start of the grid, and a row that overflows gets f = inf, which the line
        # search rejects.
        p1 = torch.exp(torch.addcmul(z[:, 0:1], z[:, 3:4], self.neg_u))  # A / N^alpha, [S, n]
        p2 = torch.exp(torch.addcmul(z[:, 1:2], z[:, 4:5], self.neg_v))  # B / D^beta, [S, n]
        p3 = torch.exp(z[:, 2:3])  # E, [S, 1]
        total = (p1 + p2).add_(p3)
        residual = torch.log(total).sub_(self.log_loss)
        slope = residual.clamp(-HUBER_DELTA, HUBER_DELTA)
        # Huber is r²/2 inside ±delta and delta·(|r| − delta/2) outside: both are slope·(r − slope/2).
        inner = residual.sub_(slope, alpha=0.5)
        if self.weights is not None:
            slope = slope * self.weights[self.weight_row[rows]]
        values = (slope * inner).sum(dim=1)
        # The operations below reuse the buffers of slope, p1 and p2, none of which is read again.
        weighted = slope.div_(total)
        sums_n = p1.mul_(weighted) @ self.ones_and_neg_u  # [S, 2]: d/dlog_A and d/dalpha
        sums_d = p2.mul_(weighted) @ self.ones_and_neg_v  # [S, 2]: d/dlog_B and d/dbeta
        grad = torch.stack(
            [sums_n[:, 0], sums_d[:, 0], weighted.sum(dim=1) * p3[:, 0], sums_n[:, 1], sums_d[:, 1]], dim=1
        )
        return values, grad

    def problem_of(self, rows):
        """Which weight vector (bootstrap resample) each row minimises; 0 for the plain fit."""
        torch = self.torch
        if self.weight_row is None:
            return torch.zeros_like(rows)
        return self.weight_row[rows]

    def with_hessian(self, z, rows):
        """Objective [S], gradient [S, 5] and Hessian [S, 5, 5] at z [S, 5] in centred coordinates.

        With t = (a - alpha u, b - beta v, e), the residual is r = LSE(t) - log L, so
        dr/dz = J' s and d2r/dz2 = J' (diag(s) - s s') J, where s = softmax(t) and J = dt/dz is
        constant. The Huber loss has h' = clip(r, -delta, delta) and h'' = 1 inside delta,
        0 outside, so H = sum_i h''_i grad r_i grad r_i' + h'_i d2r_i.
        """
        torch = self.torch
        p1 = torch.exp(z[:, 0:1] - z[:, 3:4] * self.u)
        p2 = torch.exp(z[:, 1:2] - z[:, 4:5] * self.v)
        p3 = torch.exp(z[:, 2:3])
        total = p1 + p2 + p3
        residual = torch.log(total) - self.log_loss
        magnitude = residual.abs()
        inside = magnitude <= HUBER_DELTA
        values = torch.where(inside, 0.5 * residual**2, HUBER_DELTA * (magnitude - 0.5 * HUBER_DELTA))
        slope = residual.clamp(-HUBER_DELTA, HUBER_DELTA)
        curvature = inside.to(z.dtype)
        if self.weights is not None:
            w = self.weights[self.weight_row[rows]]
            values = values * w
            slope = slope * w
            curvature = curvature * w
        s1 = p1 / total
        s2 = p2 / total
        s3 = (p3 / total).expand_as(s1)
        # grad r for every run: [S, n, 5].
        dr = torch.stack([s1, s2, s3, -s1 * self.u, -s2 * self.v], dim=2)
        grad = (slope.unsqueeze(1) @ dr).squeeze(1)
        hessian = (dr * (curvature - slope).unsqueeze(2)).transpose(1, 2) @ dr
        n_term = slope * s1
        d_term = slope * s2
        n_u = (n_term * self.u).sum(dim=1)
        d_v = (d_term * self.v).sum(dim=1)
        hessian[:, 0, 0] += grad[:, 0]
        hessian[:, 1, 1] += grad[:, 1]
        hessian[:, 2, 2] += grad[:, 2]
        hessian[:, 0, 3] -= n_u
        hessian[:, 3, 0] -= n_u
        hessian[:, 1, 4] -= d_v
        hessian[:, 4, 1] -= d_v
        hessian[:, 3, 3] += (n_term * self.u**2).sum(dim=1)
        hessian[:, 4, 4] += (d_term * self.v**2).sum(dim=1)
        values = values.sum(dim=1)
        values = torch.where(torch.isfinite(values), values, torch.full_like(values, float("inf")))
        return values, grad, hessian


def _to_centred(params: np.ndarray, mean_log_n: float, mean_log_d: float) -> np.ndarray:
    z = params.copy()
    z[..., 0] = params[..., 0] - params[..., 3] * mean_log_n
    z[..., 1] = params[..., 1] - params[..., 4] * mean_log_d
    return z


def _from_centred(z: np.ndarray, mean_log_n: float, mean_log_d: float) -> np.ndarray:
    params = z.copy()
    params[..., 0] = z[..., 0] + z[..., 3] * mean_log_n
    params[..., 1] = z[..., 1] + z[..., 4] * mean_log_d
    return params


def solve_batched(
    log_n: np.ndarray,
    log_d: np.ndarray,
    log_loss: np.ndarray,
    starts: np.ndarray,
    *,
    weights: np.ndarray | None = None,
    weight_row: np.ndarray | None = None,
    method: str = "lbfgs",
    max_iter: int = 500,
    gtol: float = 1e-8,
    ftol: float = 1e-10,
    num_threads: int = 1,
):
    """Minimise from every start at once; return (params [S, 5], objective [S], grad_norm [S], converged [S]).

    `method` is "lbfgs" (`fitting.lbfgs`, for starts far from an optimum) or "newton"
    (`fitting.newton`, for starts already near one, such as a bootstrap resample started from
    the full fit). With `weights` [R, n] and `weight_row` [S], start s minimises the objective
    weighted by `weights[weight_row[s]]`. The batch runs on `num_threads` torch threads (never
    more than torch.get_num_threads()): its tensors are small enough that one thread is about as
    fast as two on a quiet machine and many times faster on a loaded one, where threads wait on
    each other at every operation.
    """
    import torch

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(num_threads, previous_threads)))
    try:
        return _solve_batched(log_n, log_d, log_loss, starts, weights, weight_row, method, max_iter, gtol, ftol)
    finally:
        torch.set_num_threads(previous_threads)


def _solve_batched(log_n, log_d, log_loss, starts, weights, weight_row, method, max_iter, gtol, ftol):
    import torch

    from fitting.lbfgs import minimize_batched
    from fitting.newton import minimize_newton_batched

    mean_log_n = float(np.mean(log_n))
    mean_log_d = float(np.mean(log_d))
    objective = _BatchedObjective(log_n - mean_log_n, log_d - mean_log_d, log_loss, weights, weight_row)
    z0 = torch.as_tensor(_to_centred(starts, mean_log_n, mean_log_d))
    if method == "newton":
        result = minimize_newton_batched(objective.with_hessian, z0, max_iter=max_iter, gtol=gtol, ftol=ftol)
    else:
        result = minimize_batched(objective, z0, max_iter=max_iter, gtol=gtol, ftol=ftol)
    params = _from_centred(result.x.numpy(), mean_log_n, mean_log_d)
    # The gradient is reported in the original coordinates, where the polish and users see it.
    grad = result.grad.numpy().copy()
    grad[:, 3] -= grad[:, 0] * mean_log_n
    grad[:, 4] -= grad[:, 1] * mean_log_d
    return params, result.f.numpy(), np.linalg.norm(grad, axis=1), result.converged.numpy()


def polish(params, log_n, log_d, log_loss, weights=None) -> optimize.OptimizeResult:
    """Run scipy's L-BFGS-B from one parameter vector with tight tolerances."""
    return optimize.minimize(
        objective_and_gradient,
        params,
        args=(log_n, log_d, log_loss, weights),
        jac=True,
        method="L-BFGS-B",
        options=POLISH_OPTIONS,
    )


def distinct_best(params: np.ndarray, objective: np.ndarray, count: int) -> np.ndarray:
    """Indices of the `count` lowest objectives whose parameters differ by more than 1e-3."""
    order = np.argsort(np.where(np.isfinite(objective), objective, np.inf))
    chosen: list[int] = []
    for index in order:
        if not np.isfinite(objective[index]):
            break
        if all(np.max(np.abs(params[index] - params[other])) > 1e-3 for other in chosen):
            chosen.append(int(index))
        if len(chosen) == count:
            break
    return np.array(chosen, dtype=np.int64)


def fit_approach3(
    data: FitData,
    *,
    starts: np.ndarray | None = None,
    num_polished: int = 5,
) -> ParametricFit:
    """Fit L(N, D) from the Chinchilla grid (or `starts`) and return the best polished optimum."""
    return fit_approach3_with_candidates(data, starts=starts, num_polished=num_polished)[0]


def fit_approach3_with_candidates(
    data: FitData,
    *,
    starts: np.ndarray | None = None,
    num_polished: int = 5,
) -> tuple[ParametricFit, np.ndarray]:
    """Fit as `fit_approach3`, and also return the polished distinct optima [K, 5], best first."""
    if data.num_runs < 5:
        raise ValueError(
            f"Approach 3 needs at least 5 runs to fit its 5 parameters, got {data.num_runs}: "
            "add runs with different N and D"
        )
    if np.unique(data.num_params).size < 2 or np.unique(data.num_tokens).size < 2:
        raise ValueError(
            "Approach 3 needs runs at two or more model sizes and two or more token counts, got "
            f"{np.unique(data.num_params).size} sizes and {np.unique(data.num_tokens).size} token "
            "counts: add runs that vary N and D"
        )
    starts = chinchilla_grid() if starts is None else np.asarray(starts, dtype=np.float64)
    log_n = np.log(data.num_params)
    log_d = np.log(data.num_tokens)
    log_loss = np.log(data.loss)

    # Stage 1: L-BFGS from every start to a loose tolerance, which finds the basins; most of
    # L-BFGS's iterations would otherwise go to the last digits. Stage 2: damped Newton from the
    # rows within CANDIDATE_RATIO of the best objective, which converges quadratically to a
    # gradient near machine precision in a few iterations.
    params, objective, _, converged = solve_batched(
        log_n, log_d, log_loss, starts, max_iter=200, gtol=1e-5, ftol=1e-6
    )
    objective = np.where(np.isfinite(objective), objective, np.inf)
    near = objective <= float(np.min(objective)) * CANDIDATE_RATIO
    params[near], objective[near], _, converged[near] = solve_batched(
        log_n, log_d, log_loss, params[near], method="newton", max_iter=100, gtol=1e-10, ftol=1e-15
    )
    # Candidates for the polish and for the bootstrap's starts: distinct optima that met the
    # tolerance and lie within CANDIDATE_RATIO of the best objective. A row stopped far from an
    # optimum, or a basin far worse than the best, is neither the answer nor where a resample's
    # answer lies.
    objective = np.where(np.isfinite(objective), objective, np.inf)
    lowest = float(np.min(objective))
    eligible = converged & (objective <= lowest * CANDIDATE_RATIO)
    eligible[int(np.argmin(np.where(np.isfinite(objective), objective, np.inf)))] = True
    best = distinct_best(params, np.where(eligible, objective, np.inf), num_polished)
    polished = [polish(params[index], log_n, log_d, log_loss) for index in best]
    polished.sort(key=lambda result: result.fun)
    winner = polished[0]
    candidates = np.array([result.x for result in polished])
    final = winner.x
    final_objective, final_grad = objective_and_gradient(final, log_n, log_d, log_loss)
    grad_norm = float(np.linalg.norm(final_grad))
    at_best = int(np.sum(objective <= final_objective * (1 + 1e-9) + 1e-15))

    fit_without_flags = dict(
        log_A=float(final[0]),
        log_B=float(final[1]),
        log_E=float(final[2]),
        alpha=float(final[3]),
        beta=float(final[4]),
        objective=final_objective,
        grad_norm=grad_norm,
        converged=bool(winner.success) or grad_norm < GRAD_NORM_CONVERGED,
        num_starts=int(starts.shape[0]),
        num_starts_at_best=at_best,
        flops_per_param_token=flops_per_param_token(data),
        n_convention=data.n_convention,
        c_convention=data.c_convention,
        num_runs=data.num_runs,
        num_params_range=(float(data.num_params.min()), float(data.num_params.max())),
        num_tokens_range=(float(data.num_tokens.min()), float(data.num_tokens.max())),
        compute_flops_range=(float(data.compute_flops.min()), float(data.compute_flops.max())),
        method=(
            f"summed Huber (delta {HUBER_DELTA}) on log losses; batched L-BFGS from "
            f"{starts.shape[0]} starts, batched Newton from the {int(near.sum())} within "
            f"{CANDIDATE_RATIO - 1:.0%} of the best, scipy L-BFGS-B polish of the best {len(best)}"
        ),
    )
    flags = approach3_flags(final, grad_norm, bool(winner.success), winner.message)
    return ParametricFit(**fit_without_flags, flags=tuple(flags)), candidates


def approach3_flags(params, grad_norm: float, success: bool, message) -> list[Flag]:
    """Flags for an Approach 3 optimum that the data may not support."""
    log_a, log_b, log_e, alpha, beta = (float(value) for value in params)
    flags = []
    if not success and grad_norm >= GRAD_NORM_CONVERGED:
        flags.append(Flag(code="not_converged", message=f"L-BFGS-B stopped: {message}; gradient norm {grad_norm:.3g}"))
    if alpha <= 1e-6 or beta <= 1e-6:
        flags.append(
            Flag(code="degenerate_exponent", message=f"alpha={alpha:.4g}, beta={beta:.4g}: an exponent at or below zero makes the closed form meaningless")
        )
    if alpha < 0.05 or beta < 0.05 or alpha > 1.5 or beta > 1.5:
        flags.append(
            Flag(code="absurd_exponent", message=f"alpha={alpha:.4g}, beta={beta:.4g} lie outside 0.05-1.5, where no published language-model fit lies")
        )
    outside = []
    if not (GRID_LOG_A_B[0] <= log_a <= GRID_LOG_A_B[-1]):
        outside.append(f"log_A={log_a:.4g}")
    if not (GRID_LOG_A_B[0] <= log_b <= GRID_LOG_A_B[-1]):
        outside.append(f"log_B={log_b:.4g}")
    if not (GRID_LOG_E[0] - 1.0 <= log_e <= GRID_LOG_E[-1]):
        outside.append(f"log_E={log_e:.4g}")
    if not (GRID_ALPHA_BETA[0] < alpha < GRID_ALPHA_BETA[-1]) or not (GRID_ALPHA_BETA[0] < beta < GRID_ALPHA_BETA[-1]):
        outside.append(f"alpha={alpha:.4g}, beta={beta:.4g}")
    if outside:
        flags.append(
            Flag(code="grid_boundary", message="optimum at or beyond the edge of the start grid: " + "; ".join(outside))
        )
    return flags


def bootstrap_approach3(
    data: FitData,
    weights: np.ndarray,
    candidates: np.ndarray,
    *,
    grid_starts_per_resample: int = 0,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Refit L(N, D) under each row of run weights [R, n], all resamples in one batch.

    Each resample starts from the full-data fit's distinct optima `candidates` [K, 5] (those
    within CANDIDATE_RATIO of its best objective), plus `grid_starts_per_resample` starts drawn
    at random from the Chinchilla grid, not from all 4,500: a resample moves the optimum only a
    little, so damped Newton steps from the full fit's optima reach the resample's optimum in a
    few iterations, to a gradient near machine precision.
    """
    grid = chinchilla_grid()
    num_resamples = weights.shape[0]
    per_resample = candidates.shape[0] + grid_starts_per_resample
    starts = np.empty((num_resamples, per_resample, 5))
    starts[:, : candidates.shape[0]] = candidates
    starts[:, candidates.shape[0] :] = grid[rng.integers(0, grid.shape[0], (num_resamples, grid_starts_per_resample))]
    weight_row = np.repeat(np.arange(num_resamples), per_resample)
    log_n, log_d, log_loss = np.log(data.num_params), np.log(data.num_tokens), np.log(data.loss)
    starts = starts.reshape(-1, 5)
    newton = dict(method="newton", max_iter=100, gtol=1e-10, ftol=1e-15)
    params, objective, grad_norm, converged = solve_batched(
        log_n, log_d, log_loss, starts, weights=weights, weight_row=weight_row, **newton
    )
    # Newton's quadratic model is poor where many residuals sit on the linear arm of the Huber
    # loss, which happens when a resample of a small sweep moves its optimum far from the full
    # fit's. Those rows go through L-BFGS from where Newton stopped, then Newton again.
    stuck = ~converged
    if stuck.any():
        retry = params[stuck]
        retry, _, _, _ = solve_batched(
            log_n, log_d, log_loss, retry, weights=weights, weight_row=weight_row[stuck], max_iter=200
        )
        params[stuck], objective[stuck], grad_norm[stuck], converged[stuck] = solve_batched(
            log_n, log_d, log_loss, retry, weights=weights, weight_row=weight_row[stuck], **newton
        )
    objective = np.where(np.isfinite(objective), objective, np.inf).reshape(num_resamples, per_resample)
    best = objective.argmin(axis=1)
    rows = np.arange(num_resamples) * per_resample + best
    chosen = params[rows]
    log_a, log_b, log_e, alpha, beta = chosen.T
    with np.errstate(divide="ignore", invalid="ignore"):
        log_g = (np.log(alpha) + log_a - np.log(beta) - log_b) / (alpha + beta)
        samples = {
            "E": np.exp(log_e),
            "A": np.exp(log_a),
            "B": np.exp(log_b),
            "alpha": alpha,
            "beta": beta,
            "log_E": log_e,
            "log_A": log_a,
            "log_B": log_b,
            "a": beta / (alpha + beta),
            "b": alpha / (alpha + beta),
            "log_G": log_g,
        }
    usable = (alpha > 0) & (beta > 0) & np.isfinite(objective[np.arange(num_resamples), best])
    for name in samples:
        samples[name] = np.where(usable, samples[name], np.nan)
    samples["grad_norm"] = grad_norm[rows]
    samples["converged"] = converged[rows].astype(np.float64)
    return samples
