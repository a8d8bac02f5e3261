"""Figure functions on small hand-made frames: trace counts, downsampling, messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboards import figures
from dashboards.analysis import ApproachResult, Parabola, PowerLaw, SweepAnalysis, empty_analysis


def _runs() -> pd.DataFrame:
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b"],
            "num_params": [1e6, 4e6],
            "num_tokens": [1e8, 2.5e7],
            "compute_flops": [6e14, 6e14],
        }
    )
    return runs.set_index("run_id", drop=False)


def _points(num_points: int = 1000) -> pd.DataFrame:
    frames = []
    for run_id, offset in (("a", 0.0), ("b", 0.1)):
        steps = np.arange(1, num_points + 1)
        frames.append(
            pd.DataFrame(
                {
                    "run_id": run_id,
                    "step": steps,
                    "tokens_seen": steps * 1000,
                    "train_loss": 5.0 - np.log(steps) / 4 + offset,
                    "val_loss": np.where(steps % 100 == 0, 5.0 - np.log(steps) / 4 + offset, np.nan),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_downsample_keeps_ends_and_limit():
    points = _points()
    kept = figures.downsample_curves(points, 50)
    for run_id, run_points in kept.groupby("run_id"):
        assert run_points["train_loss"].notna().sum() <= 50 + 10
        assert run_points["step"].min() == 1
        assert run_points["step"].max() == 1000
    assert kept["val_loss"].notna().sum() == points["val_loss"].notna().sum()


def test_training_curves_one_line_and_markers_per_run():
    figure = figures.training_curves_figure(_points(), _runs(), x_axis="flops")
    assert len(figure.data) == 4
    assert figure.layout.xaxis.type == "log"
    assert "FLOPs" in figure.layout.xaxis.title.text
    # FLOPs seen are tokens seen times C / D of the run.
    assert figure.data[0].x[-1] == pytest.approx(1000 * 1000 * 6e14 / 1e8)


def test_training_curves_reject_unknown_axis():
    with pytest.raises(ValueError, match="x_axis='steps' is not supported"):
        figures.training_curves_figure(_points(), _runs(), x_axis="steps")


def test_training_curves_without_points_show_message():
    figure = figures.training_curves_figure(_points().iloc[:0], _runs())
    assert len(figure.data) == 0
    assert "No loss points" in figure.layout.annotations[0].text


def test_lower_envelope_follows_lower_run():
    envelope = figures.lower_envelope(_points(), _runs())
    # Run a reaches each FLOP count at 4x the tokens of run b, so it is lower wherever it exists.
    # Past the last point of run a (6e12 FLOPs), only run b is left.
    covered_by_a = envelope["compute_flops"] <= 1e6 * 6e6
    assert set(envelope.loc[covered_by_a, "run_id"]) == {"a"}
    assert set(envelope.loc[~covered_by_a, "run_id"]) == {"b"}
    assert (np.diff(envelope["compute_flops"]) > 0).all()


def _analysis(with_fits: bool = True) -> SweepAnalysis:
    inputs = pd.DataFrame(
        {
            "run_id": [f"r{i}" for i in range(8)],
            "budget_flops": [1e15] * 4 + [1e16] * 4,
            "num_params": [1e6, 2e6, 4e6, 8e6] * 2,
            "num_tokens": [1e15 / (6 * n) for n in [1e6, 2e6, 4e6, 8e6]] + [1e16 / (6 * n) for n in [1e6, 2e6, 4e6, 8e6]],
            "final_loss": [4.0, 3.8, 3.9, 4.2, 3.6, 3.4, 3.3, 3.5],
        }
    )
    law = PowerLaw(0.1, 0.5, (0.45, 0.55), np.geomspace(1e14, 1e20, 5), np.geomspace(1e5, 1e8, 5), np.geomspace(2e5, 2e8, 5))
    approaches = {
        "approach1": ApproachResult("approach1", error="needs at least 4 model sizes"),
        "approach2": ApproachResult(
            "approach2",
            n_opt=law,
            d_opt=law,
            parabolas=[
                Parabola(1e15, (0.5, -6.3, 23.6), (6.0, 6.9), 2.5e6, (2e6, 3e6), 3.8),
                Parabola(1e16, (0.5, -6.5, 24.0), (6.0, 6.9), None, None, None, "its minimum lies at the edge"),
            ],
        ),
        "approach3": ApproachResult(
            "approach3", n_opt=law, d_opt=law,
            params={"E": 1.7, "A": 400.0, "B": 400.0, "alpha": 0.34, "beta": 0.28},
        ),
    }
    if not with_fits:
        approaches = {name: ApproachResult(name, error="too few runs") for name in approaches}
    return SweepAnalysis("s", "num_params", inputs, approaches)


def test_isoflop_traces_per_budget():
    figure = figures.isoflop_figure(_analysis())
    # 2 budgets of points, 2 parabolas, 1 trace of accepted minima.
    assert len(figure.data) == 5
    assert "refused" in figure.data[3].name
    assert figure.data[4].error_x.array[0] == pytest.approx(0.5e6)


def test_frontier_draws_lines_and_bands():
    figure = figures.frontier_figure(_analysis())
    # Approaches 2 and 3, each N_opt and D_opt with a 2-trace band: 2 * 2 * 3.
    assert len(figure.data) == 12
    assert figure.layout.xaxis.type == "log"
    assert figure.layout.yaxis.type == "log"
    assert "needs at least 4 model sizes" in figure.layout.annotations[0].text


def test_frontier_message_when_all_refused():
    figure = figures.frontier_figure(_analysis(with_fits=False))
    assert len(figure.data) == 0
    assert "too few runs" in figure.layout.annotations[0].text


def test_approach3_contours_and_frontier():
    figure = figures.approach3_figure(_analysis())
    assert [trace.type for trace in figure.data] == ["contour", "scatter", "scatter", "scatter"]
    assert "N: parameters" in figure.layout.xaxis.title.text
    assert "tokens" in figure.layout.yaxis.title.text


def test_empty_analysis_views_show_message():
    analysis = empty_analysis("s", "total", "Sweep s has no completed runs")
    for build in (figures.isoflop_figure, figures.approach3_figure, figures.frontier_figure, figures.predictions_figure):
        figure = build(analysis)
        assert len(figure.data) == 0
        assert figure.layout.annotations, build.__name__


def test_predictions_table_formats_intervals():
    result = ApproachResult(
        "approach3",
        predictions=pd.DataFrame(
            {
                "target": ["LLaMA-7B"],
                "num_params": [6.7e9],
                "num_tokens": [1.4e11],
                "num_tokens_low": [1.0e11],
                "num_tokens_high": [2.0e11],
                "compute_flops": [5.6e21],
                "loss": [2.1],
                "llama_num_tokens": [1e12],
            }
        ),
    )
    table = figures.predictions_table(result)
    assert table.loc[0, "D_opt (tokens)"] == "1.4e+11 [1e+11, 2e+11]"
    assert table.loc[0, "LLaMA tokens"] == "1e+12"


def test_downsample_matches_per_run_rule():
    """Each run keeps exactly the log-spaced ranks of its own present points, runs in first-seen order."""
    rng = np.random.default_rng(0)
    frames = []
    for run_id, num_steps in (("z-run", 700), ("a-run", 40), ("m-run", 1300)):
        steps = np.arange(1, num_steps + 1)
        frames.append(pd.DataFrame({
            "run_id": run_id, "step": steps, "tokens_seen": steps * 10,
            "train_loss": np.where(rng.random(num_steps) < 0.1, np.nan, 4.0),
            "val_loss": np.where(steps % 3 == 0, 4.5, np.nan),
        }))
    points = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=1)
    downsampled = figures.downsample_curves(points, 60)
    assert list(dict.fromkeys(downsampled["run_id"])) == list(dict.fromkeys(points["run_id"]))
    for run_id, run_points in points.groupby("run_id"):
        run_points = run_points.sort_values("step")
        expected = set()
        for column in ("train_loss", "val_loss"):
            present_steps = run_points.loc[run_points[column].notna(), "step"].to_numpy()
            if present_steps.size <= 60:
                expected.update(present_steps)
                continue
            picks = np.unique(np.geomspace(1, present_steps.size, 60).astype(int) - 1)
            expected.update(present_steps[picks])
            expected.add(present_steps[-1])
        kept_steps = downsampled.loc[downsampled["run_id"] == run_id, "step"].to_numpy()
        assert list(kept_steps) == sorted(expected)
