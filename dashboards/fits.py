"""Run the `fitting` package's three approaches on one sweep and convert the results for drawing.

A fit that `fitting` rejects (too few runs, a budget with too few points, a parabola that opens
downwards) raises ValueError there; here that becomes the approach's `error` message, which the
views show in place of the figure.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pandas as pd

from dashboards.analysis import N_CONVENTION_COLUMNS, ApproachResult, Parabola, PowerLaw, SweepAnalysis, empty_analysis

logger = logging.getLogger(__name__)

# Central coverage of the intervals drawn: the 10th to the 90th percentile.
INTERVAL_LEVEL = 0.8
# Resamples of the per-budget parabola minimum; a display aid, so a few hundred are plenty.
PARABOLA_RESAMPLES = 200
# Compute range of the drawn bands: from below the sweep's smallest budget to past LLaMA-65B.
BAND_MAX_FLOPS = 1e25


def _n_column(n_convention: str) -> str:
    if n_convention not in N_CONVENTION_COLUMNS:
        raise ValueError(
            f"unknown N convention {n_convention!r}: use one of {', '.join(N_CONVENTION_COLUMNS)}"
        )
    return N_CONVENTION_COLUMNS[n_convention]


def parabola_minima(inputs: pd.DataFrame, n_column: str, *, seed: int = 0,
                    num_resamples: int = PARABOLA_RESAMPLES) -> list[Parabola]:
    """Fit loss = c2·x² + c1·x + c0 with x = log10 N per budget, with a bootstrap interval of its minimum.

    Budgets are rejected, as Approach 2 rejects them, when they have fewer than 4 runs, the
    parabola opens downwards or the minimum lies outside the sampled N.
    """
    rng = np.random.default_rng(seed)
    parabolas = []
    for budget, rows in inputs.groupby("budget_flops"):
        x = np.log10(rows[n_column].to_numpy(dtype=float))
        loss = rows["final_loss"].to_numpy(dtype=float)
        low, high = float(x.min()), float(x.max())
        if len(rows) < 3 or np.unique(x).size < 3:
            parabolas.append(Parabola(float(budget), (0.0, 0.0, float(loss.mean())), (low, high), None, None,
                                      None, f"{len(rows)} runs, a parabola needs at least 4"))
            continue
        c2, c1, c0 = np.polyfit(x, loss, 2)
        reason = None
        if len(rows) < 4:
            reason = f"{len(rows)} runs, a parabola needs at least 4"
        elif c2 <= 0:
            reason = "the parabola opens downwards"
        x_opt = -c1 / (2 * c2) if c2 != 0 else math.nan
        if reason is None and not (low <= x_opt <= high):
            reason = "its minimum lies outside the sampled N"
        if reason is not None:
            parabolas.append(Parabola(float(budget), (c2, c1, c0), (low, high), None, None, None, reason))
            continue
        minima = []
        for _ in range(num_resamples):
            pick = rng.integers(0, len(x), len(x))
            if np.unique(x[pick]).size < 3:
                continue
            r2, r1, _r0 = np.polyfit(x[pick], loss[pick], 2)
            if r2 > 0:
                minima.append(-r1 / (2 * r2))
        interval = None
        if minima:
            tail = 50.0 * (1.0 - INTERVAL_LEVEL)
            lo, hi = np.percentile(minima, [tail, 100.0 - tail])
            interval = (float(10**lo), float(10**hi))
        parabolas.append(Parabola(float(budget), (c2, c1, c0), (low, high), float(10**x_opt), interval,
                                  float(c2 * x_opt**2 + c1 * x_opt + c0), None))
    return parabolas


def _band(fit, bootstrap, which: str, compute: np.ndarray):
    """Percentile band of fit.n_opt or fit.d_opt over C, from the bootstrap's resampled parameters."""
    if bootstrap is None or not bootstrap.samples:
        return None, None
    # The parameters that define each law; the other samples (a, b, objective) follow from them.
    if hasattr(fit, "log_E"):
        names = ["log_A", "log_B", "log_E", "alpha", "beta"]
    else:
        names = ["a", "b", "log_k_n", "log_k_d"]
    names = [name for name in names if name in bootstrap.samples]
    if not names:
        return None, None
    count = min(len(bootstrap.samples[name]) for name in names)
    curves = []
    for index in range(count):
        values = {name: float(bootstrap.samples[name][index]) for name in names}
        if not all(math.isfinite(value) for value in values.values()):
            continue
        try:
            curves.append(getattr(dataclasses.replace(fit, **values), which)(compute))
        except (ValueError, ZeroDivisionError, FloatingPointError):
            continue
    if not curves:
        return None, None
    tail = 50.0 * (1.0 - bootstrap.level)
    low, high = np.nanpercentile(np.vstack(curves), [tail, 100.0 - tail], axis=0)
    return low, high


