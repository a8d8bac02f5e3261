"""`scalelab report` and `scalelab dashboard`: the sweep's figures as an HTML file or a live app."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

from store.cli import DbOption

logger = logging.getLogger(__name__)

N_CONVENTION_HELP = "N of the fits: total (all parameters) or non_embedding."


def _check_n_convention(n_convention: str) -> None:
    from dashboards.analysis import N_CONVENTIONS

    if n_convention not in N_CONVENTIONS:
        raise ValueError(f"invalid --n-convention {n_convention!r}: choose one of {', '.join(N_CONVENTIONS)}")


def report(
    sweep: str = typer.Option(..., "--sweep", help="Name of the sweep to report on."),
    out: Path = typer.Option(..., "--out", help="HTML file to write, such as report.html."),
    cdn: bool = typer.Option(False, "--cdn", help="Load plotly.js from cdn.plot.ly instead of embedding it "
                             "(a smaller file that needs the internet to open)."),
    n_convention: str = typer.Option("total", "--n-convention", help=N_CONVENTION_HELP),
    resamples: int = typer.Option(200, "--resamples", help="Bootstrap resamples of each fit's intervals."),
    db: DbOption = None,
) -> None:
    """Write IsoFLOP curves, fits, frontier, training curves and LLaMA predictions of a sweep as one HTML file."""
    from dashboards.data import DashboardData
    from dashboards.report import write_report
    from store import open_store

    _check_n_convention(n_convention)
    if resamples < 0:
        raise ValueError(f"invalid --resamples {resamples}: pass 0 (no intervals) or more")
    with open_store(db) as store:
        data = DashboardData(store, num_resamples=resamples)
        try:
            path = write_report(data, sweep, out, cdn=cdn, n_convention=n_convention)
        finally:
            data.close()
    size_mb = path.stat().st_size / 1e6
    typer.echo(f"report of sweep {sweep} written to {path} ({size_mb:.1f} MB)")


def dashboard(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; the default serves this machine only."),
    port: int = typer.Option(8050, "--port", help="TCP port to serve on."),
    resamples: int = typer.Option(100, "--resamples", help="Bootstrap resamples of the fits computed for the views."),
    db: DbOption = None,
) -> None:
    """Serve the live dashboard of every sweep in the store (refreshes as runs land)."""
    from dashboards.app import serve
    from dashboards.data import DashboardData
    from store import open_store

    if not 0 < port < 65536:
        raise ValueError(f"invalid --port {port}: pass a TCP port between 1 and 65535")
    if resamples < 0:
        raise ValueError(f"invalid --resamples {resamples}: pass 0 (no intervals) or more")
    with open_store(db) as store:
        data = DashboardData(store, num_resamples=resamples, fit_in_process=True)
        typer.echo(f"scalelab dashboard on http://{host}:{port} (Ctrl-C to stop)")
        try:
            serve(data, host=host, port=port)
        finally:
            data.close()


def register(app: typer.Typer) -> None:
    """Add `report` and `dashboard` to the root app."""
    app.command("report")(report)
    app.command("dashboard")(dashboard)
