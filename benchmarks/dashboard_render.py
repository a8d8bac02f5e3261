"""Time to first render of each dashboard view in headless Chromium, for 200 runs of 1,000 loss points.

Run with `python -m benchmarks.dashboard_render`. The store is synthetic (rows inserted through
the Store API). Fits are computed once before timing and reported as `fit_s`, because their
time depends on the `fitting` package and not on drawing. Each view's time runs from the tab
click until every figure of that view has its traces in the DOM. The last line is a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
GOAL_S = 2.0


def _wait_js() -> str:
    return """([view, sweep]) => {
        const content = document.querySelector('#view-content');
        const marker = content && content.querySelector('.view-marker');
        if (!marker || marker.dataset.view !== view || marker.dataset.sweep !== sweep) return false;
        if (view === 'runs') return content.querySelector('#runs-table') !== null;
        const plots = content.querySelectorAll('.js-plotly-plot');
        return plots.length > 0 && Array.from(plots).every(plot => plot.data !== undefined);
    }"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs in the synthetic sweep")
    parser.add_argument("--points", type=int, default=1000, help="loss points per run")
    parser.add_argument("--resamples", type=int, default=100, help="bootstrap resamples of the fits")
    parser.add_argument("--approaches", default="approach1,approach2,approach3",
                        help="comma-separated approaches to fit before timing")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from dashboards.app import BackgroundServer, create_app
    from dashboards.data import DashboardData
    from dashboards.synthetic import fill_synthetic_sweep
    from dashboards.views import VIEWS
    from store import open_store

    if not Path("/usr/bin/chromium").exists():
        sys.exit("error: /usr/bin/chromium not found: install Debian's chromium package")
    budgets = (1e15, 1e16, 1e17, 1e18)
    sizes_per_budget = max(1, args.runs // len(budgets))
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(f"sqlite:///{os.path.join(folder, 'bench.db')}")
        started = time.perf_counter()
        fill_synthetic_sweep(store, "bench", budgets=budgets, sizes_per_budget=sizes_per_budget,
                             points_per_run=args.points)
        fill_s = time.perf_counter() - started
        num_points = len(store.loss_points(list(store.runs("bench")["id"])))
        print(f"store: {sizes_per_budget * len(budgets)} runs, {num_points} loss points, filled in {fill_s:.1f} s")

        approaches = tuple(name.strip() for name in args.approaches.split(",") if name.strip())
        data = DashboardData(store, num_resamples=args.resamples, approaches=approaches)
        started = time.perf_counter()
        data.analysis("bench", "total")
        fit_s = time.perf_counter() - started
        print(f"fits of {', '.join(approaches)} with {args.resamples} resamples: {fit_s:.1f} s")

        render_s = {}
        with BackgroundServer(create_app(data, refresh_s=3600)) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
            started = time.perf_counter()
            page.goto(server.url)
            page.wait_for_function(_wait_js(), arg=["runs", "bench"], timeout=120_000)
            render_s["runs"] = time.perf_counter() - started
            print(f"{'runs':12s} {render_s['runs']:6.2f} s (page load included)")
            for view in list(VIEWS)[1:]:
                started = time.perf_counter()
                page.click(f"#tab-{view}")
                page.wait_for_function(_wait_js(), arg=[view, "bench"], timeout=120_000)
                render_s[view] = time.perf_counter() - started
                print(f"{view:12s} {render_s[view]:6.2f} s")
            browser.close()
        data.close()
        store.close()

    slowest = max(render_s, key=render_s.get)
    result = {
        "num_runs": sizes_per_budget * len(budgets),
        "num_loss_points": num_points,
        "render_s": {view: round(value, 3) for view, value in render_s.items()},
        "slowest_view": slowest,
        "max_render_s": round(render_s[slowest], 3),
        "goal_s": GOAL_S,
        "fit_s": round(fit_s, 2),
        "approaches": list(approaches),
        "console_errors": len(errors),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
