"""`scalelab demo`: filled in by the lead."""

import typer


def register(app: typer.Typer) -> None:
    """Add the demo command to the root app."""
