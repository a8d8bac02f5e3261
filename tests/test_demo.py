"""`scalelab demo --quick` end to end: real text, Ray, SQLite, fits, predictions and the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run_scalelab(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    env.pop("SCALELAB_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "scalelab.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_rejects_bad_db_before_training(tmp_path):
    result = run_scalelab("demo", "--quick", "--db", "nosuchdriver://x/y", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "nosuchdriver://x/y" in result.stderr
    assert not (tmp_path / "scalelab_data").exists()


def test_demo_rejects_negative_bootstrap(tmp_path):
    result = run_scalelab("demo", "--quick", "--bootstrap", "-1", cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "--bootstrap -1" in result.stderr


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path):
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    result = run_scalelab("demo", "--quick", "--bootstrap", "200", "--db", db_url, cwd=tmp_path, timeout=1500)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert f"database: {db_url}" in result.stdout

    report = next(tmp_path.glob("*_report.html"))
    html = report.read_text(encoding="utf-8")
    assert "IsoFLOP" in html
    assert "LLaMA-65B" in html or "65B" in html

    counts = run_scalelab(
        "sql",
        "SELECT count(*) AS runs, count(DISTINCT budget_flops) AS budgets FROM runs WHERE status = 'completed'",
        "--format",
        "json",
        "--db",
        db_url,
        cwd=tmp_path,
    )
    assert counts.returncode == 0, counts.stderr
    row = json.loads(counts.stdout)[0]
    assert row["budgets"] >= 3
    assert row["runs"] >= 12

    # Every completed run has validation losses, and its final one.
    no_val = run_scalelab(
        "sql",
        "SELECT r.id FROM runs r WHERE r.status = 'completed' AND NOT EXISTS "
        "(SELECT 1 FROM loss_points p WHERE p.run_id = r.id AND p.val_loss IS NOT NULL)",
        "--format",
        "json",
        "--db",
        db_url,
        cwd=tmp_path,
    )
    assert no_val.returncode == 0, no_val.stderr
    assert json.loads(no_val.stdout) == []

    predict = run_scalelab("predict", "--sweep", "isoflop_quick", "--json", "--db", db_url, cwd=tmp_path)
    assert predict.returncode == 0, predict.stderr
    output = json.loads(predict.stdout)
    targets = {p["target"] for fit in output["fits"] for p in fit["predictions"]}
    assert {"LLaMA-7B", "LLaMA-13B", "LLaMA-33B", "LLaMA-65B"} <= targets

    # A second demo in the same folder reuses the corpus and reruns no completed run.
    again = run_scalelab("demo", "--quick", "--bootstrap", "50", "--db", db_url, cwd=tmp_path, timeout=900)
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert "ran 0" in again.stdout or "skipped" in again.stdout
