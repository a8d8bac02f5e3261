"""The `scalelab` command: one Typer app that each package extends with its own commands."""

from __future__ import annotations

import logging
import os
import sys

import typer

# Ray reads this when it starts; set it before any package can import Ray.
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

logger = logging.getLogger(__name__)

app = typer.Typer(
    name="scalelab",
    help="Plan, run, store and fit scaling-law sweeps of LLaMA-architecture models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def configure(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at DEBUG level."),
) -> None:
    """Configure logging once for every subcommand."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _register_commands() -> None:
    # Each package owns its commands and imports heavy modules (torch, ray) lazily inside them,
    # so that `scalelab sql` does not pay for importing torch.
    from dashboards.cli import register as register_dashboards
    from fitting.cli import register as register_fitting
    from model.cli import register as register_model
    from model.corpus.cli import register as register_data
    from scalelab.demo import register as register_demo
    from store.cli import register as register_store
    from sweeps.cli import register as register_sweeps

    for register in (
        register_model,
        register_data,
        register_store,
        register_sweeps,
        register_fitting,
        register_dashboards,
        register_demo,
    ):
        register(app)


_register_commands()


def main() -> None:
    """Run the CLI, turning input errors into one line on stderr and exit status 2."""
    try:
        app(standalone_mode=False)
    except (ValueError, FileNotFoundError, PermissionError) as error:
        # Our packages raise ValueError (or a subclass) for bad input, with the value and the fix.
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except typer.Exit as done:
        sys.exit(done.exit_code)
    except typer.Abort:
        sys.exit(1)
    except Exception as error:  # noqa: BLE001 - click usage errors and the like
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise


if __name__ == "__main__":
    main()
