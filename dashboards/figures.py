"""Plotly figures of sweeps and fits, as pure functions of DataFrames and fit results.

The report and the live app both call these, so a figure looks the same in both.
Every function returns a figure even when it has nothing to draw: the figure then
carries the reason as an annotation instead of raising.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from dashboards.analysis import APPROACH_LABELS, ApproachResult, SweepAnalysis

LOSS_TITLE = "loss (nats per token)"
N_TITLE = {
    "num_params": "N: parameters (all)",
    "num_non_embedding_params": "N: non-embedding parameters",
}
D_TITLE = "D: training tokens (tokens)"
C_TITLE = "C: compute (FLOPs)"
APPROACH_COLORS = {"approach1": "#1f77b4", "approach2": "#d62728", "approach3": "#2ca02c"}


def _new_figure() -> go.Figure:
    # Plotly validates every property on assignment, which costs seconds per figure of a few
    # dozen traces. Our traces are built from known-good values, so validation is skipped.
    # NOTE: `_validate` is an undocumented keyword of plotly's BaseFigure (checked with plotly 7.1).
    return go.Figure(_validate=False)


def message_figure(message: str, title: str = "") -> go.Figure:
    """Build an empty figure that shows `message` in its middle."""
    figure = _new_figure()
    figure.add_annotation(
        text=message, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False, font=dict(size=14)
    )
    figure.update_layout(
        title=title,
        xaxis=dict(visible=False),
        yaxis=dict(visible=False),
        template="plotly_white",
        height=420,
    )
    return figure


def _layout(figure: go.Figure, title: str, height: int = 480) -> go.Figure:
    figure.update_layout(
        title=title,
        template="plotly_white",
        height=height,
        margin=dict(l=70, r=30, t=60, b=60),
        legend=dict(font=dict(size=10)),
    )
    return figure


def _budget_colors(budgets: list[float]) -> dict[float, str]:
    if not budgets:
        return {}
    positions = np.linspace(0.0, 1.0, len(budgets)) if len(budgets) > 1 else [0.5]
    return dict(zip(budgets, sample_colorscale("Viridis", list(positions))))


def _format_flops(value: float) -> str:
    return f"{value:.1e} FLOPs"


def _log_spaced_picks(count: int, max_points: int) -> np.ndarray:
    """Return a mask over `count` positions that keeps at most `max_points` of them, log-spaced.

    Positions are geometrically spaced from 1 to `count`, then de-duplicated. The last position
    always stays.
    """
    keep = np.zeros(count, dtype=bool)
    keep[np.geomspace(1, count, max_points).astype(int) - 1] = True
    keep[-1] = True
    return keep


def downsample_curves(points: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """Keep at most `max_points` train and `max_points` validation points of each run.

    Points are kept evenly spaced in log(step), so the fast early part of a curve keeps
    its shape. The first and last point of each run always stay. Runs keep the order in which
    they first appear in `points`, and each run's points come sorted by step.
    """
    if points.empty or max_points <= 0:
        return points
    run_codes = pd.factorize(points["run_id"])[0]
    order = np.lexsort((points["step"].to_numpy(), run_codes))
    points = points.iloc[order].reset_index(drop=True)
    run_codes = run_codes[order]
    keep = np.zeros(len(points), dtype=bool)
    for column in ("train_loss", "val_loss"):
        if column not in points:
            continue
        present = np.flatnonzero(points[column].notna().to_numpy())
        if present.size == 0:
            continue
        # Rank of each present point within its run, and its run's count of present points.
        runs_of_present = run_codes[present]
        starts = np.flatnonzero(np.r_[True, runs_of_present[1:] != runs_of_present[:-1]])
        counts = np.diff(np.r_[starts, present.size])
        rank = np.arange(present.size) - np.repeat(starts, counts)
        run_count = np.repeat(counts, counts)
        keep_present = run_count <= max_points
        for count in np.unique(counts[counts > max_points]):
            in_runs_of_count = run_count == count
            keep_present[in_runs_of_count] = _log_spaced_picks(int(count), max_points)[rank[in_runs_of_count]]
        keep[present[keep_present]] = True
    return points[keep].reset_index(drop=True)


def _with_flops(points: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Add `flops_seen`: tokens seen times the run's FLOPs per token (C / D)."""
    per_token = (runs["compute_flops"] / runs["num_tokens"]).rename("flops_per_token")
    joined = points.join(per_token, on="run_id")
    joined["flops_seen"] = joined["tokens_seen"].astype(float) * joined["flops_per_token"]
    return joined


