"""Fit one approach with its run-level bootstrap, predict allocations, and backtest.

These functions take a frame in the `Store.fit_inputs` layout and never touch the store.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fitting.approach1 import bootstrap_approach1, fit_approach1, size_groups
from fitting.approach2 import bootstrap_approach2, budget_groups, fit_approach2, vertices
from fitting.approach3 import bootstrap_approach3, fit_approach3_with_candidates
from fitting.conventions import LLAMA_TARGETS, FitData, Target, check_conventions, prepare_fit_data
from fitting.results import BootstrapResult, FitReport, Flag, ParametricFit, PowerLawFit, Prediction

logger = logging.getLogger(__name__)

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.8
# More failed resamples than this share means the fit depends on a few runs, so it is flagged.
MAX_FAILED_SHARE = 0.05


def check_fit_options(approach: int, n_convention: str, c_convention: str, num_resamples: int, level: float) -> None:
    """Raise ValueError on an option that cannot work, before any fitting starts."""
    if approach not in (1, 2, 3):
        raise ValueError(f"unknown approach {approach!r}: use 1, 2 or 3")
    check_conventions(n_convention, c_convention)
    if num_resamples < 0:
        raise ValueError(f"bootstrap resamples must be 0 (no intervals) or more, got {num_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"interval level must lie strictly between 0 and 1, got {level}: use 0.8 for 80% intervals")


def resample_weights(data: FitData, approach: int, num_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Multinomial run counts [R, n]: each resample draws runs with replacement.

    Approach 2 draws within each FLOP budget and Approach 1 within each model size, so that every
    resample keeps the design of the sweep; Approach 3 draws from all runs.
    """
    if approach == 2:
        groups = budget_groups(data)
    elif approach == 1:
        groups = size_groups(data.num_params)
    else:
        groups = [np.arange(data.num_runs)]
    weights = np.zeros((num_resamples, data.num_runs))
    for group in groups:
        draws = rng.integers(0, group.size, size=(num_resamples, group.size))
        counts = np.zeros((num_resamples, group.size))
        np.add.at(counts, (np.arange(num_resamples)[:, None], draws), 1.0)
        weights[:, group] = counts
    return weights


