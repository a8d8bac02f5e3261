"""`scalelab report`: the dashboard's figures of one sweep as one HTML file.

By default the file is self-contained: plotly.js travels inside it, gzip-compressed and
base64-encoded (about 2 MB instead of 4.8 MB), and the browser inflates it with the standard
`DecompressionStream` API before drawing. With `cdn=True` the page loads plotly.js from
cdn.plot.ly instead and the file holds only the figures.
"""

from __future__ import annotations

import base64
import gzip
import html
import logging
from datetime import datetime, timezone
from pathlib import Path

import plotly.graph_objects as go
import plotly.io
from plotly.offline import get_plotlyjs, get_plotlyjs_version

from dashboards import figures
from dashboards.data import DashboardData
from dashboards.views import curve_figures, envelope_figure, fit_status_lines, runs_table

logger = logging.getLogger(__name__)

# Points per run kept in the report's curves: 100 runs then cost about 1 MB of figure data,
# which keeps the self-contained file under 5 MB.
REPORT_CURVE_POINTS = 120
# The report draws every run's curve, not only the best per budget as the app does by default.
REPORT_CURVE_RUNS = 1000

_LOADER = """
<script>
(async () => {
  const bytes = Uint8Array.from(atob(document.getElementById("plotly-gz").textContent), c => c.charCodeAt(0));
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
  const source = await new Response(stream).text();
  const script = document.createElement("script");
  script.src = URL.createObjectURL(new Blob([source], {type: "text/javascript"}));
  script.onload = drawFigures;
  document.head.appendChild(script);
})();
</script>
"""

_DRAW = """
<script>
function drawFigures() {
  for (const holder of document.querySelectorAll("div.figure[data-figure]")) {
    const spec = JSON.parse(document.getElementById(holder.dataset.figure).textContent);
    Plotly.newPlot(holder, spec.data, spec.layout, {responsive: true, displaylogo: false});
  }
  document.body.dataset.rendered = "true";
}
</script>
"""

_STYLE = """
<style>
body { font-family: sans-serif; margin: 16px 32px; color: #222; }
table { border-collapse: collapse; font-family: monospace; font-size: 13px; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
th { background: #f3f3f3; }
.note { font-size: 13px; color: #444; margin: 2px 0; }
.figure { width: 100%; min-height: 420px; }
</style>
"""


def _table_html(frame) -> str:
    if frame.empty:
        return "<p class='note'>No rows.</p>"
    return frame.to_html(index=False, border=0, float_format=lambda value: f"{value:.4g}", na_rep="-")


def _figure_json(figure: go.Figure) -> str:
    # Escape "</" so that no string in the figure can close the <script> element early.
    return plotly.io.to_json(figure, validate=False).replace("</", "<\\/")


def render_report(data: DashboardData, sweep: str, *, cdn: bool = False,
                  n_convention: str = "total") -> str:
    """Render the report of `sweep` as an HTML string.

    Raises ValueError when the store has no sweep of that name or the sweep has no runs.
    """
    names = data.sweeps()
    if sweep not in names:
        raise ValueError(f"sweep {sweep!r} not found in the store (sweeps: {', '.join(names) or 'none'}): "
                         "pass --sweep with one of them")
    all_runs = data.runs(sweep)
    if all_runs.empty:
        raise ValueError(f"sweep {sweep!r} has no runs yet: submit it with `scalelab sweep submit` first")
    analysis = data.analysis(sweep, n_convention)
    runs = data.runs(sweep, hide_failed=True)

    sections: list[tuple[str, list[str | go.Figure]]] = []
    counts = all_runs["status"].value_counts()
    summary = ", ".join(f"{count} {status}" for status, count in counts.items())
    sections.append(("Runs", [f"<p class='note'>{html.escape(summary)}.</p>", _table_html(runs_table(all_runs))]))
    notes = [f"<p class='note'>{html.escape(line)}</p>" for line in fit_status_lines(analysis)]
    if analysis.message:
        notes.insert(0, f"<p class='note'>{html.escape(analysis.message)}</p>")
    sections.append(("Fits", notes))
    sections.append(("IsoFLOP profiles", [figures.isoflop_figure(analysis)]))
    sections.append(("Compute-optimal frontier", [figures.frontier_figure(analysis)]))
    sections.append(("Approach 3", [figures.approach3_figure(analysis)]))

    prediction_parts: list[str | go.Figure] = []
    for name, result in analysis.approaches.items():
        table = figures.predictions_table(result)
        if not table.empty:
            prediction_parts.append(f"<h3>{html.escape(result.label)}</h3>")
            prediction_parts.append(_table_html(table))
    prediction_parts.append(figures.predictions_figure(analysis))
    sections.append(("LLaMA 7B to 65B predictions", prediction_parts))

    completed = list(runs["run_id"])[:REPORT_CURVE_RUNS]
    sections.append(("Training curves", curve_figures(
        data, sweep, completed, hide_failed=True, max_points=REPORT_CURVE_POINTS)))
    sections.append(("Approach 1 envelope", [envelope_figure(
        data, sweep, analysis, hide_failed=True, max_points=REPORT_CURVE_POINTS)]))
    return _assemble(sweep, sections, cdn=cdn)


def _assemble(sweep: str, sections, *, cdn: bool) -> str:
    body, payloads = [], []
    for title, parts in sections:
        body.append(f"<h2>{html.escape(title)}</h2>")
        for part in parts:
            if isinstance(part, go.Figure):
                figure_id = f"figure-{len(payloads)}"
                payloads.append(f'<script type="application/json" id="{figure_id}">{_figure_json(part)}</script>')
                body.append(f'<div class="figure" data-figure="{figure_id}"></div>')
            else:
                body.append(part)

    if cdn:
        loader = (f'<script src="https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js" '
                  'charset="utf-8" onload="drawFigures()"></script>')
    else:
        packed = base64.b64encode(gzip.compress(get_plotlyjs().encode("utf-8"), 9)).decode("ascii")
        loader = f'<script type="text/plain" id="plotly-gz">{packed}</script>' + _LOADER
    created = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>scalelab report: {html.escape(sweep)}</title>",
        _STYLE, _DRAW,
        "</head><body>",
        f"<h1>Sweep {html.escape(sweep)}</h1>",
        f"<p class='note'>Written by scalelab on {created}; plotly.js {get_plotlyjs_version()}.</p>",
        *body,
        *payloads,
        loader,
        "</body></html>",
    ])


def write_report(data: DashboardData, sweep: str, out: str | Path, *, cdn: bool = False,
                 n_convention: str = "total") -> Path:
    """Write the report of `sweep` to `out` and return its path."""
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"report path {str(out)!r} does not end in .html: pass --out FILE.html")
    if not out.parent.exists():
        raise ValueError(f"folder {str(out.parent)!r} of the report does not exist: create it first")
    text = render_report(data, sweep, cdn=cdn, n_convention=n_convention)
    out.write_text(text, encoding="utf-8")
    logger.info("report of sweep %s written to %s (%.2f MB)", sweep, out, len(text.encode()) / 1e6)
    return out
