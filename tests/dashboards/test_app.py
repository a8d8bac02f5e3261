"""The live app in headless Chromium: every view renders, sweeps switch, errors are shown as messages."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from dashboards import figures
from dashboards.app import BackgroundServer, build_view, create_app
from dashboards.data import DashboardData
from dashboards.views import VIEWS

# Approaches 1 and 2 fit in well under a second, so the views need not wait for Approach 3.
FAST_APPROACHES = ("approach1", "approach2")
PLOT_COUNTS_JS = """() => Array.from(document.querySelectorAll('#view-content .js-plotly-plot'))
    .map(plot => (plot.data || []).length)"""


def _open_view(page, view: str, sweep: str) -> list[int]:
    """Click a view's tab and wait until it shows figures or a message for `sweep`; return trace counts."""
    page.click(f"#tab-{view}")
    try:
        _wait_for_view(page, view, sweep)
    except PlaywrightTimeoutError:
        view_text = page.evaluate("() => document.querySelector('#view-content')?.innerText ?? ''")
        raise AssertionError(f"view {view} of sweep {sweep} did not render; it shows: {view_text[:2000]!r}") from None
    return page.evaluate(PLOT_COUNTS_JS)


def _wait_for_view(page, view: str, sweep: str) -> None:
    page.wait_for_function(
        """([view, sweep]) => {
            const content = document.querySelector('#view-content');
            const marker = content && content.querySelector('.view-marker');
            if (!marker || marker.dataset.view !== view || marker.dataset.sweep !== sweep) return false;
            const text = content.innerText;
            if (text.includes('in the background')) return false;
            if (view === 'runs') return text.includes('Sweep ' + sweep + ':');
            const plots = content.querySelectorAll('.js-plotly-plot');
            return plots.length > 0 && Array.from(plots).every(plot => plot.data !== undefined);
        }""",
        arg=[view, sweep],
        timeout=120_000,
    )


def _open_all_views(page, sweep: str, artifacts, prefix: str) -> dict[str, list[int]]:
    counts = {}
    for view in VIEWS:
        counts[view] = _open_view(page, view, sweep)
        page.screenshot(path=str(artifacts / f"{prefix}-{sweep}-{view}.png"), full_page=True)
        if view == "runs":
            assert page.locator("#runs-table").count() == 1
    assert counts["runs"] == []
    assert len(counts["curves"]) == 2
    assert counts["curves"][0] == counts["curves"][1] > 0
    return counts


def _check_all_views(page, sweep: str, artifacts, prefix: str, *, num_budgets: int) -> dict[str, list[int]]:
    counts = _open_all_views(page, sweep, artifacts, prefix)
    # Per budget: a set of run points and a parabola; then one trace of minima.
    assert counts["isoflop"] == [2 * num_budgets + 1]
    assert counts["approach1"] == [2]
    assert counts["approach3"] == [0]
    # Approach 2: N_opt and D_opt lines with 2-trace bands, and measured n_opt and d_opt points.
    assert counts["frontier"] == [8]
    return counts


def _select_sweep(page, sweep: str) -> None:
    page.click("#sweep")
    page.get_by_role("option", name=sweep, exact=True).click()
    # Choosing the sweep that is already selected leaves the menu open over the tabs.
    page.keyboard.press("Escape")


def test_build_view_of_unknown_view_raises(synthetic_store):
    data = DashboardData(synthetic_store, approaches=FAST_APPROACHES)
    with pytest.raises(ValueError, match="unknown view 'nope'"):
        build_view(data, "nope", "alpha")


def test_views_of_sweep_without_runs_show_messages(synthetic_store):
    data = DashboardData(synthetic_store, approaches=FAST_APPROACHES)
    curves = build_view(data, "curves", "empty")
    assert "has no runs to draw yet" in curves[0].children
    isoflop = build_view(data, "isoflop", "empty")
    data.analysis("empty")
    isoflop = build_view(data, "isoflop", "empty")
    assert "no completed runs" in isoflop[0].children


def test_app_serves_cartesian_plotly_bundle(synthetic_store):
    from plotly.offline import get_plotlyjs_version

    from dashboards.app import PLOTLY_CARTESIAN_VERSION, PLOTLY_JS_ROUTE

    app = create_app(DashboardData(synthetic_store, approaches=FAST_APPROACHES))
    response = app.server.test_client().get("/" + PLOTLY_JS_ROUTE)
    assert response.status_code == 200
    header = response.get_data()[:200].decode()
    if get_plotlyjs_version() == PLOTLY_CARTESIAN_VERSION:
        assert f"plotly.js (cartesian - minified) v{PLOTLY_CARTESIAN_VERSION}" in header
    else:
        assert "cartesian" not in header


@pytest.mark.browser
def test_app_views_render_and_switch_sweep(synthetic_store, chromium, page_errors, artifacts):
    data = DashboardData(synthetic_store, num_resamples=20, approaches=FAST_APPROACHES)
    app = create_app(data, refresh_s=1.0)
    with BackgroundServer(app) as server:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        errors = page_errors(page)
        page.goto(server.url)
        page.wait_for_selector("#runs-table", timeout=60_000)
        _select_sweep(page, "alpha")
        page.click("#tab-runs")
        page.wait_for_function("() => (document.querySelector('#view-content')?.innerText ?? '').includes('Sweep alpha:')")
        alpha = _check_all_views(page, "alpha", artifacts, "synthetic", num_budgets=3)
        _select_sweep(page, "beta")
        beta = _check_all_views(page, "beta", artifacts, "synthetic", num_budgets=2)
        assert alpha["isoflop"] != beta["isoflop"]
        # The page drew every view with plotly.js's cartesian bundle, which has no 3D traces.
        traces = page.evaluate("() => Object.keys(Plotly.PlotSchema.get().traces)")
        assert {"scatter", "bar", "contour"} <= set(traces)
        assert "scatter3d" not in traces
        _select_sweep(page, "empty")
        page.click("#tab-isoflop")
        page.wait_for_function(
            "() => (document.querySelector('#view-content')?.innerText ?? '').includes('no completed runs')",
            timeout=60_000,
        )
        page.close()
    data.close()
    assert errors == []