def fit(
    frame: pd.DataFrame,
    approach: int,
    *,
    n_convention: str = "total",
    c_convention: str = "6nd",
    num_resamples: int = DEFAULT_RESAMPLES,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> FitReport:
    """Fit one approach to a `fit_inputs` frame and bootstrap it by run."""
    check_fit_options(approach, n_convention, c_convention, num_resamples, level)
    data = prepare_fit_data(frame, n_convention, c_convention)
    rng = np.random.default_rng(seed)
    candidates = None
    if approach == 1:
        law: PowerLawFit | ParametricFit = fit_approach1(data)
    elif approach == 2:
        law = fit_approach2(data)
    else:
        law, candidates = fit_approach3_with_candidates(data)

    flags = list(law.flags)
    bootstrap = None
    if num_resamples > 0:
        weights = resample_weights(data, approach, num_resamples, rng)
        if approach == 1:
            samples = bootstrap_approach1(data, weights)
        elif approach == 2:
            samples = bootstrap_approach2(data, weights)
        else:
            samples = bootstrap_approach3(data, weights, candidates, rng=rng)
        failed = ~np.isfinite(samples["a"])
        bootstrap = BootstrapResult(
            level=level,
            num_resamples=num_resamples,
            num_failed=int(failed.sum()),
            samples={name: values[~failed] for name, values in samples.items()},
        )
        if failed.mean() > MAX_FAILED_SHARE:
            flags.append(
                Flag(
                    code="bootstrap_failures",
                    message=f"{int(failed.sum())} of {num_resamples} resamples could not be fitted; "
                    "the fit depends on a few runs",
                )
            )
        if approach == 3 and "converged" in bootstrap.samples:
            share = float(np.mean(bootstrap.samples["converged"]))
            if share < 0.95:
                flags.append(
                    Flag(code="bootstrap_not_converged", message=f"only {share:.1%} of bootstrap refits met the tolerance")
                )
    return FitReport(fit=law, bootstrap=bootstrap, flags=tuple(flags), seed=seed)


def _sample_laws(report: FitReport) -> list[PowerLawFit | ParametricFit]:
    """Build one law per bootstrap resample from that resample's parameters."""
    if report.bootstrap is None:
        return []
    samples = report.bootstrap.samples
    if isinstance(report.fit, ParametricFit):
        names = ("log_A", "log_B", "log_E", "alpha", "beta")
    else:
        names = ("a", "b", "log_k_n", "log_k_d")
    count = samples[names[0]].size
    return [
        dataclasses.replace(report.fit, **{name: float(samples[name][i]) for name in names})
        for i in range(count)
    ]


def _interval(values: list[float], level: float) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return (math.nan, math.nan)
    tail = 50.0 * (1.0 - level)
    low, high = np.percentile(array, [tail, 100.0 - tail])
    return (float(low), float(high))


def predict_budgets(report: FitReport, budgets: Sequence[float]) -> list[Prediction]:
    """N_opt, D_opt and (Approach 3) the loss at each FLOP budget, with bootstrap intervals."""
    for budget in budgets:
        if not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
            raise ValueError(f"compute budget {budget!r} is not a positive number of FLOPs: pass a value such as 1e21")
    law = report.fit
    laws = _sample_laws(report)
    level = report.bootstrap.level if report.bootstrap else DEFAULT_LEVEL
    predictions = []
    for budget in budgets:
        n_opt = float(law.n_opt(budget))
        d_opt = float(law.d_opt(budget))
        loss = law.loss(n_opt, d_opt)
        intervals = {}
        if laws:
            n_samples = [float(sample.n_opt(budget)) for sample in laws]
            d_samples = [float(sample.d_opt(budget)) for sample in laws]
            intervals["num_params"] = _interval(n_samples, level)
            intervals["num_tokens"] = _interval(d_samples, level)
            if loss is not None:
                intervals["loss"] = _interval(
                    [float(s.loss(n, d)) for s, n, d in zip(laws, n_samples, d_samples)], level
                )
        predictions.append(
            Prediction(
                target=f"C={budget:.6g}",
                num_params=n_opt,
                num_tokens=d_opt,
                compute_flops=float(budget),
                loss=None if loss is None else float(loss),
                intervals=intervals,
                extrapolation_factor=float(budget) / law.compute_flops_range[1],
            )
        )
    return predictions


def predict_targets(report: FitReport, targets: Sequence[Target] = LLAMA_TARGETS) -> list[Prediction]:
    """Compute-optimal tokens and compute for each target's N (in the fit's N convention).

    N_opt(C) is inverted to find the budget at which the target's N is optimal; D_opt is read
    at that budget. Approach 3 also predicts the loss there and at the target's actual tokens.
    """
    law = report.fit
    laws = _sample_laws(report)
    level = report.bootstrap.level if report.bootstrap else DEFAULT_LEVEL
    predictions = []
    for target in targets:
        num_params = target.params_in(law.n_convention)
        compute = float(law.compute_for_num_params(num_params))
        tokens = float(law.d_opt(compute))
        loss = law.loss(num_params, tokens)
        loss_actual = law.loss(num_params, target.actual_tokens)
        intervals = {}
        if laws:
            c_samples = [float(sample.compute_for_num_params(num_params)) for sample in laws]
            d_samples = [float(sample.d_opt(c)) for sample, c in zip(laws, c_samples)]
            intervals["compute_flops"] = _interval(c_samples, level)
            intervals["num_tokens"] = _interval(d_samples, level)
            if loss is not None:
                intervals["loss"] = _interval(
                    [float(s.loss(num_params, d)) for s, d in zip(laws, d_samples)], level
                )
                intervals["loss_at_actual_tokens"] = _interval(
                    [float(s.loss(num_params, target.actual_tokens)) for s in laws], level
                )
        predictions.append(
            Prediction(
                target=target.name,
                num_params=num_params,
                num_tokens=tokens,
                compute_flops=compute,
                loss=None if loss is None else float(loss),
                intervals=intervals,
                actual_tokens=target.actual_tokens,
                loss_at_actual_tokens=None if loss_actual is None else float(loss_actual),
                extrapolation_factor=num_params / law.num_params_range[1],
            )
        )
    return predictions


@dataclass(frozen=True, kw_only=True)
class HoldoutResult:
    """A backtest: the fit without the largest budget, checked against that budget's runs."""

    budget_flops: float
    compute_flops: float
    observed_n_opt: float | None
    """Vertex of the held-out budget's parabola in log N; None when that parabola is rejected."""
    predicted_n_opt: float
    n_opt_relative_error: float | None
    observed_loss: float
    """Lowest final loss among the held-out runs."""
    predicted_loss: float | None
    """Approach 3's loss at the predicted N_opt and D_opt; None for Approaches 1 and 2."""
    loss_relative_error: float | None
    runs_loss_relative_error: float | None
    """Approach 3: mean |L(N, D) / loss - 1| over the held-out runs."""
    rejection: str | None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def holdout_largest(
    frame: pd.DataFrame,
    approach: int,
    *,
    n_convention: str = "total",
    c_convention: str = "6nd",
    num_resamples: int = 0,
    level: float = DEFAULT_LEVEL,
    seed: int = 0,
) -> tuple[FitReport, HoldoutResult]:
    """Fit without the runs of the largest FLOP budget and score the fit on them."""
    data = prepare_fit_data(frame, n_convention, c_convention)
    groups = budget_groups(data)
    if len(groups) < 2:
        raise ValueError(
            f"--holdout-largest needs runs at two or more FLOP budgets, got {len(groups)}: add budgets"
        )
    held = groups[-1]
    mask = np.ones(data.num_runs, dtype=bool)
    mask[held] = False
    report = fit(
        frame.iloc[np.flatnonzero(mask)],
        approach,
        n_convention=n_convention,
        c_convention=c_convention,
        num_resamples=num_resamples,
        level=level,
        seed=seed,
    )
    law = report.fit
    held_data = data.subset(~mask)
    log_n = np.log(held_data.num_params)
    x_star, _, reasons = vertices(log_n, held_data.loss, np.ones((1, held.size)))
    rejection = reasons[0]
    compute = float(np.exp(np.mean(np.log(held_data.compute_flops))))
    predicted_n = float(law.n_opt(compute))
    observed_n = None if rejection is not None else float(np.exp(x_star[0]))
    observed_loss = float(held_data.loss.min())
    predicted_loss = law.loss(predicted_n, float(law.d_opt(compute)))
    runs_error = None
    if predicted_loss is not None:
        predicted_runs = law.loss(held_data.num_params, held_data.num_tokens)
        runs_error = float(np.mean(np.abs(predicted_runs / held_data.loss - 1.0)))
    return report, HoldoutResult(
        budget_flops=float(held_data.budget_flops[0]),
        compute_flops=compute,
        observed_n_opt=observed_n,
        predicted_n_opt=predicted_n,
        n_opt_relative_error=None if observed_n is None else predicted_n / observed_n - 1.0,
        observed_loss=observed_loss,
        predicted_loss=None if predicted_loss is None else float(predicted_loss),
        loss_relative_error=None if predicted_loss is None else float(predicted_loss) / observed_loss - 1.0,
        runs_loss_relative_error=runs_error,
        rejection=rejection,
    )
