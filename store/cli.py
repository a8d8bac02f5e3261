"""`scalelab sql` and `scalelab import`, and the `--db` option every command shares."""

from __future__ import annotations

import json
import logging
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

DbOption = Annotated[
    Optional[str],
    typer.Option(
        "--db",
        envvar="SCALELAB_DB",
        help="Database URL: sqlite:///PATH or postgresql+psycopg://USER@HOST:PORT/DB "
        "(default: $SCALELAB_DB, then sqlite:///scalelab.db in the current folder)",
        show_default=False,
    ),
]

OUTPUT_FORMATS = ("table", "csv", "json", "parquet")


def register(app: typer.Typer) -> None:
    """Add `sql` and `import` to the root app."""
    app.command("sql")(sql_command)
    app.command("import")(import_command)


def sql_command(
    query: Annotated[
        Optional[str], typer.Argument(help="One SQL statement, such as \"SELECT count(*) FROM runs\".")
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", help="Output format: table, csv, json or parquet.")
    ] = "table",
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Write the result to this file instead of stdout.")
    ] = None,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print every table and column with its unit, then exit.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Run a read-only SQL query on the store; writes (INSERT, DELETE, DROP, PRAGMA x=y) are rejected."""
    if output_format not in OUTPUT_FORMATS:
        raise ValueError(f"invalid --format {output_format!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    if schema:
        _print_schema(output_format, out)
        return
    if not query:
        raise ValueError("missing QUERY: pass one SQL statement, or --schema to list the tables")
    if output_format == "parquet" and out is None:
        raise ValueError("--format parquet writes a binary file: pass --out FILE.parquet")

    from store.readonly import read_only_query

    frame = read_only_query(db, query)
    _write_frame(frame, output_format, out)


def _write_frame(frame: pd.DataFrame, output_format: str, out: Path | None) -> None:
    if output_format == "parquet":
        frame.to_parquet(out, index=False)
    elif output_format == "csv":
        text = frame.to_csv(index=False)
        _emit(text, out)
    elif output_format == "json":
        from store.floats import json_safe

        records = [json_safe(record) for record in frame.to_dict(orient="records")]
        _emit(json.dumps(records, indent=2, allow_nan=False) + "\n", out)
    else:
        _print_table(frame, out)


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


def _cell(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return format(value, ".10g")
    return str(value)


def _print_table(frame: pd.DataFrame, out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text() keeps values such as "[bold]" literal instead of reading them as rich markup.
    table = Table(show_lines=False, header_style="bold")
    for column in frame.columns:
        table.add_column(Text(str(column)), overflow="fold")
    for row in frame.itertuples(index=False, name=None):
        table.add_row(*(Text(_cell(value)) for value in row))
    caption = f"{len(frame)} row" + ("" if len(frame) == 1 else "s")
    if out is None:
        console = Console()
        console.print(table)
        console.print(caption)
    else:
        with out.open("w") as handle:
            console = Console(file=handle, width=200)
            console.print(table)
            console.print(caption)


def _print_schema(output_format: str, out: Path | None) -> None:
    from store.schema import schema_docs

    docs = schema_docs()
    if output_format == "json":
        payload = {
            name: {
                "description": description,
                "columns": [
                    {"name": c.name, "type": c.sql_type, "unit": c.unit, "description": c.doc}
                    for c in columns
                ],
            }
            for name, (description, columns) in docs.items()
        }
        _emit(json.dumps(payload, indent=2) + "\n", out)
        return
    if output_format != "table":
        raise ValueError(f"--schema prints as table or json, not {output_format!r}")

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    handle = out.open("w") if out is not None else None
    try:
        console = Console(file=handle, width=160 if handle else None)
        for name, (description, columns) in docs.items():
            table = Table(title=Text(f"{name}: {description}"), title_justify="left", header_style="bold")
            for header in ("column", "type", "unit", "description"):
                table.add_column(header, overflow="fold")
            for column in columns:
                table.add_row(*(Text(part) for part in (column.name, column.sql_type, column.unit, column.doc)))
            console.print(table)
    finally:
        if handle is not None:
            handle.close()


def import_command(
    source: Annotated[
        Path, typer.Argument(help="CSV, JSON Lines or Parquet file, or a folder of Gadre et al. run files.")
    ],
    sweep: Annotated[str, typer.Option("--sweep", help="Name of the external sweep to create or update.")],
    params_col: Annotated[
        Optional[str], typer.Option("--params-col", help="Column with N, in parameters (default: num_params, params or N).")
    ] = None,
    tokens_col: Annotated[
        Optional[str], typer.Option("--tokens-col", help="Column with D, in tokens (default: num_tokens, tokens or D).")
    ] = None,
    flops_col: Annotated[
        Optional[str],
        typer.Option("--flops-col", help="Column with C, in FLOPs (default: compute_flops, compute_flops_6nd, flops or C)."),
    ] = None,
    loss_col: Annotated[
        Optional[str],
        typer.Option("--loss-col", help="Column with the final validation loss, in nats/token (default: final_loss, final_val_loss, val_loss or loss)."),
    ] = None,
    file_format: Annotated[
        Optional[str], typer.Option("--format", help="csv, jsonl, parquet or gadre2024 (default: from the suffix; a folder is gadre2024).")
    ] = None,
    gadre_dataset: Annotated[
        Optional[str],
        typer.Option("--gadre-dataset", help="Gadre et al. training corpus to import: c4_original, rpj or rw_original."),
    ] = None,
    gadre_val_set: Annotated[
        str, typer.Option("--gadre-val-set", help="Gadre et al. validation set whose loss is the final loss.")
    ] = "c4_val",
    db: DbOption = None,
) -> None:
    """Import published or external runs into an external sweep that can be fitted like our own."""
    from store import open_store
    from store.importer import import_runs

    with open_store(db) as store:
        result = import_runs(
            store,
            source,
            sweep,
            file_format=file_format,
            params_col=params_col,
            tokens_col=tokens_col,
            flops_col=flops_col,
            loss_col=loss_col,
            gadre_dataset=gadre_dataset,
            gadre_val_set=gadre_val_set,
        )
        typer.echo(
            f"imported {result.num_runs} runs ({result.file_format}) into external sweep "
            f"{result.sweep!r} of {store!r}"
        )
        for quantity, convention in result.conventions.items():
            typer.echo(f"  {quantity}: {convention}")
