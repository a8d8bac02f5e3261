"""`scalelab sql`: read-only on both engines, output formats and the schema listing."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from store import StoreError, open_store, read_sql
from store.cli import register


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture
def filled_url(db_url: str) -> str:
    with open_store(db_url) as store:
        store.upsert_sweep("grid", {"budgets": [1e11]})
        for run_id, loss in (("a", 3.0), ("b", float("nan"))):
            store.upsert_run({"id": run_id, "sweep": "grid", "num_params": 1e5, "num_tokens": 2e6})
            store.set_run_status(run_id, "completed", final_val_loss=loss)
        store.add_loss_points("a", [{"step": step, "train_loss": 4.0} for step in range(5)])
    return db_url


def row_counts(url: str) -> dict[str, int]:
    tables = ("sweeps", "runs", "loss_points")
    return {table: int(read_sql(f"SELECT count(*) AS n FROM {table}", url)["n"].item()) for table in tables}


WRITES = [
    "INSERT INTO sweeps (name, spec, external, created_at, updated_at) VALUES ('x', '{}', false, '2024-01-01', '2024-01-01')",
    "DELETE FROM loss_points",
    "UPDATE runs SET final_val_loss = 0",
    "DROP TABLE loss_points",
    "CREATE TABLE evil (x integer)",
]


@pytest.mark.parametrize("query", WRITES, ids=["insert", "delete", "update", "drop", "create"])
def test_writes_rejected_and_nothing_changes(app, filled_url, query):
    before = row_counts(filled_url)
    result = CliRunner().invoke(app, ["sql", query, "--db", filled_url])
    assert isinstance(result.exception, StoreError)
    assert "read-only" in str(result.exception)
    assert row_counts(filled_url) == before


def test_sqlite_writing_pragma_rejected(app, tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url).close()
    result = CliRunner().invoke(app, ["sql", "PRAGMA journal_mode = DELETE", "--db", url])
    assert isinstance(result.exception, StoreError)
    assert "query rejected (pragma journal_mode DELETE)" in str(result.exception)
    assert read_sql("PRAGMA journal_mode", url).iloc[0, 0] == "wal"
    # A PRAGMA that only reports is allowed.
    columns = read_sql("PRAGMA table_info(runs)", url)
    assert "final_val_loss_kind" in columns["name"].tolist()


def test_sqlite_attach_rejected(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url).close()
    with pytest.raises(StoreError, match=r"query rejected \(attach"):
        read_sql(f"ATTACH DATABASE '{tmp_path / 'other.db'}' AS other", url)
    assert not (tmp_path / "other.db").exists()


def test_second_statement_rejected(filled_url):
    before = row_counts(filled_url)
    with pytest.raises(StoreError, match=r"single SQL statement"):
        read_sql("SELECT 1; DELETE FROM loss_points", filled_url)
    # SQLite's authorizer rejects COMMIT itself before it reaches the second statement.
    with pytest.raises(StoreError, match=r"single SQL statement|query rejected \(transaction COMMIT\)"):
        read_sql("COMMIT; DELETE FROM loss_points", filled_url)
    assert row_counts(filled_url) == before


def test_store_read_sql_is_read_only(filled_url):
    with open_store(filled_url) as store:
        with pytest.raises(StoreError, match="read-only"):
            store.read_sql("DELETE FROM runs")
        frame = store.read_sql("SELECT id FROM runs WHERE final_val_loss_kind = 'finite'")
    assert frame["id"].tolist() == ["a"]


def test_syntax_error_message(filled_url):
    with pytest.raises(StoreError, match=r"query failed on .*"):
        read_sql("SELEC 1", filled_url)


def test_percent_sign_in_query(filled_url):
    frame = read_sql("SELECT name FROM sweeps WHERE name LIKE 'gr%'", filled_url)
    assert frame["name"].tolist() == ["grid"]


def test_table_output(app, filled_url):
    result = CliRunner().invoke(app, ["sql", "SELECT id, final_val_loss FROM runs ORDER BY id", "--db", filled_url])
    assert result.exit_code == 0, result.output
    assert "final_val_loss" in result.output
    assert "2 rows" in result.output


def test_csv_json_parquet_outputs(app, filled_url, tmp_path):
    query = "SELECT id, final_val_loss_kind FROM runs ORDER BY id"
    csv = CliRunner().invoke(app, ["sql", query, "--format", "csv", "--db", filled_url])
    assert csv.output.splitlines() == ["id,final_val_loss_kind", "a,finite", "b,nan"]

    as_json = CliRunner().invoke(app, ["sql", query, "--format", "json", "--db", filled_url])
    assert json.loads(as_json.output) == [
        {"id": "a", "final_val_loss_kind": "finite"},
        {"id": "b", "final_val_loss_kind": "nan"},
    ]

    out = tmp_path / "runs.parquet"
    parquet = CliRunner().invoke(app, ["sql", query, "--format", "parquet", "--out", str(out), "--db", filled_url])
    assert parquet.exit_code == 0, parquet.output
    assert pd.read_parquet(out)["id"].tolist() == ["a", "b"]


def test_parquet_needs_out(app, filled_url):
    result = CliRunner().invoke(app, ["sql", "SELECT 1", "--format", "parquet", "--db", filled_url])
    assert isinstance(result.exception, ValueError)
    assert "--format parquet writes a binary file: pass --out FILE.parquet" in str(result.exception)


def test_unknown_format(app, filled_url):
    result = CliRunner().invoke(app, ["sql", "SELECT 1", "--format", "xml", "--db", filled_url])
    assert "invalid --format 'xml': choose one of table, csv, json, parquet" in str(result.exception)


def test_missing_sqlite_file(tmp_path):
    with pytest.raises(StoreError, match=r"file '.*nothing.db' not found"):
        read_sql("SELECT 1", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert not (tmp_path / "nothing.db").exists()


def test_schema_lists_every_column_with_unit(app):
    from store.models import Base

    result = CliRunner().invoke(app, ["sql", "--schema", "--format", "json"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.output)
    for table in Base.metadata.sorted_tables:
        listed = {column["name"]: column for column in schema[table.name]["columns"]}
        assert set(listed) == {column.name for column in table.columns}
        assert all(column["unit"] and column["description"] for column in listed.values())
    assert {c["name"]: c["unit"] for c in schema["runs"]["columns"]}["compute_flops"] == "FLOPs"
    assert "isoflop_points" in schema


def test_root_command_exit_status(tmp_path):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    open_store(url).close()
    result = subprocess.run(
        [sys.executable, "-m", "scalelab.cli", "sql", "DELETE FROM runs", "--db", url],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: query rejected (delete runs)")
