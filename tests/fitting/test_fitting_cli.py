"""`scalelab fit` and `scalelab predict` against a real SQLite store."""

import json

import pytest
from typer.testing import CliRunner

from fitting.simulate import simulate_isoflop_sweep
from scalelab.cli import app


@pytest.fixture()
def store_url(tmp_path):
    frame = simulate_isoflop_sweep(noise=0.005, seed=11)
    csv_path = tmp_path / "runs.csv"
    frame.drop(columns=["run_id", "sweep"]).to_csv(csv_path, index=False)
    url = f"sqlite:///{tmp_path / 'fit.db'}"
    result = CliRunner().invoke(app, ["import", str(csv_path), "--sweep", "synthetic", "--db", url])
    assert result.exit_code == 0, result.output
    return url


def test_fit_json_parses(store_url):
    result = CliRunner().invoke(
        app, ["fit", "--sweep", "synthetic", "--approach", "2", "--bootstrap", "50", "--json", "--db", store_url]
    )
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout.strip().splitlines()[-1])
    (entry,) = output["fits"]
    assert entry["approach"] == 2
    assert 0.35 < entry["params"]["a"] < 0.55
    assert set(entry["intervals"]) == {"a", "b", "log_k_n", "log_k_d"}
    assert [p["target"] for p in entry["predictions"]] == ["LLaMA-7B", "LLaMA-13B", "LLaMA-33B", "LLaMA-65B"]
    assert output["n_convention"] == "total"


def test_predict_reads_stored_fit(store_url):
    runner = CliRunner()
    fitted = runner.invoke(app, ["fit", "--sweep", "synthetic", "--approach", "2", "--bootstrap", "30", "--db", store_url])
    assert fitted.exit_code == 0, fitted.output
    assert "Approach 2" in fitted.stdout
    result = runner.invoke(app, ["predict", "--sweep", "synthetic", "--compute", "1e21", "--json", "--db", store_url])
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout.strip().splitlines()[-1])
    predictions = output["fits"][0]["predictions"]
    assert predictions[0]["target"] == "C=1e+21"
    low, high = predictions[0]["intervals"]["num_params"]
    assert low <= predictions[0]["num_params"] <= high
    assert len(predictions) == 5


def test_holdout_largest_in_output(store_url):
    result = CliRunner().invoke(
        app, ["fit", "--sweep", "synthetic", "--approach", "2", "--bootstrap", "0", "--holdout-largest", "--json", "--db", store_url]
    )
    assert result.exit_code == 0, result.output
    entry = json.loads(result.stdout.strip().splitlines()[-1])["fits"][0]
    assert entry["holdout_largest"]["budget_flops"] == pytest.approx(1e20)
    assert abs(entry["holdout_largest"]["n_opt_relative_error"]) < 0.3


def test_predict_without_fit_fails(store_url):
    result = CliRunner().invoke(app, ["predict", "--sweep", "synthetic", "--db", store_url])
    assert result.exit_code != 0
    assert "has no fits" in str(result.exception)


def test_bad_approach_rejected(store_url):
    result = CliRunner().invoke(app, ["fit", "--sweep", "synthetic", "--approach", "5", "--db", store_url])
    assert "invalid --approach '5'" in str(result.exception)