def training_curves_figure(
    points: pd.DataFrame, runs: pd.DataFrame, *, x_axis: str = "tokens"
) -> go.Figure:
    """Draw the loss curves of the runs in `points` against tokens seen or FLOPs spent.

    `points` has run_id, step, tokens_seen, train_loss, val_loss; `runs` is indexed by
    run_id with num_params, num_tokens and compute_flops. Each run gets a train-loss line
    and, when it has any, validation-loss markers in the same colour.
    """
    if x_axis not in ("tokens", "flops"):
        raise ValueError(f"x_axis={x_axis!r} is not supported; use 'tokens' or 'flops'")
    title = "Training curves against " + ("tokens seen" if x_axis == "tokens" else "compute")
    if points.empty:
        return message_figure("No loss points for the chosen runs yet.", title)

    points = _with_flops(points, runs)
    x_column = "tokens_seen" if x_axis == "tokens" else "flops_seen"
    run_ids = list(dict.fromkeys(points["run_id"]))
    sizes = runs.loc[run_ids, "num_params"].astype(float)
    order = np.argsort(np.log10(sizes.to_numpy()))
    palette = sample_colorscale("Plasma", list(np.linspace(0.0, 0.85, max(len(run_ids), 2))))
    colors = {run_ids[i]: palette[rank] for rank, i in enumerate(order)}

    figure = _new_figure()
    for run_id, run_points in points.groupby("run_id", sort=False):
        run = runs.loc[run_id]
        name = f"{run_id} (N={run['num_params']:.3g}, C={run['compute_flops']:.2g})"
        train = run_points[run_points["train_loss"].notna()]
        figure.add_trace(
            dict(type="scatter", 
                x=train[x_column].to_numpy(),
                y=train["train_loss"].to_numpy(),
                mode="lines",
                name=name,
                legendgroup=str(run_id),
                line=dict(color=colors[run_id], width=1.5),
            )
        )
        val = run_points[run_points["val_loss"].notna()]
        if not val.empty:
            figure.add_trace(
                dict(type="scatter", 
                    x=val[x_column].to_numpy(),
                    y=val["val_loss"].to_numpy(),
                    mode="markers",
                    name=f"{run_id} validation",
                    legendgroup=str(run_id),
                    showlegend=False,
                    marker=dict(color=colors[run_id], size=6, symbol="circle-open"),
                )
            )
    figure.update_xaxes(
        type="log", title="tokens seen (tokens)" if x_axis == "tokens" else "compute spent (FLOPs)"
    )
    figure.update_yaxes(title=LOSS_TITLE)
    return _layout(figure, title + " (lines: train, circles: validation)")


