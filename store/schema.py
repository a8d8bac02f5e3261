"""Descriptions of the store's tables, views and columns with their units, for `--schema`."""

from __future__ import annotations

from dataclasses import dataclass

from store.models import Base

TABLE_DOCS = {
    "sweeps": "one row per sweep, ours or imported",
    "runs": "one row per training run (a grid point of a sweep)",
    "loss_points": "training and validation loss by step; unique per (run_id, step)",
    "fits": "one row per fit of a sweep's runs",
    "fit_parameters": "fitted parameters of a fit, one row each, with intervals",
    "predictions": "predictions made from a fit",
}
VIEWS = {
    "isoflop_points": (
        "completed runs with a finite final validation loss: the table an IsoFLOP fit reads",
        [
            ("run_id", "-", "runs.id"),
            ("sweep", "-", "sweeps.name"),
            ("budget_flops", "FLOPs", "runs.budget_flops"),
            ("num_params", "parameters", "runs.num_params"),
            ("num_non_embedding_params", "parameters", "runs.num_non_embedding_params"),
            ("num_tokens", "tokens", "runs.num_tokens"),
            ("compute_flops", "FLOPs", "runs.compute_flops"),
            ("compute_flops_6nd", "FLOPs", "runs.compute_flops_6nd"),
            ("final_loss", "nats/token", "runs.final_val_loss"),
        ],
    ),
}


@dataclass(frozen=True)
class ColumnDoc:
    """One column of a table or view."""

    name: str
    sql_type: str
    unit: str
    doc: str


def schema_docs() -> dict[str, tuple[str, list[ColumnDoc]]]:
    """Return {table or view: (description, columns)} for every table and view of the store."""
    docs: dict[str, tuple[str, list[ColumnDoc]]] = {}
    for name in TABLE_DOCS:
        table = Base.metadata.tables[name]
        columns = [
            ColumnDoc(
                name=column.name,
                sql_type=_type_name(column.type),
                unit=column.info.get("unit", "-"),
                doc=column.info.get("doc", ""),
            )
            for column in table.columns
        ]
        docs[table.name] = (TABLE_DOCS[name], columns)
    for view, (description, columns) in VIEWS.items():
        docs[view] = (
            f"view: {description}",
            [ColumnDoc(name, "", unit, f"from {source}") for name, unit, source in columns],
        )
    return docs


def _type_name(column_type: object) -> str:
    impl = getattr(column_type, "impl", column_type)
    name = type(impl).__name__.upper()
    if name == "STRING":
        return f"VARCHAR({impl.length})"
    return {
        "DOUBLE": "DOUBLE PRECISION",
        "JSON": "JSON (JSONB on PostgreSQL)",
        "DATETIME": "TIMESTAMP WITH TIME ZONE",
    }.get(name, name)
