"""The live Dash app: one page of controls over tabs, one tab per view, redrawn as runs land."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import dash
from dash import Input, Output, State, dash_table, dcc, html

from dashboards import figures
from dashboards.analysis import APPROACH_LABELS, N_CONVENTIONS
from dashboards.data import DashboardData
from dashboards.views import VIEWS, curve_figures, envelope_figure, fit_status_lines, runs_table

logger = logging.getLogger(__name__)

# Seconds between polls of the store for new runs; a poll that finds no change redraws nothing.
REFRESH_S = 5.0
GRAPH_CONFIG = {"displaylogo": False}
# plotly.js's cartesian bundle (1.5 MB), served in place of the full bundle (4.8 MB) that
# Dash loads when the first graph mounts. It has every trace type the views draw.
PLOTLY_CARTESIAN_JS = Path(__file__).parent / "static" / "plotly-cartesian-4.1.1.min.js"
PLOTLY_CARTESIAN_VERSION = "4.1.1"
# The address from which Dash's renderer loads plotly.js when it serves resources itself.
PLOTLY_JS_ROUTE = "_dash-component-suites/plotly/package_data/plotly.min.js"


def _graph(view: str, index: int, figure) -> dcc.Graph:
    return dcc.Graph(id=f"graph-{view}-{index}", figure=figure, config=GRAPH_CONFIG,
                     className="scalelab-graph")


def _message(text: str) -> html.Div:
    return html.Div(text, className="scalelab-message",
                    style={"padding": "24px", "fontSize": "16px", "color": "#444"})


def _table(table_id: str, frame, *, page_size: int = 25) -> dash_table.DataTable:
    numeric = {column for column in frame.columns if frame[column].dtype.kind == "f"}
    columns = []
    for column in frame.columns:
        spec = {"name": column, "id": column}
        if column in numeric:
            spec.update(type="numeric", format={"specifier": ".4~g"})
        columns.append(spec)
    return dash_table.DataTable(
        id=table_id,
        columns=columns,
        data=frame.to_dict("records"),
        sort_action="native",
        filter_action="native",
        page_action="native",
        page_size=page_size,
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "monospace", "fontSize": "13px", "padding": "4px 8px"},
        style_header={"fontWeight": "bold"},
    )


def _controls() -> html.Div:
    label_style = {"fontWeight": "bold", "marginRight": "6px"}
    box = {"display": "inline-block", "marginRight": "24px", "verticalAlign": "middle"}
    return html.Div(
        [
            html.Div([html.Span("sweep", style=label_style),
                      dcc.Dropdown(id="sweep", clearable=False, style={"width": "260px"})], style=box),
            html.Div([html.Span("approach", style=label_style),
                      dcc.Dropdown(id="approach", value="approach3", clearable=False,
                                   options=[{"label": v, "value": k} for k, v in APPROACH_LABELS.items()],
                                   style={"width": "300px"})], style=box),
            html.Div([html.Span("N convention", style=label_style),
                      dcc.RadioItems(id="n-convention", value="total", inline=True,
                                     options=[{"label": v, "value": k} for k, v in N_CONVENTIONS.items()])],
                     style=box),
            html.Div([dcc.Checklist(id="hide-failed", value=["hide"], inline=True,
                                    options=[{"label": " hide diverged and failed runs", "value": "hide"}])],
                     style=box),
            html.Div([html.Span("runs for training curves", style=label_style),
                      dcc.Dropdown(id="curve-runs", multi=True, placeholder="default: best run of each budget",
                                   style={"width": "520px"})], style={**box, "marginTop": "8px"}),
        ],
        style={"padding": "8px 0"},
    )


def _serve_cartesian_plotly(app: dash.Dash) -> None:
    """Serve the cartesian bundle at the address Dash loads plotly.js from, when the versions match.

    In a cold browser, the full bundle took about 1.6 s of parsing on one core of a 2-core
    machine before the first figure appeared. With another plotly.js version installed, the
    full bundle stays, so the figures never meet a plotly.js older or newer than plotly's.
    """
    import flask
    from plotly.offline import get_plotlyjs_version

    installed_version = get_plotlyjs_version()
    if installed_version != PLOTLY_CARTESIAN_VERSION:
        logger.info("plotly ships plotly.js %s, not %s: the dashboard serves the full bundle",
                    installed_version, PLOTLY_CARTESIAN_VERSION)
        return
    route = app.config.requests_pathname_prefix + PLOTLY_JS_ROUTE
    body = PLOTLY_CARTESIAN_JS.read_bytes()

    @app.server.before_request
    def cartesian_plotly():
        if flask.request.path == route:
            return flask.Response(body, mimetype="application/javascript",
                                  headers={"Cache-Control": "public, max-age=86400"})
        return None


def create_app(data: DashboardData, *, refresh_s: float = REFRESH_S) -> dash.Dash:
    """Build the Dash app over `data`; call `.run(host=..., port=...)` to serve it."""
    app = dash.Dash(__name__, title="scalelab dashboard", update_title=None)
    _serve_cartesian_plotly(app)
    app.layout = html.Div(
        [
            html.H2("scalelab: sweeps and scaling-law fits", style={"margin": "8px 0"}),
            _controls(),
            dcc.Interval(id="refresh", interval=int(refresh_s * 1000)),
            dcc.Store(id="data-version"),
            dcc.Tabs(id="view", value="runs",
                     children=[dcc.Tab(label=label, value=view, id=f"tab-{view}") for view, label in VIEWS.items()]),
            dcc.Loading(html.Div(id="view-content", style={"paddingTop": "12px"}), delay_show=300),
        ],
        style={"fontFamily": "sans-serif", "margin": "0 16px"},
    )

    @app.callback(
        Output("sweep", "options"),
        Output("sweep", "value"),
        Output("data-version", "data"),
        Input("refresh", "n_intervals"),
        Input("sweep", "value"),
        State("n-convention", "value"),
        State("data-version", "data"),
    )
    def poll_store(_n_intervals, sweep, n_convention, known_version):
        names = data.sweeps()
        if sweep not in names:
            sweep = names[-1] if names else None
        # The version includes the state of the background fits, so that views waiting
        # for a fit redraw when it finishes.
        version = (f"{sweep}@{data.version(sweep)}|fits {data.fits_state(sweep, n_convention)}"
                   if sweep else "no sweeps")
        if version == known_version:
            version = dash.no_update
        return [{"label": name, "value": name} for name in names], sweep, version

    @app.callback(
        Output("curve-runs", "options"),
        Input("data-version", "data"),
        Input("hide-failed", "value"),
        State("sweep", "value"),
    )
    def list_curve_runs(_version, hide_failed, sweep):
        if not sweep:
            return []
        runs = data.runs(sweep, hide_failed=bool(hide_failed))
        return [
            {"label": f"{run.run_id} ({run.status}, N={run.num_params:.3g}, C={run.budget_flops:.2g})",
             "value": run.run_id}
            for run in runs.itertuples()
        ]

    @app.callback(
        Output("view-content", "children"),
        Input("view", "value"),
        Input("data-version", "data"),
        Input("approach", "value"),
        Input("n-convention", "value"),
        Input("hide-failed", "value"),
        Input("curve-runs", "value"),
        State("sweep", "value"),
    )
    def render_view(view, _version, approach, n_convention, hide_failed, curve_runs, sweep):
        if not sweep:
            return _message("The store has no sweeps yet. Run `scalelab sweep submit SPEC` "
                            "(or `scalelab import FILE --sweep NAME`); this page refreshes as runs land.")
        # The marker names the view and sweep that the content shows, so that browser tests
        # and the render benchmark never read a figure left over from the previous view.
        marker = html.Div(className="view-marker", hidden=True,
                          **{"data-view": view, "data-sweep": sweep})
        try:
            return [marker, *build_view(data, view, sweep, approach=approach, n_convention=n_convention,
                                        hide_failed=bool(hide_failed), curve_runs=curve_runs)]
        except Exception as error:  # noqa: BLE001 - one broken view must not take the app down
            logger.exception("view %s of sweep %s failed", view, sweep)
            return [marker, _message(f"This view failed for sweep {sweep!r}: {error}")]

    return app


def build_view(data: DashboardData, view: str, sweep: str, *, approach: str = "approach3",
               n_convention: str = "total", hide_failed: bool = True,
               curve_runs: list[str] | None = None) -> list:
    """Build the Dash components of one view of one sweep."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}: use one of {', '.join(VIEWS)}")
    runs = data.runs(sweep, hide_failed=hide_failed)
    if view == "runs":
        counts = data.runs(sweep)["status"].value_counts()
        summary = ", ".join(f"{count} {status}" for status, count in counts.items()) or "no runs"
        return [html.P(f"Sweep {sweep}: {summary}."), _table("runs-table", runs_table(runs))]
    if view == "curves":
        if runs.empty:
            return [_message(f"Sweep {sweep} has no runs to draw yet.")]
        return [_graph(view, i, figure) for i, figure in enumerate(curve_figures(
            data, sweep, curve_runs, hide_failed=hide_failed))]

    analysis = data.analysis_if_ready(sweep, n_convention)
    if analysis is None:
        return [_message(f"Fitting sweep {sweep} ({n_convention} N) in the background; "
                         "this view draws itself when the fit finishes.")]
    notes = [html.P(line, style={"margin": "2px 0", "fontSize": "13px"}) for line in fit_status_lines(analysis)]
    if analysis.message:
        notes.insert(0, _message(analysis.message))
    if view == "isoflop":
        return notes + [_graph(view, 0, figures.isoflop_figure(analysis))]
    if view == "approach1":
        return notes + [_graph(view, 0, envelope_figure(data, sweep, analysis, hide_failed=hide_failed))]
    if view == "approach3":
        return notes + [_graph(view, 0, figures.approach3_figure(analysis))]
    if view == "frontier":
        return notes + [_graph(view, 0, figures.frontier_figure(analysis))]
    # view == "predictions"
    result = analysis.approaches.get(approach)
    table = figures.predictions_table(result)
    header = html.H4(f"Predictions of {APPROACH_LABELS.get(approach, approach)}")
    if table.empty:
        reason = result.error if result is not None and result.error else "no predictions"
        body = _message(f"No predictions from this approach: {reason}")
    else:
        body = _table("predictions-table", table, page_size=10)
    return notes + [header, body, _graph(view, 0, figures.predictions_figure(analysis))]


def serve(data: DashboardData, *, host: str = "127.0.0.1", port: int = 8050) -> None:
    """Serve the app until interrupted; binds to loopback unless `host` names another address."""
    app = create_app(data)
    logger.info("dashboard serving on http://%s:%d", host, port)
    app.run(host=host, port=port, debug=False)
    logger.info("dashboard stopped")


class BackgroundServer:
    """The app served by werkzeug in a daemon thread, for tests and the render benchmark.

    `port=0` picks a free loopback port; `url` gives the address it got.
    """

    def __init__(self, app: dash.Dash, *, host: str = "127.0.0.1", port: int = 0):
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            # One log line per request would drown the test and benchmark output.
            def log_request(self, *args, **kwargs) -> None:
                pass

        self._server = make_server(host, port, app.server, threaded=True, request_handler=QuietHandler)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="scalelab-dashboard",
                                        daemon=True)

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        logger.info("dashboard serving on %s", self.url)
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        logger.info("dashboard on %s stopped", self.url)
