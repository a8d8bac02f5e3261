"""The one place where fitting reads from and writes to the store.

A saved fit keeps, besides its parameters and percentile intervals, the bootstrap draws of the
law's defining parameters in `details`, so that `scalelab predict` can give intervals for any
budget later without refitting.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from fitting.api import HoldoutResult
from fitting.conventions import C_COLUMNS, N_COLUMNS
from fitting.results import BootstrapResult, FitReport, Flag, ParametricFit, PowerLawFit, Prediction

logger = logging.getLogger(__name__)

# Parameters that define each law; the others (E, A, a, b, log_G, ...) follow from them.
LAW_PARAMS = {
    "power_law": ("a", "b", "log_k_n", "log_k_d"),
    "parametric": ("log_A", "log_B", "log_E", "alpha", "beta"),
}


def load_fit_inputs(store: Any, sweep: str, n_convention: str, c_convention: str) -> pd.DataFrame:
    """Read the completed runs of a sweep in the `fit_inputs` layout."""
    frame = store.fit_inputs(sweep, n_col=N_COLUMNS[n_convention], c_col=C_COLUMNS[c_convention])
    if len(frame) == 0:
        raise ValueError(
            f"sweep {sweep!r} has no completed runs with a final loss in {store!r}: run or import "
            "the sweep first, or check its name with `scalelab sql \"SELECT name FROM sweeps\"`"
        )
    return frame


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _flags(flags: tuple[Flag, ...]) -> list[dict[str, str]]:
    return [dataclasses.asdict(flag) for flag in flags]


def fit_record(report: FitReport, holdout: HoldoutResult | None = None) -> dict[str, Any]:
    """The keyword arguments of `Store.save_fit` for one report (sweep and approach aside)."""
    law = report.fit
    params = dict(law.params())
    params["flops_per_param_token"] = law.flops_per_param_token
    intervals = {
        name: bounds for name, bounds in report.intervals().items() if name in params and all(map(math.isfinite, bounds))
    }
    kind = "parametric" if isinstance(law, ParametricFit) else "power_law"
    details: dict[str, Any] = {
        "law": kind,
        "flags": _flags(report.flags),
        "num_runs": law.num_runs,
        "num_params_range": list(law.num_params_range),
        "compute_flops_range": list(law.compute_flops_range),
        "seed": report.seed,
    }
    convergence: dict[str, Any] = {"flags": [flag.code for flag in report.flags]}
    if isinstance(law, ParametricFit):
        convergence.update(
            objective=law.objective,
            grad_norm=law.grad_norm,
            converged=law.converged,
            num_starts=law.num_starts,
            num_starts_at_best=law.num_starts_at_best,
            method=law.method,
        )
        details["num_tokens_range"] = list(law.num_tokens_range)
    else:
        details["points"] = law.points.to_dict(orient="list")
        details["rejected_budgets"] = [dataclasses.asdict(r) for r in law.rejected]
        convergence["converged"] = True
    if report.bootstrap is not None:
        bootstrap = report.bootstrap
        details["bootstrap"] = {
            "num_resamples": bootstrap.num_resamples,
            "num_failed": bootstrap.num_failed,
            "resampling": {1: "runs within each model size", 2: "runs within each FLOP budget", 3: "all runs"}[law.approach],
            "samples": {name: bootstrap.samples[name].tolist() for name in LAW_PARAMS[kind]},
        }
        if "grad_norm" in bootstrap.samples:
            convergence["bootstrap_grad_norm_median"] = float(np.median(bootstrap.samples["grad_norm"]))
            convergence["bootstrap_converged_share"] = float(np.mean(bootstrap.samples["converged"]))
    if holdout is not None:
        details["holdout_largest"] = holdout.to_dict()
    return {
        "n_convention": law.n_convention,
        "c_convention": law.c_convention,
        "data_filter": {"status": "completed", "holdout_largest": holdout is not None},
        "params": params,
        "intervals": intervals,
        "interval_level": report.bootstrap.level if report.bootstrap else None,
        "convergence": convergence,
        "details": details,
    }


def save_report(store: Any, sweep: str, report: FitReport, holdout: HoldoutResult | None = None) -> int:
    """Save one fit; return its id."""
    return store.save_fit(sweep, f"approach{report.approach}", **fit_record(report, holdout))


def prediction_rows(predictions: list[Prediction], flops_per_param_token: float) -> list[dict[str, Any]]:
    """Rows for `Store.save_predictions`; a LLaMA target adds a row at its actual tokens."""
    rows = []
    for prediction in predictions:
        rows.append(
            {
                "target": prediction.target,
                "num_params": prediction.num_params,
                "num_tokens": prediction.num_tokens,
                "compute_flops": prediction.compute_flops,
                "loss": prediction.loss,
                "intervals": {
                    name: bounds for name, bounds in prediction.intervals.items() if name != "loss_at_actual_tokens"
                },
            }
        )
        if prediction.actual_tokens is not None:
            actual_intervals = {}
            if "loss_at_actual_tokens" in prediction.intervals:
                actual_intervals["loss"] = prediction.intervals["loss_at_actual_tokens"]
            rows.append(
                {
                    "target": f"{prediction.target} actual tokens",
                    "num_params": prediction.num_params,
                    "num_tokens": prediction.actual_tokens,
                    "compute_flops": flops_per_param_token * prediction.num_params * prediction.actual_tokens,
                    "loss": prediction.loss_at_actual_tokens,
                    "intervals": actual_intervals,
                }
            )
    return rows


def report_from_fit_row(row: dict[str, Any] | pd.Series) -> FitReport:
    """Rebuild a FitReport from a row of `Store.fits`, bootstrap draws included."""
    params = row["params"]
    details = row["details"] or {}
    convergence = row["convergence"] or {}
    flags = tuple(Flag(**flag) for flag in details.get("flags", []))
    common = dict(
        n_convention=row["n_convention"],
        c_convention=row["c_convention"],
        num_runs=int(details.get("num_runs", 0)),
        num_params_range=tuple(details.get("num_params_range", (math.nan, math.nan))),
        compute_flops_range=tuple(details.get("compute_flops_range", (math.nan, math.nan))),
        flops_per_param_token=float(params.get("flops_per_param_token", 6.0)),
        flags=flags,
    )
    if details.get("law") == "parametric":
        law: PowerLawFit | ParametricFit = ParametricFit(
            log_A=params["log_A"],
            log_B=params["log_B"],
            log_E=params["log_E"],
            alpha=params["alpha"],
            beta=params["beta"],
            objective=float(convergence.get("objective", math.nan)),
            grad_norm=float(convergence.get("grad_norm", math.nan)),
            converged=bool(convergence.get("converged", False)),
            num_starts=int(convergence.get("num_starts", 0)),
            num_starts_at_best=int(convergence.get("num_starts_at_best", 0)),
            num_tokens_range=tuple(details.get("num_tokens_range", (math.nan, math.nan))),
            method=str(convergence.get("method", "")),
            **common,
        )
    else:
        law = PowerLawFit(
            approach=int(str(row["approach"]).removeprefix("approach")),
            a=params["a"],
            b=params["b"],
            log_k_n=params["log_k_n"],
            log_k_d=params["log_k_d"],
            points=pd.DataFrame(details.get("points", {})),
            **common,
        )
    bootstrap = None
    stored = details.get("bootstrap")
    if stored and stored.get("samples"):
        bootstrap = BootstrapResult(
            level=float(row["interval_level"]) if row["interval_level"] is not None else 0.8,
            num_resamples=int(stored["num_resamples"]),
            num_failed=int(stored["num_failed"]),
            samples={name: np.asarray(values, dtype=np.float64) for name, values in stored["samples"].items()},
        )
    return FitReport(fit=law, bootstrap=bootstrap, flags=flags, seed=int(details.get("seed", 0)))


def latest_fits(store: Any, sweep: str) -> dict[int, tuple[int, FitReport]]:
    """The newest fit of each approach of a sweep, without the holdout backtests: {approach: (fit_id, report)}."""
    fits = store.fits(sweep)
    latest: dict[int, tuple[int, FitReport]] = {}
    for _, row in fits.iterrows():
        if (row["data_filter"] or {}).get("holdout_largest"):
            continue
        approach = int(str(row["approach"]).removeprefix("approach"))
        latest[approach] = (int(row["id"]), report_from_fit_row(row))
    return latest
