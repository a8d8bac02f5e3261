"""The static report: size budget, CDN mode, input errors, and rendering in Chromium."""

from __future__ import annotations

import pytest

from dashboards.data import DashboardData
from dashboards.report import render_report, write_report
from dashboards.synthetic import fill_synthetic_sweep

# Approaches 1 and 2 fit in well under a second; Approach 3 runs in the real-sweep test.
FAST_APPROACHES = ("approach1", "approach2")


def test_report_of_100_runs_under_5_mb(store, tmp_path):
    # 4 budgets x 25 sizes, 1,000 loss points each: the curves must be downsampled to fit.
    fill_synthetic_sweep(store, "big", budgets=(1e15, 1e16, 1e17, 1e18), sizes_per_budget=25, points_per_run=1000)
    data = DashboardData(store, num_resamples=10, approaches=FAST_APPROACHES)
    path = write_report(data, "big", tmp_path / "big.html")
    size = path.stat().st_size
    assert size < 5e6, f"report is {size / 1e6:.2f} MB"
    text = path.read_text()
    assert "DecompressionStream" in text
    assert "cdn.plot.ly" not in text


def test_report_cdn_loads_plotly_from_cdn(synthetic_store):
    data = DashboardData(synthetic_store, num_resamples=10, approaches=FAST_APPROACHES)
    text = render_report(data, "beta", cdn=True)
    assert "https://cdn.plot.ly/plotly-" in text
    assert "plotly-gz" not in text
    assert len(text) < 1e6


def test_report_unknown_sweep_names_known_ones(synthetic_store, tmp_path):
    data = DashboardData(synthetic_store, approaches=FAST_APPROACHES)
    with pytest.raises(ValueError, match="sweep 'nope' not found"):
        write_report(data, "nope", tmp_path / "r.html")


def test_report_rejects_non_html_path(synthetic_store, tmp_path):
    data = DashboardData(synthetic_store, approaches=FAST_APPROACHES)
    with pytest.raises(ValueError, match="does not end in .html"):
        write_report(data, "beta", tmp_path / "r.pdf")


def test_report_of_sweep_without_completed_runs(synthetic_store):
    data = DashboardData(synthetic_store, approaches=FAST_APPROACHES)
    with pytest.raises(ValueError, match="sweep 'empty' has no runs"):
        render_report(data, "empty")


@pytest.mark.browser
def test_report_renders_in_chromium(synthetic_store, tmp_path, chromium, page_errors, artifacts):
    data = DashboardData(synthetic_store, num_resamples=10, approaches=FAST_APPROACHES)
    path = write_report(data, "alpha", tmp_path / "alpha.html")
    page = chromium.new_page(viewport={"width": 1200, "height": 900})
    errors = page_errors(page)
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-rendered=true]", timeout=60_000)
    counts = page.evaluate(
        "() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(plot => plot.data.length)"
    )
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    page.close()
    # IsoFLOP (3 budgets: 3 point sets, 3 parabolas, minima), frontier, Approach 3 (message),
    # predictions, 2 training-curve figures, Approach 1 envelope.
    assert len(counts) == 7
    assert counts[0] == 7
    assert counts[2] == 0
    assert counts[-1] == 2
    assert errors == []
