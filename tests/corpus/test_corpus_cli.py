"""`scalelab data prepare` and `scalelab data info`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import typer
from typer.testing import CliRunner

from model.corpus.cli import register

EXCERPT_FILE = Path(__file__).parents[1] / "data" / "english_pd_excerpt.txt"


def data_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Root of the test app."""

    register(app)
    return app


def test_prepare_prints_counts(tmp_path):
    out = tmp_path / "corpus"
    result = CliRunner().invoke(
        data_app(), ["data", "prepare", "--source", str(EXCERPT_FILE), "--out", str(out), "--vocab-size", "512"]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    assert "train:" in result.output
    assert "tokens in" in result.output
    info = json.loads((out / "corpus.json").read_text())
    assert f"{info['num_tokens_train']:,} tokens" in result.output


def test_prepare_default_out_uses_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(data_app(), ["data", "prepare", "--source", str(EXCERPT_FILE), "--vocab-size", "512"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "scalelab_data" / "english_pd_excerpt" / "corpus.json").is_file()


def test_info_json(tiny_corpus):
    result = CliRunner().invoke(data_app(), ["data", "info", str(tiny_corpus), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["vocab_size"] == 512
    assert data["licence"] == "public domain"
    assert data["path"] == str(tiny_corpus.resolve())


def test_info_table_verifies(tiny_corpus):
    result = CliRunner().invoke(data_app(), ["data", "info", str(tiny_corpus), "--verify"])
    assert result.exit_code == 0, result.output
    assert "num_tokens_train" in result.output
    assert "verified" in result.output


def test_bad_source_exits_2_with_one_line(tmp_path):
    script = "from scalelab.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", script, "data", "prepare", "--source", str(tmp_path / "missing"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: corpus source")
    assert "missing" in result.stderr
