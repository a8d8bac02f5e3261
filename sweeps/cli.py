"""`scalelab sweep plan|submit|status|cancel` and `scalelab export`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import typer

logger = logging.getLogger(__name__)

from store.cli import DbOption

sweep_app = typer.Typer(help="Plan, run and watch IsoFLOP sweeps.", no_args_is_help=True)


def _format_seconds(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _format_count(value: float) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Rich assumes 80 columns when output goes to a file or pipe, which would elide the tables.
        console = Console(width=160)
    return console


def _print_plan(plan: Any) -> None:
    from rich.table import Table

    from sweeps.plan import local_parallel_slots

    console = _console()
    table = Table(title=f"sweep {plan.spec.name}: {len(plan.runs)} runs (run_id shown to 8 digits, shape d_model x n_layers)")
    for header in ("run_id", "C", "seed", "N", "shape", "D", "D/N", "steps", "C 6ND", "C attn", "epochs", "time"):
        table.add_column(header, justify="right", no_wrap=True)
    for run in plan.runs:
        table.add_row(
            run.run_id[:8],
            f"{run.budget_flops:.2g}",
            str(run.seed),
            _format_count(run.num_params),
            f"{run.model['d_model']}x{run.model['n_layers']}",
            _format_count(run.num_tokens),
            f"{run.tokens_per_param:.1f}",
            str(run.steps),
            f"{run.compute_flops_6nd:.3g}",
            f"{run.compute_flops:.3g}",
            "-" if run.epochs is None else f"{run.epochs:.2f}",
            _format_seconds(run.est_time_s),
        )
    console.print(table)
    slots = local_parallel_slots(plan.spec)
    console.print(
        f"total {plan.total_compute_flops:.3g} FLOPs (with attention); throughput {plan.flops_per_s:.3g} FLOP/s "
        f"({plan.throughput_source}); about {_format_seconds(plan.total_est_time_s)} serial, "
        f"{_format_seconds(plan.total_est_time_s / slots)} with {slots} runs side by side on this machine"
    )
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


@sweep_app.command("plan")
def plan_command(
    spec_path: Path = typer.Argument(..., help="YAML sweep spec."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
    max_total_flops: str = typer.Option(None, "--max-total-flops", help="Reject the sweep above this many FLOPs, such as 1e15."),
    measure: bool = typer.Option(True, "--measure/--no-measure", help="Time a few training steps for the estimates; otherwise assume a fixed FLOP/s."),
    flops_per_s: str = typer.Option(None, "--flops-per-s", help="Throughput for the time estimates, in FLOP/s; skips the measurement."),
) -> None:
    """Print the expanded grid: budget, N, D, tokens per parameter, steps, C both ways, epochs, time."""
    from sweeps.plan import plan_sweep
    from sweeps.spec import load_spec

    spec = load_spec(spec_path)
    plan = plan_sweep(
        spec,
        max_total_flops=_number_option("--max-total-flops", max_total_flops),
        flops_per_s=_number_option("--flops-per-s", flops_per_s),
        measure=measure,
    )
    if as_json:
        typer.echo(json.dumps(plan.to_dict(), indent=2))
    else:
        _print_plan(plan)


def _number_option(option: str, text: str | None) -> float | None:
    from sweeps.spec import parse_number

    if text is None:
        return None
    value = parse_number(text)
    if not isinstance(value, float) or value <= 0:
        raise ValueError(f"{option} {text!r} is not a positive number; give one such as 1e15")
    return value


@sweep_app.command("submit")
def submit_command(
    spec_path: Path = typer.Argument(..., help="YAML sweep spec."),
    address: str = typer.Option(None, "--address", help="Ray cluster address such as 127.0.0.1:6379; default: start Ray on this machine."),
    db: DbOption = None,
    max_parallel: int = typer.Option(None, "--max-parallel", help="Maximum number of runs handed to Ray at once; default: all, and Ray's resources decide."),
    max_total_flops: str = typer.Option(None, "--max-total-flops", help="Reject the sweep above this many FLOPs."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Run every run of the sweep that is not completed or diverged, with Ray."""
    from store import open_store
    from sweeps.plan import plan_sweep
    from sweeps.runner import submit
    from sweeps.spec import load_spec

    spec = load_spec(spec_path)
    plan = plan_sweep(spec, max_total_flops=_number_option("--max-total-flops", max_total_flops))
    for warning in plan.warnings:
        logger.warning("%s", warning)
    store = open_store(db)
    result = submit(spec, store, address=address, progress=progress, max_parallel=max_parallel, plan=plan)
    counts = ", ".join(f"{status} {count}" for status, count in sorted(result.counts.items()))
    typer.echo(
        f"sweep {result.sweep}: {counts}; ran {len(result.ran)}, skipped {len(result.skipped)} "
        f"already completed or diverged, in {_format_seconds(result.wall_s)}"
    )
    if result.cancelled:
        raise typer.Exit(1)


@sweep_app.command("status")
def status_command(
    name: str = typer.Argument(None, help="Sweep name; default: every sweep."),
    db: DbOption = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show runs by status and the share of planned FLOPs done."""
    from store import open_store
    from sweeps.status import RUN_STATUSES, sweep_status

    summaries = sweep_status(open_store(db), name)
    if as_json:
        typer.echo(json.dumps(summaries, indent=2))
        return
    from rich.table import Table

    table = Table()
    for header in ("sweep", "runs", *RUN_STATUSES, "FLOPs done"):
        table.add_column(header, justify="right")
    for summary in summaries:
        table.add_row(
            summary["sweep"],
            str(summary["num_runs"]),
            *(str(summary["counts"][status]) for status in RUN_STATUSES),
            f"{summary['progress']:.0%}",
        )
    _console().print(table)


@sweep_app.command("cancel")
def cancel_command(name: str = typer.Argument(..., help="Sweep name."), db: DbOption = None) -> None:
    """Cancel a sweep: its driver stops queued runs, and running runs checkpoint and end cancelled."""
    from store import open_store
    from sweeps.status import cancel_sweep

    run_ids = cancel_sweep(open_store(db), name)
    typer.echo(f"sweep {name}: {len(run_ids)} unfinished runs marked cancelled")


def export_command(
    run_id: str = typer.Argument(..., help="Run id, as in `scalelab sweep plan` or the runs table."),
    hf: Path = typer.Option(..., "--hf", help="Output folder for the Hugging Face LlamaForCausalLM files."),
    db: DbOption = None,
) -> None:
    """Export a run's latest checkpoint as a Hugging Face model folder."""
    from store import open_store
    from sweeps.export import export_run

    path = export_run(open_store(db), run_id, hf)
    typer.echo(f"run {run_id} exported to {path}")


def register(app: typer.Typer) -> None:
    """Add `sweep` and `export` to the root app."""
    app.add_typer(sweep_app, name="sweep")
    app.command("export")(export_command)
