"""`scalelab report` and `scalelab dashboard` from the command line: output files and input errors."""

from __future__ import annotations

import subprocess
import sys


def _scalelab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scalelab.cli", *args], capture_output=True, text=True, timeout=600)


def test_report_writes_html(synthetic_store, tmp_path):
    out = tmp_path / "beta.html"
    result = _scalelab("report", "--sweep", "beta", "--out", str(out), "--resamples", "0",
                       "--db", synthetic_store.url)
    assert result.returncode == 0, result.stderr
    assert "report of sweep beta written to" in result.stdout
    assert out.read_text().startswith("<!DOCTYPE html>")


def test_report_unknown_sweep_exits_2(synthetic_store, tmp_path):
    result = _scalelab("report", "--sweep", "nope", "--out", str(tmp_path / "r.html"), "--db", synthetic_store.url)
    assert result.returncode == 2
    assert "error: sweep 'nope' not found" in result.stderr


def test_report_bad_n_convention_exits_2(synthetic_store, tmp_path):
    result = _scalelab("report", "--sweep", "beta", "--out", str(tmp_path / "r.html"), "--n-convention", "all",
                       "--db", synthetic_store.url)
    assert result.returncode == 2
    assert "invalid --n-convention 'all'" in result.stderr


def test_dashboard_bad_port_exits_2(synthetic_store):
    result = _scalelab("dashboard", "--port", "70000", "--db", synthetic_store.url)
    assert result.returncode == 2
    assert "invalid --port 70000" in result.stderr