def isoflop_figure(analysis: SweepAnalysis) -> go.Figure:
    """Draw loss against N for each budget, with Approach 2's parabolas and their minima."""
    title = "IsoFLOP profiles"
    inputs = analysis.fit_inputs
    if inputs is None or inputs.empty:
        return message_figure(analysis.message or "No completed runs to draw.", title)
    n_column = analysis.n_column
    result = analysis.approaches.get("approach2")
    budgets = sorted(inputs["budget_flops"].unique())
    colors = _budget_colors(budgets)

    figure = _new_figure()
    for budget in budgets:
        rows = inputs[inputs["budget_flops"] == budget].sort_values(n_column)
        figure.add_trace(
            dict(type="scatter", 
                x=rows[n_column].to_numpy(),
                y=rows["final_loss"].to_numpy(),
                mode="markers",
                name=f"runs at {_format_flops(budget)}",
                legendgroup=f"{budget:g}",
                marker=dict(color=colors[budget], size=8),
                customdata=rows["run_id"].to_numpy(),
                hovertemplate="run %{customdata}<br>N=%{x:.3s}<br>loss=%{y:.4f}<extra></extra>",
            )
        )

    minima_x, minima_y, error_minus, error_plus = [], [], [], []
    parabolas = result.parabolas if result is not None else []
    for parabola in parabolas:
        color = colors.get(parabola.budget_flops, "#555")
        low, high = parabola.log10_n_range
        x = np.linspace(low - 0.1, high + 0.1, 60)
        c2, c1, c0 = parabola.coefficients
        label = f"parabola at {_format_flops(parabola.budget_flops)}"
        if parabola.rejected_reason:
            label += f" (refused: {parabola.rejected_reason})"
        figure.add_trace(
            dict(type="scatter", 
                x=10**x,
                y=c2 * x**2 + c1 * x + c0,
                mode="lines",
                name=label,
                legendgroup=f"{parabola.budget_flops:g}",
                line=dict(color=color, dash="dot" if parabola.rejected_reason else "solid"),
            )
        )
        if parabola.rejected_reason is None and parabola.n_opt is not None:
            minima_x.append(parabola.n_opt)
            minima_y.append(parabola.loss_at_opt)
            interval = parabola.n_opt_interval or (parabola.n_opt, parabola.n_opt)
            error_minus.append(parabola.n_opt - interval[0])
            error_plus.append(interval[1] - parabola.n_opt)
    if minima_x:
        figure.add_trace(
            dict(type="scatter", 
                x=minima_x,
                y=minima_y,
                mode="markers",
                name="minimum (bootstrap interval)",
                marker=dict(symbol="star", size=14, color="black"),
                error_x=dict(type="data", array=error_plus, arrayminus=error_minus, visible=True),
            )
        )
    figure.update_xaxes(type="log", title=N_TITLE.get(n_column, n_column))
    figure.update_yaxes(title=LOSS_TITLE)
    if result is not None and result.error:
        figure.add_annotation(
            text="Approach 2 not fitted (reason in the fit summary); parabolas drawn for inspection",
            x=0.5, y=1.0, xref="paper", yref="paper", showarrow=False, yanchor="bottom",
        )
    return _layout(figure, title)


def lower_envelope(
    points: pd.DataFrame, runs: pd.DataFrame, *, num_levels: int = 80
) -> pd.DataFrame:
    """Return the lowest train loss over runs at log-spaced FLOP levels, and whose run it was.

    Each run's curve is interpolated in log FLOPs only inside the range it covers.
    Columns: compute_flops, loss, run_id, num_params.
    """
    curves = _with_flops(points[points["train_loss"].notna()], runs)
    curves = curves[curves["flops_seen"] > 0]
    if curves.empty:
        return pd.DataFrame(columns=["compute_flops", "loss", "run_id", "num_params"])
    levels = np.geomspace(curves["flops_seen"].min(), curves["flops_seen"].max(), num_levels)
    log_levels = np.log(levels)
    best_loss = np.full(num_levels, np.inf)
    best_run = np.full(num_levels, None, dtype=object)
    for run_id, run_points in curves.groupby("run_id", sort=False):
        run_points = run_points.sort_values("flops_seen")
        log_x = np.log(run_points["flops_seen"].to_numpy())
        loss = run_points["train_loss"].to_numpy(dtype=float)
        inside = (log_levels >= log_x[0]) & (log_levels <= log_x[-1])
        interpolated = np.interp(log_levels[inside], log_x, loss)
        better = interpolated < best_loss[inside]
        indices = np.flatnonzero(inside)[better]
        best_loss[indices] = interpolated[better]
        best_run[indices] = run_id
    found = np.isfinite(best_loss)
    envelope = pd.DataFrame(
        {"compute_flops": levels[found], "loss": best_loss[found], "run_id": best_run[found]}
    )
    envelope["num_params"] = runs.loc[envelope["run_id"], "num_params"].to_numpy(dtype=float)
    return envelope