def power_laws(fit, bootstrap, compute: np.ndarray) -> tuple[PowerLaw, PowerLaw]:
    """Convert a fitting result into the N_opt(C) and D_opt(C) laws drawn, with bootstrap bands."""
    intervals = bootstrap.intervals() if bootstrap is not None else {}
    laws = []
    for which, exponent_name in (("n_opt", "a"), ("d_opt", "b")):
        exponent = float(getattr(fit, exponent_name))
        # coefficient = X_opt(1 FLOP), so that coefficient * C^exponent reproduces fit.n_opt(C).
        coefficient = float(getattr(fit, which)(1.0))
        low, high = _band(fit, bootstrap, which, compute)
        laws.append(PowerLaw(coefficient, exponent, intervals.get(exponent_name),
                             compute if low is not None else None, low, high))
    return laws[0], laws[1]


def predictions_frame(predictions) -> pd.DataFrame:
    """Convert fitting's Prediction objects into the table the views draw."""
    rows = []
    for prediction in predictions:
        row = {
            "target": prediction.target,
            "num_params": prediction.num_params,
            "num_tokens": prediction.num_tokens,
            "compute_flops": prediction.compute_flops,
            "loss": prediction.loss if prediction.loss is not None else math.nan,
            "llama_num_tokens": prediction.actual_tokens if prediction.actual_tokens is not None else math.nan,
        }
        for name, (low, high) in (prediction.intervals or {}).items():
            row[f"{name}_low"], row[f"{name}_high"] = low, high
        rows.append(row)
    return pd.DataFrame(rows)


def _fit_one(approach: str, fit_function, predict_function, compute: np.ndarray) -> ApproachResult:
    try:
        report = fit_function()
    except ValueError as error:
        logger.info("%s not fitted: %s", approach, error)
        return ApproachResult(approach, error=str(error))
    fit, bootstrap = report.fit, report.bootstrap
    n_opt, d_opt = power_laws(fit, bootstrap, compute)
    result = ApproachResult(approach, n_opt=n_opt, d_opt=d_opt)
    params = fit.params()
    if approach == "approach3":
        result.params = {name: params[name] for name in ("E", "A", "B", "alpha", "beta")}
    else:
        result.params = params
        result.optima = fit.points
        result.rejections = {
            rejection.budget_flops: rejection.reason
            for rejection in getattr(fit, "rejected", ()) if rejection.variable == "num_params"
        }
    result.flags = [flag.message for flag in report.flags]
    result.intervals = report.intervals()
    try:
        result.predictions = predictions_frame(predict_function(report))
    except ValueError as error:
        logger.info("%s predictions failed: %s", approach, error)
    return result


def analyse_sweep(store, sweep: str, runs: pd.DataFrame, points: pd.DataFrame, *,
                  n_convention: str = "total", c_convention: str = "6nd",
                  num_resamples: int = 100, seed: int = 0,
                  approaches: tuple[str, ...] = ("approach1", "approach2", "approach3")) -> SweepAnalysis:
    """Fit Approaches 1, 2 and 3 on the completed runs of `sweep` and collect what the views draw.

    Approaches left out of `approaches` are reported as not requested.
    """
    from fitting.conventions import prepare_fit_data

    n_column = _n_column(n_convention)
    inputs = store.fit_inputs(sweep)
    if inputs.empty:
        return empty_analysis(sweep, n_convention,
                              f"Sweep {sweep} has no completed runs with a final validation loss yet.")
    try:
        prepare_fit_data(inputs, n_convention, c_convention)
    except ValueError as error:
        return empty_analysis(sweep, n_convention, f"Sweep {sweep} cannot be fitted: {error}")

    low = float(inputs["budget_flops"].min()) / 10
    compute = np.geomspace(low, BAND_MAX_FLOPS, 60)
    hooks = _fitting_hooks(inputs, n_convention=n_convention, c_convention=c_convention,
                           num_resamples=num_resamples, seed=seed)
    results = {}
    for approach in ("approach1", "approach2", "approach3"):
        fit_function, predict_function = hooks[approach]
        if approach not in approaches:
            results[approach] = ApproachResult(approach, error="not requested")
        else:
            results[approach] = _fit_one(approach, fit_function, predict_function, compute)
    parabolas = parabola_minima(inputs, n_column, seed=seed)
    # Where fitting rejected a budget, show its reason rather than the display check's own.
    rejections = getattr(results["approach2"], "rejections", {})
    results["approach2"].parabolas = [
        dataclasses.replace(parabola, rejected_reason=rejections[parabola.budget_flops], n_opt=None)
        if parabola.budget_flops in rejections else parabola
        for parabola in parabolas
    ]
    return SweepAnalysis(sweep, n_column, inputs, results)


def _fitting_hooks(inputs: pd.DataFrame, *, n_convention: str, c_convention: str, num_resamples: int,
                   seed: int):
    """Bind `fitting.api`'s fit and prediction functions to this sweep's inputs, per approach.

    Returns {approach: (fit, predict)}: `fit()` returns a FitReport (fit plus bootstrap) and
    `predict(report)` the LLaMA predictions.
    """
    from fitting import api

    hooks = {}
    for number, approach in ((1, "approach1"), (2, "approach2"), (3, "approach3")):
        def fit_function(number=number):
            return api.fit(inputs, number, n_convention=n_convention, c_convention=c_convention,
                           num_resamples=num_resamples, seed=seed)
        hooks[approach] = (fit_function, api.predict_targets)
    return hooks
