"""`scalelab fit` and `scalelab predict`."""

from __future__ import annotations

import json
import logging
import math
from typing import Annotated, Optional

import typer

from store.cli import DbOption

logger = logging.getLogger(__name__)

APPROACH_CHOICES = ("1", "2", "3", "all")


def _approaches(value: str) -> list[int]:
    if value not in APPROACH_CHOICES:
        raise ValueError(f"invalid --approach {value!r}: choose one of {', '.join(APPROACH_CHOICES)}")
    return [1, 2, 3] if value == "all" else [int(value)]


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4g}"


def _interval_text(bounds) -> str:
    return "" if not bounds else f"[{_fmt(bounds[0])}, {_fmt(bounds[1])}]"


def fit_command(
    sweep: Annotated[str, typer.Option("--sweep", help="Name of the sweep to fit.")],
    approach: Annotated[str, typer.Option("--approach", help="Chinchilla approach: 1, 2, 3 or all.")] = "all",
    n_convention: Annotated[
        str, typer.Option("--n-convention", help="N as total parameters or non_embedding parameters.")
    ] = "total",
    c_convention: Annotated[
        str, typer.Option("--c-convention", help="C as 6nd (6 N D) or with_attention FLOPs.")
    ] = "6nd",
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples of runs; 0 for no intervals.")] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap resampling.")] = 0,
    level: Annotated[float, typer.Option("--level", help="Central coverage of the percentile intervals.")] = 0.8,
    holdout: Annotated[
        bool, typer.Option("--holdout-largest", help="Fit without the largest budget and report the errors there.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    db: DbOption = None,
) -> None:
    """Fit Chinchilla's approaches to a sweep's completed runs and save the fits to the store."""
    from fitting.api import check_fit_options, fit, holdout_largest, predict_targets
    from fitting.io import load_fit_inputs, prediction_rows, save_report
    from store import open_store

    approaches = _approaches(approach)
    for number in approaches:
        check_fit_options(number, n_convention, c_convention, bootstrap, level)

    output: dict = {"sweep": sweep, "n_convention": n_convention, "c_convention": c_convention, "fits": []}
    with open_store(db) as store:
        frame = load_fit_inputs(store, sweep, n_convention, c_convention)
        for number in approaches:
            options = dict(n_convention=n_convention, c_convention=c_convention, num_resamples=bootstrap, level=level, seed=seed)
            try:
                if holdout:
                    report, backtest = holdout_largest(frame, number, **options)
                else:
                    report, backtest = fit(frame, number, **options), None
            except ValueError as error:
                # With --approach all, one approach rejecting the data must not hide the others.
                if len(approaches) == 1:
                    raise
                logger.warning("approach %d rejected the data: %s", number, error)
                output["fits"].append({"approach": number, "rejected": str(error)})
                continue
            fit_id = save_report(store, sweep, report, backtest)
            targets = predict_targets(report)
            store.save_predictions(fit_id, prediction_rows(targets, report.fit.flops_per_param_token))
            entry = {
                "approach": number,
                "fit_id": fit_id,
                "params": report.fit.params(),
                "intervals": {k: list(v) for k, v in report.intervals().items() if k in report.fit.params()},
                "interval_level": level if report.bootstrap else None,
                "num_runs": report.fit.num_runs,
                "flags": [{"code": f.code, "message": f.message} for f in report.flags],
                "predictions": [p.to_dict() for p in targets],
            }
            if hasattr(report.fit, "grad_norm"):
                entry["convergence"] = {
                    "objective": report.fit.objective,
                    "grad_norm": report.fit.grad_norm,
                    "converged": report.fit.converged,
                    "num_starts": report.fit.num_starts,
                }
            if backtest is not None:
                entry["holdout_largest"] = backtest.to_dict()
            output["fits"].append(entry)

    if as_json:
        typer.echo(json.dumps(_json_safe(output), allow_nan=False))
        return
    _print_fits(output)


def _json_safe(value):
    """Replace NaN and infinities with None, since JSON has no encoding for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if hasattr(value, "item"):
        return _json_safe(value.item())
    return value


def _print_fits(output: dict) -> None:
    typer.echo(f"sweep {output['sweep']}: N = {output['n_convention']}, C = {output['c_convention']}")
    for entry in output["fits"]:
        typer.echo("")
        if "rejected" in entry:
            typer.echo(f"Approach {entry['approach']}: rejected: {entry['rejected']}")
            continue
        level = entry["interval_level"]
        title = f"Approach {entry['approach']} (fit {entry['fit_id']}, {entry['num_runs']} runs"
        title += f", {level:.0%} intervals)" if level else ", no intervals)"
        typer.echo(title)
        for name, value in entry["params"].items():
            typer.echo(f"  {name:>8} = {value:.6g} {_interval_text(entry['intervals'].get(name))}")
        if "convergence" in entry:
            c = entry["convergence"]
            typer.echo(f"  objective {c['objective']:.6g}, gradient norm {c['grad_norm']:.3g}, converged {c['converged']}")
        for flag in entry["flags"]:
            typer.echo(f"  flag {flag['code']}: {flag['message']}")
        if "holdout_largest" in entry:
            h = entry["holdout_largest"]
            typer.echo(
                f"  holdout C={h['budget_flops']:.4g}: N_opt predicted {_fmt(h['predicted_n_opt'])}, observed "
                f"{_fmt(h['observed_n_opt'])}, relative error {_fmt(h['n_opt_relative_error'])}; loss predicted "
                f"{_fmt(h['predicted_loss'])}, observed {_fmt(h['observed_loss'])}, relative error {_fmt(h['loss_relative_error'])}"
            )
        _print_predictions(entry["predictions"])


def _print_predictions(predictions: list[dict]) -> None:
    typer.echo(f"  {'target':>12} {'N':>10} {'D_opt':>10} {'D interval':>22} {'C':>10} {'C interval':>22} {'loss':>7} {'actual D':>9} {'extrap.':>7}")
    for p in predictions:
        intervals = p["intervals"]
        typer.echo(
            f"  {p['target']:>12} {_fmt(p['num_params']):>10} {_fmt(p['num_tokens']):>10} "
            f"{_interval_text(intervals.get('num_tokens')):>22} {_fmt(p['compute_flops']):>10} "
            f"{_interval_text(intervals.get('compute_flops')):>22} {_fmt(p['loss']):>7} "
            f"{_fmt(p['actual_tokens']):>9} {p['extrapolation_factor']:>6.3g}x"
        )


def predict_command(
    sweep: Annotated[str, typer.Option("--sweep", help="Name of a sweep fitted with `scalelab fit`.")],
    compute: Annotated[
        Optional[list[float]], typer.Option("--compute", help="FLOP budget to predict for, such as 1e21; repeatable.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    db: DbOption = None,
) -> None:
    """Predict compute-optimal N, D and loss from a sweep's latest fits, LLaMA 7B-65B included."""
    from fitting.api import predict_budgets, predict_targets
    from fitting.io import latest_fits, prediction_rows
    from store import open_store

    budgets = list(compute or [])
    for budget in budgets:
        if not (math.isfinite(budget) and budget > 0):
            raise ValueError(f"invalid --compute {budget!r}: pass a positive number of FLOPs such as 1e21")
    output: dict = {"sweep": sweep, "fits": []}
    with open_store(db) as store:
        latest = latest_fits(store, sweep)
        if not latest:
            raise ValueError(f"sweep {sweep!r} has no fits in {store!r}: run `scalelab fit --sweep {sweep}` first")
        for number, (fit_id, report) in sorted(latest.items()):
            predictions = predict_budgets(report, budgets) + predict_targets(report)
            store.save_predictions(fit_id, prediction_rows(predictions[: len(budgets)], report.fit.flops_per_param_token))
            output["fits"].append(
                {
                    "approach": number,
                    "fit_id": fit_id,
                    "n_convention": report.fit.n_convention,
                    "c_convention": report.fit.c_convention,
                    "interval_level": report.bootstrap.level if report.bootstrap else None,
                    "flags": [{"code": f.code, "message": f.message} for f in report.flags],
                    "predictions": [p.to_dict() for p in predictions],
                }
            )
    if as_json:
        typer.echo(json.dumps(_json_safe(output), allow_nan=False))
        return
    for entry in output["fits"]:
        level = entry["interval_level"]
        typer.echo(
            f"Approach {entry['approach']} (fit {entry['fit_id']}; N = {entry['n_convention']}, "
            f"C = {entry['c_convention']}; {f'{level:.0%} intervals' if level else 'no intervals'})"
        )
        _print_predictions(entry["predictions"])
        for flag in entry["flags"]:
            typer.echo(f"  flag {flag['code']}: {flag['message']}")


def register(app: typer.Typer) -> None:
    """Add `fit` and `predict` to the root app."""
    app.command("fit")(fit_command)
    app.command("predict")(predict_command)
