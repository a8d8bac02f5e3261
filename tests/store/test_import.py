"""`scalelab import`: tables in three formats and the Gadre et al. run files."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from store import open_store
from store.cli import register
from store.importer import import_runs

GADRE_DIR = Path(__file__).resolve().parents[1] / "data" / "gadre2024"

TABLE = pd.DataFrame(
    {
        "N": [1e8, 2e8, 4e8],
        "D": [4e9, 2e9, 1e9],
        "loss": [3.1, 3.0, float("nan")],
        "seed": [0, 1, 2],
    }
)


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_table_formats_with_n_and_d(store, tmp_path, suffix):
    source = write(TABLE, tmp_path / f"runs{suffix}")
    result = import_runs(store, source, "published", params_col="N", tokens_col="D", loss_col="loss")
    assert result.num_runs == 3
    assert store.sweep("published")["external"] is True
    runs = store.runs("published").sort_values("num_params")
    assert runs["num_tokens"].tolist() == [4e9, 2e9, 1e9]
    assert runs["compute_flops_6nd"].tolist() == [6 * 1e8 * 4e9, 6 * 2e8 * 2e9, 6 * 4e8 * 1e9]
    assert runs["status"].tolist() == ["completed", "completed", "diverged"]
    assert runs["seed"].tolist() == [0, 1, 2]
    assert "6 N D" in runs.iloc[0]["conventions"]["compute_flops"]
    inputs = store.fit_inputs("published", n_col="num_params", c_col="compute_flops")
    assert sorted(inputs["final_loss"]) == [3.0, 3.1]


def test_tokens_derived_from_flops(store, tmp_path):
    frame = pd.DataFrame({"params": [1e8, 1e9], "flops": [6e18, 6e20], "final_loss": [3.2, 2.8]})
    source = write(frame, tmp_path / "runs.csv")
    import_runs(store, source, "only-c")
    runs = store.runs("only-c").sort_values("num_params")
    assert runs["num_tokens"].tolist() == pytest.approx([1e10, 1e11], rel=1e-12)
    assert runs["compute_flops"].tolist() == [6e18, 6e20]
    assert runs.iloc[0]["conventions"]["num_tokens"] == "derived as C / (6N) from columns 'flops' and 'params'"
    spec = store.sweep("only-c")["spec"]
    assert spec["options"]["columns"] == {"params": "params", "tokens": None, "flops": "flops", "loss": "final_loss"}


def test_reimport_does_not_duplicate(store, tmp_path):
    source = write(TABLE, tmp_path / "runs.csv")
    import_runs(store, source, "published", params_col="N", tokens_col="D", loss_col="loss")
    import_runs(store, source, "published", params_col="N", tokens_col="D", loss_col="loss")
    assert len(store.runs("published")) == 3


def test_missing_columns_listed(store, tmp_path):
    source = write(TABLE, tmp_path / "runs.csv")
    with pytest.raises(ValueError, match=r"column 'n_params' \(--params-col\) not found; available columns: N, D, loss, seed"):
        import_runs(store, source, "x", params_col="n_params")
    frame = pd.DataFrame({"size": [1e8], "value": [3.0]})
    with pytest.raises(ValueError) as caught:
        import_runs(store, write(frame, tmp_path / "bare.csv"), "x")
    message = str(caught.value)
    assert "--params-col (tried num_params, params, N)" in message
    assert "--tokens-col or --flops-col" in message
    assert "available columns: size, value" in message
    assert "x" not in store.sweep_names()


def test_bad_values_named(store, tmp_path):
    frame = pd.DataFrame({"N": [1e8, -5.0], "D": [1e9, 1e9], "loss": [3.0, 3.0]})
    with pytest.raises(ValueError, match=r"row 2: column 'N' contains -5.0; expected a positive finite number"):
        import_runs(store, write(frame, tmp_path / "runs.csv"), "x")


def test_unknown_suffix(store, tmp_path):
    path = tmp_path / "runs.txt"
    path.write_text("N,D\n")
    with pytest.raises(ValueError, match=r"cannot tell the format of .*runs.txt.* pass --format"):
        import_runs(store, path, "x")


def test_gadre_import(store):
    result = import_runs(store, GADRE_DIR, "gadre-c4", gadre_dataset="c4_original")
    assert result.file_format == "gadre2024"
    assert result.num_runs == 34
    runs = store.runs("gadre-c4")
    assert (runs["status"] == "completed").all()
    assert runs["num_params"].min() > 1e7
    assert runs["num_params"].max() < 1e10
    assert runs["final_val_loss"].between(2.0, 6.0).all()
    smallest = runs.sort_values(["num_params", "num_tokens"]).iloc[0]
    assert smallest["d_model"] > 0
    assert smallest["n_layers"] > 0
    assert smallest["compute_flops"] == 6 * smallest["num_params"] * smallest["num_tokens"]
    inputs = store.fit_inputs("gadre-c4", n_col="num_params", c_col="compute_flops_6nd")
    assert len(inputs) == 34


def test_gadre_known_loss(store):
    import_runs(store, GADRE_DIR, "gadre-c4", gadre_dataset="c4_original", gadre_val_set="openlm")
    runs = store.runs("gadre-c4")
    row = runs[runs["config"].map(lambda config: config["name"] == "c4_original-d=1024_l=24_h=8-0.25")]
    # The value in that file's first result, validation set openlm.
    assert row["final_val_loss"].item() == 4.257023584842682
    assert row["num_params"].item() == 411616256.0
    assert row["num_tokens"].item() == 2058081280.0


def test_gadre_needs_dataset_when_mixed(store):
    with pytest.raises(ValueError, match=r"mixes training corpora c4_original, rpj, rw_original: choose one with --gadre-dataset"):
        import_runs(store, GADRE_DIR, "gadre")


def test_gadre_unknown_val_set(store):
    with pytest.raises(ValueError, match=r"no loss on validation set 'wikitext' .*available: c4_val, de-en, openlm"):
        import_runs(store, GADRE_DIR, "gadre", gadre_dataset="rpj", gadre_val_set="wikitext")


def test_import_command(db_url):
    app = typer.Typer()
    register(app)
    result = CliRunner().invoke(
        app, ["import", str(GADRE_DIR), "--sweep", "gadre-rw", "--gadre-dataset", "rw_original", "--db", db_url]
    )
    assert result.exit_code == 0, result.output
    assert "imported 35 runs (gadre2024) into external sweep 'gadre-rw'" in result.output
    with open_store(db_url) as store:
        assert len(store.fit_inputs("gadre-rw", n_col="num_params", c_col="compute_flops")) == 35
        assert all(math.isfinite(loss) for loss in store.runs("gadre-rw")["final_val_loss"])