@pytest.mark.browser
def test_app_on_empty_store_shows_message(store, chromium, page_errors):
    data = DashboardData(store)
    with BackgroundServer(create_app(data)) as server:
        page = chromium.new_page()
        errors = page_errors(page)
        page.goto(server.url)
        page.wait_for_function(
            "() => (document.querySelector('#view-content')?.innerText ?? '').includes('The store has no sweeps yet')",
            timeout=60_000,
        )
        page.close()
    assert errors == []


def _real_sweep_spec(corpus, tmp_path, name: str, num_budgets: int) -> dict:
    from model.corpus import Corpus
    from model.sizes import family_config

    seq_len, tokens_per_step = 32, 256
    base = family_config(32, 1, Corpus.open(corpus).info.vocab_size, seq_len).num_params
    smallest_budget = 6.0 * base * tokens_per_step * 30
    return {
        "name": name,
        "data": str(corpus),
        "seq_len": seq_len,
        "tokens_per_step": tokens_per_step,
        "budgets": [smallest_budget * 2**i for i in range(num_budgets)],
        "models": {"sizes": [base, int(base * 1.6), int(base * 2.5), int(base * 4)]},
        "storage": {"checkpoint_root": str(tmp_path / "checkpoints")},
        "train": {"eval_batches": 2},
    }


@pytest.fixture(scope="session")
def real_sweep_store(tiny_corpus, tmp_path_factory):
    """A store filled by two small real sweeps trained with Ray on the tiny corpus."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray

    from store import open_store
    from sweeps.runner import submit
    from sweeps.spec import spec_from_dict

    tmp_path = tmp_path_factory.mktemp("real_sweep")
    opened = open_store(f"sqlite:///{tmp_path / 'real.db'}")
    ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=100 * 1024**2,
             log_to_driver=False)
    try:
        for name, num_budgets in (("real_two_budgets", 2), ("real_one_budget", 1)):
            spec = spec_from_dict(_real_sweep_spec(tiny_corpus, tmp_path, name, num_budgets))
            submit(spec, opened, progress=False)
    finally:
        ray.shutdown()
    yield opened
    opened.close()


@pytest.mark.slow
@pytest.mark.browser
def test_app_on_real_sweep(real_sweep_store, chromium, page_errors, artifacts):
    runs = real_sweep_store.runs("real_two_budgets")
    assert (runs["status"] == "completed").sum() == 8
    # All three approaches, so that the contour view draws a real Approach 3 fit.
    data = DashboardData(real_sweep_store, num_resamples=20, approaches=("approach1", "approach2", "approach3"))
    with BackgroundServer(create_app(data, refresh_s=1.0)) as server:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        errors = page_errors(page)
        page.goto(server.url)
        page.wait_for_selector("#runs-table", timeout=60_000)
        _select_sweep(page, "real_two_budgets")
        counts = _open_all_views(page, "real_two_budgets", artifacts, "real")
        # Whether a tiny real sweep yields valid parabolas depends on its losses, so compare the
        # browser's trace counts with the figures the server built from the same fits.
        analysis = data.analysis("real_two_budgets", "total")
        assert counts["isoflop"] == [len(figures.isoflop_figure(analysis).data)]
        assert counts["isoflop"][0] >= 4
        contour_figure = figures.approach3_figure(analysis)
        assert analysis.approaches["approach3"].error is None
        assert "contour" in {trace.type for trace in contour_figure.data}
        assert counts["approach3"] == [len(contour_figure.data)]
        assert counts["frontier"] == [len(figures.frontier_figure(analysis).data)]
        assert counts["predictions"] == [len(figures.predictions_figure(analysis).data)]
        _select_sweep(page, "real_one_budget")
        # One budget: fitting rejects Approach 2, and the view shows the reason instead of failing.
        counts = _open_view(page, "frontier", "real_one_budget")
        assert counts == [0]
        text = page.inner_text("#view-content")
        assert "Approach 2 (IsoFLOP parabolas): not fitted" in text
        page.close()
    data.close()
    assert errors == []


def test_version_follows_loss_points_and_status(store):
    from dashboards.synthetic import fill_synthetic_sweep

    [run_id] = fill_synthetic_sweep(store, "live", budgets=(1e15,), sizes_per_budget=1, points_per_run=5,
                                    statuses={0: "running"})
    data = DashboardData(store)
    before, fits_before = data.version("live"), data.version("live", with_loss_points=False)
    store.add_loss_points(run_id, [{"step": 100, "tokens_seen": 10_000, "train_loss": 3.0}])
    assert data.version("live") != before
    assert data.version("live", with_loss_points=False) == fits_before
    store.set_run_status(run_id, "completed", final_val_loss=3.1)
    assert data.version("live", with_loss_points=False) != fits_before