def approach1_figure(
    points: pd.DataFrame, runs: pd.DataFrame, result: ApproachResult | None
) -> go.Figure:
    """Draw every run's train loss against FLOPs and the lower envelope of those curves."""
    title = "Approach 1: lower envelope of training curves"
    if points.empty:
        return message_figure("No loss points to draw the envelope from.", title)
    curves = _with_flops(points[points["train_loss"].notna()], runs)

    # All curves go into one trace, separated by NaN, so 200 runs cost one trace.
    xs, ys = [], []
    for _, run_points in curves.groupby("run_id", sort=False):
        xs.append(run_points["flops_seen"].to_numpy(dtype=float))
        ys.append(run_points["train_loss"].to_numpy(dtype=float))
        xs.append(np.array([np.nan]))
        ys.append(np.array([np.nan]))
    figure = _new_figure()
    figure.add_trace(
        dict(type="scatter", 
            x=np.concatenate(xs),
            y=np.concatenate(ys),
            mode="lines",
            name="training curves (train loss)",
            line=dict(color="rgba(120,120,120,0.35)", width=1),
            connectgaps=False,
        )
    )
    envelope = lower_envelope(points, runs)
    figure.add_trace(
        dict(type="scatter", 
            x=envelope["compute_flops"].to_numpy(),
            y=envelope["loss"].to_numpy(),
            mode="lines+markers",
            name="lower envelope",
            line=dict(color=APPROACH_COLORS["approach1"], width=3),
            marker=dict(size=5),
            customdata=np.stack(
                [envelope["num_params"].to_numpy(), envelope["run_id"].astype(str).to_numpy()],
                axis=-1,
            )
            if not envelope.empty
            else None,
            hovertemplate="C=%{x:.3g} FLOPs<br>loss=%{y:.4f}<br>N=%{customdata[0]:.3s}"
            "<br>run %{customdata[1]}<extra></extra>",
        )
    )
    figure.update_xaxes(type="log", title=C_TITLE)
    figure.update_yaxes(title=LOSS_TITLE)
    if result is not None and result.error:
        figure.add_annotation(
            text="Approach 1 not fitted (reason in the fit summary); envelope drawn for inspection",
            x=0.5, y=1.0, xref="paper", yref="paper", showarrow=False, yanchor="bottom",
        )
    return _layout(figure, title)


def parametric_loss(params: dict[str, float], num_params, num_tokens):
    """Evaluate L(N, D) = E + A / N^alpha + B / D^beta (Hoffmann et al. 2022, eq. 2)."""
    return (
        params["E"]
        + params["A"] / np.power(num_params, params["alpha"])
        + params["B"] / np.power(num_tokens, params["beta"])
    )


def approach3_figure(analysis: SweepAnalysis) -> go.Figure:
    """Draw Approach 3's loss contours over (N, D), the sweep's iso-FLOP lines and the frontier."""
    title = "Approach 3: L(N, D) contours, iso-FLOP lines and efficient frontier"
    result = analysis.approaches.get("approach3")
    if result is None or result.error or not result.params:
        reason = result.error if result is not None and result.error else "no Approach 3 fit"
        return message_figure(f"Approach 3 fit not available: {reason}", title)
    inputs = analysis.fit_inputs
    n_column = analysis.n_column
    num_params = inputs[n_column].to_numpy(dtype=float)
    num_tokens = inputs["num_tokens"].to_numpy(dtype=float)
    n_grid = np.geomspace(num_params.min() / 3, num_params.max() * 3, 90)
    d_grid = np.geomspace(num_tokens.min() / 3, num_tokens.max() * 3, 90)
    loss = parametric_loss(result.params, n_grid[None, :], d_grid[:, None])  # (D, N)

    figure = _new_figure()
    figure.add_trace(
        dict(type="contour", 
            x=n_grid,
            y=d_grid,
            z=loss,
            colorscale="Viridis_r",
            contours=dict(showlabels=True, labelfont=dict(size=9, color="white")),
            colorbar=dict(title=dict(text="loss (nats/token)")),
            name="L(N, D)",
            ncontours=18,
        )
    )
    # Iso-FLOP lines D = C / (6 N) for each budget of the sweep, in one trace.
    xs, ys = [], []
    for budget in sorted(inputs["budget_flops"].unique()):
        xs.extend(list(n_grid) + [None])
        ys.extend(list(budget / (6 * n_grid)) + [None])
    figure.add_trace(
        dict(type="scatter", x=xs, y=ys, mode="lines", name="iso-FLOP lines (C = 6ND)",
                   line=dict(color="white", dash="dash", width=1))
    )
    if result.n_opt is not None and result.d_opt is not None:
        compute = np.geomspace(6 * n_grid[0] * d_grid[0], 6 * n_grid[-1] * d_grid[-1], 80)
        n_opt, d_opt = result.n_opt(compute), result.d_opt(compute)
        inside = (n_opt >= n_grid[0]) & (n_opt <= n_grid[-1]) & (d_opt >= d_grid[0]) & (d_opt <= d_grid[-1])
        figure.add_trace(
            dict(type="scatter", x=n_opt[inside], y=d_opt[inside], mode="lines",
                       name="efficient frontier (N_opt, D_opt)", line=dict(color="red", width=3))
        )
    figure.add_trace(
        dict(type="scatter", 
            x=num_params, y=num_tokens, mode="markers", name="completed runs",
            marker=dict(color="black", size=7, line=dict(color="white", width=1)),
            customdata=inputs["final_loss"].to_numpy(),
            hovertemplate="N=%{x:.3s}<br>D=%{y:.3s}<br>loss=%{customdata:.4f}<extra></extra>",
        )
    )
    figure.update_xaxes(type="log", title=N_TITLE.get(n_column, n_column), range=np.log10([n_grid[0], n_grid[-1]]))
    figure.update_yaxes(type="log", title=D_TITLE, range=np.log10([d_grid[0], d_grid[-1]]))
    params = ", ".join(f"{k}={v:.4g}" for k, v in result.params.items())
    _layout(figure, f"{title}<br><sup>{params}</sup>", height=600)
    figure.update_layout(legend=dict(orientation="h", y=-0.18, x=0))
    return figure


