"""Commands of this package; filled in by its owner."""

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the root app."""
