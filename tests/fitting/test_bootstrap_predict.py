"""Bootstrap by run, interval calibration, predictions and the holdout backtest."""

import numpy as np
import pytest

from fitting import api
from fitting.approach2 import budget_groups
from fitting.conventions import LLAMA_TARGETS, prepare_fit_data
from fitting.simulate import CHINCHILLA_LAW, simulate_isoflop_sweep

TRUE_A = CHINCHILLA_LAW["beta"] / (CHINCHILLA_LAW["alpha"] + CHINCHILLA_LAW["beta"])
TRUE_B = 1.0 - TRUE_A


def test_resampling_draws_whole_runs_within_budgets():
    data = prepare_fit_data(simulate_isoflop_sweep(seed=1), "total", "6nd")
    weights = api.resample_weights(data, 2, 50, np.random.default_rng(0))
    assert weights.shape == (50, data.num_runs)
    assert np.all(weights == np.round(weights))
    for group in budget_groups(data):
        np.testing.assert_array_equal(weights[:, group].sum(axis=1), group.size)
    weights3 = api.resample_weights(data, 3, 50, np.random.default_rng(0))
    np.testing.assert_array_equal(weights3.sum(axis=1), data.num_runs)
    # Resampling differs between draws: not every resample is the original data.
    assert (weights3 != 1).any(axis=1).all()


def test_intervals_cover_point_estimates():
    report = api.fit(simulate_isoflop_sweep(noise=0.01, seed=2), 2, num_resamples=300, seed=1)
    intervals = report.intervals()
    for name in ("a", "b", "log_k_n", "log_k_d"):
        low, high = intervals[name]
        assert low < high
    assert intervals["a"][0] <= report.fit.a <= intervals["a"][1]
    assert report.bootstrap.num_resamples == 300


@pytest.mark.slow
def test_interval_calibration_approach2():
    """80% intervals of a and b contain the truth in 70-90% of 100 synthetic sweeps."""
    covered_a = covered_b = 0
    trials = 100
    for seed in range(trials):
        frame = simulate_isoflop_sweep(noise=0.01, sizes_per_budget=15, seed=1000 + seed)
        report = api.fit(frame, 2, num_resamples=300, seed=seed, level=0.8)
        low, high = report.intervals()["a"]
        covered_a += low <= TRUE_A <= high
        low, high = report.intervals()["b"]
        covered_b += low <= TRUE_B <= high
    assert 0.70 <= covered_a / trials <= 0.90, covered_a
    assert 0.70 <= covered_b / trials <= 0.90, covered_b


@pytest.mark.slow
def test_interval_calibration_approach3():
    """80% intervals of a and b from Approach 3 contain the truth in 70-90% of 100 synthetic sweeps.

    Each fit starts from every 15th point of the Chinchilla grid (300 starts): data drawn from one
    law have one basin, and 100 fits from all 4,500 starts would take about ten minutes here.
    """
    from fitting.approach3 import bootstrap_approach3, chinchilla_grid, fit_approach3_with_candidates

    starts = chinchilla_grid()[::15]
    covered_a = covered_b = 0
    trials = 100
    for seed in range(trials):
        data = prepare_fit_data(simulate_isoflop_sweep(noise=0.01, seed=2000 + seed), "total", "6nd")
        rng = np.random.default_rng(seed)
        _, candidates = fit_approach3_with_candidates(data, starts=starts)
        samples = bootstrap_approach3(data, api.resample_weights(data, 3, 300, rng), candidates, rng=rng)
        # The same percentile intervals that FitReport.intervals gives.
        low, high = api._interval(samples["a"], 0.8)
        covered_a += low <= TRUE_A <= high
        low, high = api._interval(samples["b"], 0.8)
        covered_b += low <= TRUE_B <= high
    assert 0.70 <= covered_a / trials <= 0.90, covered_a
    assert 0.70 <= covered_b / trials <= 0.90, covered_b


def test_llama_predictions_invert_n_opt():
    report = api.fit(simulate_isoflop_sweep(noise=0.005, seed=3), 2, num_resamples=100)
    predictions = api.predict_targets(report)
    assert [p.target for p in predictions] == ["LLaMA-7B", "LLaMA-13B", "LLaMA-33B", "LLaMA-65B"]
    for prediction, target in zip(predictions, LLAMA_TARGETS):
        assert prediction.num_params == target.num_params
        assert float(report.fit.n_opt(prediction.compute_flops)) == pytest.approx(target.num_params, rel=1e-12)
        assert prediction.actual_tokens == target.actual_tokens
        assert prediction.loss is None
        low, high = prediction.intervals["num_tokens"]
        assert low <= prediction.num_tokens <= high
        assert prediction.extrapolation_factor > 1
    assert [t.actual_tokens for t in LLAMA_TARGETS] == [1.0e12, 1.0e12, 1.4e12, 1.4e12]
    assert LLAMA_TARGETS[0].num_non_embedding_params == 6_738_415_616 - 2 * 32_000 * 4096


def test_budget_predictions_with_loss():
    from fitting.approach3 import chinchilla_grid
    from fitting.results import FitReport
    from fitting.approach3 import fit_approach3

    data = prepare_fit_data(simulate_isoflop_sweep(noise=0.005, seed=4), "total", "6nd")
    law = fit_approach3(data, starts=chinchilla_grid()[::30])
    report = FitReport(fit=law, bootstrap=None, flags=(), seed=0)
    (prediction,) = api.predict_budgets(report, [1e21])
    assert prediction.num_params == pytest.approx(float(law.n_opt(1e21)))
    assert prediction.loss == pytest.approx(float(law.loss(prediction.num_params, prediction.num_tokens)))
    with pytest.raises(ValueError, match="compute budget -1"):
        api.predict_budgets(report, [-1.0])


def test_holdout_largest_reports_errors():
    frame = simulate_isoflop_sweep(noise=0.002, seed=5)
    report, holdout = api.holdout_largest(frame, 2)
    assert holdout.budget_flops == frame["budget_flops"].max()
    assert report.fit.num_runs == len(frame) - (frame["budget_flops"] == frame["budget_flops"].max()).sum()
    assert holdout.observed_n_opt is not None
    assert abs(holdout.n_opt_relative_error) < 0.2
    assert holdout.predicted_loss is None
    with pytest.raises(ValueError, match="two or more FLOP budgets"):
        api.holdout_largest(simulate_isoflop_sweep(budgets=(1e18,), seed=6), 2)


def test_fit_rejects_bad_options():
    frame = simulate_isoflop_sweep(seed=7)
    with pytest.raises(ValueError, match="unknown approach 4"):
        api.fit(frame, 4)
    with pytest.raises(ValueError, match="interval level must lie strictly between 0 and 1, got 80"):
        api.fit(frame, 2, level=80)
    with pytest.raises(ValueError, match="unknown C convention 'flops'"):
        api.fit(frame, 2, c_convention="flops")
