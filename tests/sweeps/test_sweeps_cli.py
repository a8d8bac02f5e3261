"""The sweep commands through the CLI, on a sweep run in this process."""

import json

import pytest
from typer.testing import CliRunner

from scalelab.cli import app
from store import open_store
from sweeps.runner import submit
from sweeps.spec import spec_from_dict
from sweep_helpers import tiny_spec_dict


@pytest.fixture(scope="module")
def finished_sweep(local_ray, tiny_corpus, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli_sweep")
    url = f"sqlite:///{folder / 'sweeps.db'}"
    spec = spec_from_dict(tiny_spec_dict(tiny_corpus, folder, "cli-sweep", steps_smallest=20))
    submit(spec, open_store(url), progress=False)
    return url


def invoke(*args):
    return CliRunner().invoke(app, list(args))


def test_status_json_counts(finished_sweep):
    result = invoke("sweep", "status", "cli-sweep", "--db", finished_sweep, "--json")
    assert result.exit_code == 0, result.output
    (summary,) = json.loads(result.stdout)
    assert summary["counts"]["completed"] == 4
    assert summary["num_runs"] == 4
    assert summary["progress"] == pytest.approx(1.0)


def test_status_table_lists_sweep(finished_sweep):
    result = invoke("sweep", "status", "--db", finished_sweep)
    assert result.exit_code == 0, result.output
    assert "cli-sweep" in result.output


def test_status_unknown_sweep_named(finished_sweep):
    result = invoke("sweep", "status", "no-such-sweep", "--db", finished_sweep)
    assert result.exit_code != 0
    assert "no-such-sweep" in str(result.exception)


def test_cancel_finished_sweep_changes_nothing(finished_sweep):
    result = invoke("sweep", "cancel", "cli-sweep", "--db", finished_sweep)
    assert result.exit_code == 0, result.output
    assert "0 unfinished runs marked cancelled" in result.output
    runs = open_store(finished_sweep).runs("cli-sweep")
    assert set(runs["status"]) == {"completed"}


def test_export_writes_hf_folder(finished_sweep, tmp_path):
    run_id = open_store(finished_sweep).runs("cli-sweep")["id"].iloc[0]
    out = tmp_path / "hf"
    result = invoke("export", run_id, "--hf", str(out), "--db", finished_sweep)
    assert result.exit_code == 0, result.output
    assert (out / "model.safetensors").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]


def test_export_unknown_run_named(finished_sweep, tmp_path):
    result = invoke("export", "0000000000000000", "--hf", str(tmp_path / "hf"), "--db", finished_sweep)
    assert result.exit_code != 0
    assert "run '0000000000000000' not found" in str(result.exception)
