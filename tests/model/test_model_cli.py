import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from model.cli import register


@pytest.fixture
def app():
    root = typer.Typer()
    register(root)

    @root.callback()
    def callback() -> None:
        """Root for tests: a callback keeps `model` as a subcommand group."""

    return root


def run_json(app, *args):
    result = CliRunner().invoke(app, ["model", "info", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_info_preset_json(app):
    info = run_json(app, "7B")
    assert info["num_params"] == 6_738_415_616
    assert info["num_non_embedding_params"] == 6_476_271_616
    assert info["flops_per_token"] == pytest.approx(6 * 6_476_271_616 - 6 * 65 * 4096 + 6 * 32000 * 4096 + 12 * 32 * 4096 * 2048)
    assert info["shape"]["d_model"] == 4096
    assert info["shape"]["d_ff"] == 11008


def test_info_shape_options(app):
    info = run_json(app, "--d-model", "64", "--n-layers", "2", "--n-heads", "4", "--vocab-size", "512", "--seq-len", "64")
    assert info["shape"]["d_ff"] == 256
    assert info["num_params"] == 2 * 512 * 64 + 2 * (4 * 64 * 64 + 3 * 64 * 256 + 2 * 64) + 64


def test_info_count_uses_size_family(app):
    info = run_json(app, "20M", "--vocab-size", "8192", "--seq-len", "256")
    assert abs(info["num_params"] / 20e6 - 1) < 0.06


def test_info_preset_with_override(app):
    info = run_json(app, "tiny", "--n-layers", "4")
    assert info["shape"]["n_layers"] == 4
    assert info["shape"]["d_model"] == 32


def test_info_table(app):
    result = CliRunner().invoke(app, ["model", "info", "13B"])
    assert result.exit_code == 0
    assert "13,015,864,320" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["huge"], "error: size 'huge' is neither a preset"),
        (["--d-model", "64"], "error: no SIZE and no --n-layers, --n-heads"),
        (["--d-model", "64", "--n-layers", "2", "--n-heads", "3"], "error: d_model=64 is not divisible by n_heads=3"),
    ],
)
def test_info_bad_input_exits_2(args, message):
    result = subprocess.run(
        [sys.executable, "-m", "scalelab.cli", "model", "info", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith(message), result.stderr
