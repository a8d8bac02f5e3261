"""`scalelab demo`: the whole pipeline on the built-in corpus, from raw text to an HTML report.

The demo runs the same functions as the individual commands, in this order:
`data prepare` -> `sweep plan` -> `sweep submit` -> `fit` -> `predict` -> `report`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from store.cli import DbOption

logger = logging.getLogger(__name__)

EXAMPLES = Path(__file__).resolve().parent.parent / "sweeps" / "examples"
DEMO_SPECS = {False: "isoflop_demo.yaml", True: "isoflop_quick.yaml"}


def _heading(text: str) -> None:
    typer.secho(f"\n== {text}", bold=True)


def demo(
    quick: Annotated[
        bool, typer.Option("--quick", help="Smaller budgets: about 3 minutes on 2 CPU cores instead of about 15.")
    ] = False,
    workdir: Annotated[
        Path,
        typer.Option("--workdir", help="Folder for the prepared corpus, the checkpoints and the report."),
    ] = Path("."),
    address: Annotated[
        Optional[str],
        typer.Option("--address", help="Ray cluster address such as 127.0.0.1:6379; default: start Ray on this machine."),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap resamples of runs behind each fit's intervals.")
    ] = 1000,
    db: DbOption = None,
) -> None:
    """Prepare the built-in corpus, run an IsoFLOP sweep, fit it, predict LLaMA allocations, write a report."""
    from dashboards.cli import report as report_command
    from fitting.cli import fit_command, predict_command
    from model.corpus import open_or_prepare
    from store import open_store
    from sweeps.cli import _print_plan
    from sweeps.plan import plan_sweep
    from sweeps.runner import submit
    from sweeps.spec import load_spec

    if bootstrap < 0:
        raise ValueError(f"invalid --bootstrap {bootstrap}: pass 0 (no intervals) or more")
    if workdir.exists() and not workdir.is_dir():
        raise ValueError(f"--workdir {str(workdir)!r} exists and is not a folder; pass a folder")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir = workdir.resolve()
    # Open the store first, so that a bad --db fails before the corpus is tokenized.
    store = open_store(db)
    started = time.monotonic()

    spec = load_spec(EXAMPLES / DEMO_SPECS[quick])
    vocab_size = spec.vocab_size
    corpus_dir = workdir / "scalelab_data" / f"builtin-v{vocab_size}"
    _heading(f"1/5 Preparing the built-in corpus in {corpus_dir}")
    corpus = open_or_prepare("builtin", corpus_dir, vocab_size)
    info = corpus.info
    typer.echo(
        f"{info.num_tokens_train:,} train and {info.num_tokens_val:,} validation tokens, "
        f"vocab_size {info.vocab_size}, licence: {info.licence}"
    )

    storage = spec.storage.model_copy(update={"checkpoint_root": str(workdir / "scalelab_runs")})
    spec = spec.model_copy(update={"data": str(corpus_dir), "storage": storage})

    _heading(f"2/5 Planning sweep {spec.name}")
    # A few measured training steps make the printed time estimate fit this machine.
    plan = plan_sweep(spec, measure=True)
    _print_plan(plan)
    for warning in plan.warnings:
        logger.warning("%s", warning)

    _heading(f"3/5 Training {len(plan.runs)} runs with Ray")
    result = submit(spec, store, address=address, plan=plan)
    counts = ", ".join(f"{status} {count}" for status, count in sorted(result.counts.items()))
    typer.echo(
        f"sweep {spec.name}: {counts}; ran {len(result.ran)}, skipped {len(result.skipped)} already finished"
    )
    if result.cancelled:
        raise typer.Exit(1)
    url = store.url
    store.close()

    _heading("4/5 Fitting Chinchilla's approaches, predicting LLaMA 7B-65B")
    fit_command(sweep=spec.name, approach="all", bootstrap=bootstrap, db=url)
    predict_command(sweep=spec.name, db=url)

    _heading("5/5 Writing the report")
    report_path = workdir / f"{spec.name}_report.html"
    # Typer command functions take every option explicitly when called from Python.
    report_command(
        sweep=spec.name, out=report_path, cdn=False, n_convention="total", resamples=min(bootstrap, 200), db=url
    )

    minutes = (time.monotonic() - started) / 60
    typer.secho(f"\nDone in {minutes:.1f} min.", bold=True)
    typer.echo(f"  database: {url}")
    typer.echo(f"  report:   {report_path}")
    typer.echo(f'  try:      scalelab sql "SELECT status, count(*) FROM runs GROUP BY status" --db {url}')


def register(app: typer.Typer) -> None:
    """Add `demo` to the root app."""
    app.command("demo")(demo)