def _band_traces(law, name: str, color: str, group: str) -> list[dict]:
    if law.band_compute_flops is None or law.band_lower is None or law.band_upper is None:
        return []
    fill = color.replace("rgb(", "rgba(").replace(")", ",0.15)") if color.startswith("rgb(") else color
    return [
        dict(type="scatter", x=law.band_compute_flops, y=law.band_upper, mode="lines", line=dict(width=0),
                   showlegend=False, legendgroup=group, hoverinfo="skip", name=f"{name} upper"),
        dict(type="scatter", x=law.band_compute_flops, y=law.band_lower, mode="lines", line=dict(width=0),
                   fill="tonexty", fillcolor=_transparent(fill), showlegend=False, legendgroup=group,
                   hoverinfo="skip", name=f"{name} band"),
    ]


def _transparent(color: str, alpha: float = 0.15) -> str:
    if color.startswith("#") and len(color) == 7:
        red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
        return f"rgba({red},{green},{blue},{alpha})"
    return color


def frontier_figure(analysis: SweepAnalysis, compute_range: tuple[float, float] | None = None) -> go.Figure:
    """Draw N_opt(C) and D_opt(C) of every fitted approach on one log-log plot, with bands."""
    title = "Compute-optimal N_opt(C) (solid) and D_opt(C) (dashed), bootstrap bands"
    fitted = {name: r for name, r in analysis.approaches.items() if r.n_opt is not None and r.error is None}
    if not fitted:
        reasons = "; ".join(
            f"{APPROACH_LABELS.get(name, name)}: {r.error or 'no fit'}" for name, r in analysis.approaches.items()
        )
        return message_figure(f"No approach could be fitted. {reasons}", title)
    if compute_range is None:
        low = analysis.fit_inputs["budget_flops"].min() if not analysis.fit_inputs.empty else 1e15
        compute_range = (low / 10, 1e24)
    compute = np.geomspace(compute_range[0], compute_range[1], 60)

    figure = _new_figure()
    for name, result in fitted.items():
        color = APPROACH_COLORS.get(name, "#444")
        for kind, law, dash in (("N_opt", result.n_opt, "solid"), ("D_opt", result.d_opt, "dash")):
            if law is None:
                continue
            group = f"{name}-{kind}"
            for trace in _band_traces(law, f"{result.label} {kind}", color, group):
                figure.add_trace(trace)
            exponent = f"{law.exponent:.3f}"
            if law.exponent_interval:
                exponent += f" [{law.exponent_interval[0]:.3f}, {law.exponent_interval[1]:.3f}]"
            figure.add_trace(
                dict(type="scatter", x=compute, y=law(compute), mode="lines", legendgroup=group,
                           name=f"{result.label}: {kind} ∝ C^{exponent}",
                           line=dict(color=color, dash=dash, width=2))
            )
        if result.optima is not None and not result.optima.empty:
            for column, symbol in (("n_opt", "circle"), ("d_opt", "square")):
                figure.add_trace(
                    dict(type="scatter", x=result.optima["compute_flops"].to_numpy(),
                               y=result.optima[column].to_numpy(), mode="markers",
                               name=f"{result.label}: measured {column}", legendgroup=f"{name}-{column}",
                               marker=dict(color=color, symbol=symbol, size=8, line=dict(color="black", width=1)))
                )
    refused = [f"{APPROACH_LABELS.get(n, n)} refused: {r.error}" for n, r in analysis.approaches.items() if r.error]
    if refused:
        figure.add_annotation(text="<br>".join(refused), x=0, y=1.0, xref="paper", yref="paper",
                              showarrow=False, xanchor="left", yanchor="top", align="left",
                              font=dict(size=10, color="#a00"))
    figure.update_xaxes(type="log", title=C_TITLE)
    figure.update_yaxes(type="log", title="N_opt (parameters) and D_opt (tokens)", exponentformat="power")
    return _layout(figure, title, height=560)


def predictions_table(result: ApproachResult | None) -> pd.DataFrame:
    """Format an approach's LLaMA predictions as display strings, one row per target."""
    if result is None or result.predictions is None or result.predictions.empty:
        return pd.DataFrame()
    table = result.predictions

    def with_interval(column: str, fmt: str) -> list[str]:
        values = []
        for _, row in table.iterrows():
            text = format(row[column], fmt) if pd.notna(row[column]) else "-"
            low, high = row.get(f"{column}_low"), row.get(f"{column}_high")
            if low is not None and high is not None and pd.notna(low) and pd.notna(high):
                text += f" [{format(low, fmt)}, {format(high, fmt)}]"
            values.append(text)
        return values

    formatted = pd.DataFrame({"target": table["target"].astype(str)})
    formatted["N (parameters)"] = with_interval("num_params", ".3g")
    formatted["D_opt (tokens)"] = with_interval("num_tokens", ".3g")
    formatted["C (FLOPs)"] = with_interval("compute_flops", ".3g")
    formatted["loss (nats/token)"] = with_interval("loss", ".4f")
    if "llama_num_tokens" in table:
        formatted["LLaMA tokens"] = [f"{value:.2g}" if pd.notna(value) else "-" for value in table["llama_num_tokens"]]
    return formatted


def predictions_figure(analysis: SweepAnalysis) -> go.Figure:
    """Draw compute-optimal tokens of each LLaMA target for every approach beside LLaMA's own."""
    title = "Compute-optimal tokens for LLaMA 7B to 65B"
    with_predictions = {
        name: r for name, r in analysis.approaches.items()
        if r.error is None and r.predictions is not None and not r.predictions.empty
    }
    if not with_predictions:
        return message_figure("No approach produced predictions for this sweep.", title)
    figure = _new_figure()
    llama = None
    for name, result in with_predictions.items():
        table = result.predictions
        has_interval = "num_tokens_low" in table and table["num_tokens_low"].notna().any()
        figure.add_trace(
            dict(type="bar", 
                x=table["target"].astype(str), y=table["num_tokens"].to_numpy(dtype=float),
                name=result.label, marker_color=APPROACH_COLORS.get(name, "#444"),
                error_y=dict(
                    type="data",
                    array=(table["num_tokens_high"] - table["num_tokens"]).to_numpy(dtype=float),
                    arrayminus=(table["num_tokens"] - table["num_tokens_low"]).to_numpy(dtype=float),
                    visible=True,
                ) if has_interval else None,
            )
        )
        if llama is None and "llama_num_tokens" in table:
            llama = table[["target", "llama_num_tokens"]]
    if llama is not None:
        figure.add_trace(
            dict(type="bar", x=llama["target"].astype(str), y=llama["llama_num_tokens"].to_numpy(dtype=float),
                   name="LLaMA's actual tokens", marker_color="#7f7f7f")
        )
    figure.update_layout(barmode="group")
    figure.update_xaxes(title="target model")
    figure.update_yaxes(type="log", title="training tokens (tokens)")
    return _layout(figure, title)
