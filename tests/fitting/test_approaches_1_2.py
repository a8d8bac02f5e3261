"""Approaches 1 and 2: recovery of known exponents and the refusals, with their messages."""

import numpy as np
import pandas as pd
import pytest

from fitting.approach1 import fit_approach1
from fitting.approach2 import fit_approach2
from fitting.conventions import prepare_fit_data
from fitting.simulate import CHINCHILLA_LAW, simulate_grid, simulate_isoflop_sweep

TRUE_A = CHINCHILLA_LAW["beta"] / (CHINCHILLA_LAW["alpha"] + CHINCHILLA_LAW["beta"])
TRUE_B = 1.0 - TRUE_A


def data_of(frame):
    return prepare_fit_data(frame, "total", "6nd")


def test_approach2_recovers_exponents():
    fit = fit_approach2(data_of(simulate_isoflop_sweep(noise=0.001, seed=1)))
    assert fit.a == pytest.approx(TRUE_A, abs=0.02)
    assert fit.b == pytest.approx(TRUE_B, abs=0.02)
    assert len(fit.points) == 5
    assert fit.rejected == ()
    # N_opt * D_opt * 6 reproduces the budget within the parabola's error.
    budget = 1e19
    assert 6 * fit.n_opt(budget) * fit.d_opt(budget) == pytest.approx(budget, rel=0.05)


def test_approach2_rejects_three_point_budget():
    frame = simulate_isoflop_sweep(noise=0.001, seed=2)
    smallest = frame["budget_flops"].min()
    keep = (frame["budget_flops"] != smallest) | (frame.groupby("budget_flops").cumcount() < 3)
    fit = fit_approach2(data_of(frame[keep]))
    reasons = [r.reason for r in fit.rejected if r.budget_flops == smallest]
    assert reasons and "only 3 distinct points" in reasons[0]
    assert "rejected_budget" in {flag.code for flag in fit.flags}
    assert len(fit.points) == 4


def test_approach2_rejects_minimum_at_edge():
    frame = simulate_isoflop_sweep(noise=0.0, seed=3, size_span=16.0)
    budget = frame["budget_flops"].max()
    sizes = frame.loc[frame["budget_flops"] == budget, "num_params"]
    # Keep only the sizes above the optimum, so the minimum lies below the sampled range.
    drop = (frame["budget_flops"] == budget) & (frame["num_params"] <= sizes.median())
    fit = fit_approach2(data_of(frame[~drop]))
    reasons = [r.reason for r in fit.rejected if r.budget_flops == budget]
    assert reasons and "outside the sampled range" in reasons[0]


def test_approach2_rejects_downward_parabola():
    frame = simulate_isoflop_sweep(noise=0.0, seed=4)
    budget = frame["budget_flops"].min()
    rows = frame["budget_flops"] == budget
    frame.loc[rows, "final_loss"] = 5.0 - (np.log(frame.loc[rows, "num_params"]) - np.log(frame.loc[rows, "num_params"]).mean()) ** 2
    fit = fit_approach2(data_of(frame))
    reasons = [r.reason for r in fit.rejected if r.budget_flops == budget]
    assert reasons and "opens downwards" in reasons[0]


def test_approach2_needs_two_budgets():
    frame = simulate_isoflop_sweep(budgets=(1e18,), noise=0.001, seed=5)
    with pytest.raises(ValueError, match="at least 2 budgets with a valid IsoFLOP minimum, got 1"):
        fit_approach2(data_of(frame))


def test_approach2_two_budgets_flagged():
    frame = simulate_isoflop_sweep(budgets=(1e18, 1e19), noise=0.001, seed=6)
    fit = fit_approach2(data_of(frame))
    assert "two_budgets" in {flag.code for flag in fit.flags}


def test_approach1_recovers_exponents():
    frame = simulate_grid(
        sizes=tuple(np.geomspace(1e7, 1e10, 16)), tokens_per_param=tuple(np.geomspace(1, 400, 12)), noise=0.0005, seed=7
    )
    fit = fit_approach1(data_of(frame))
    assert fit.a == pytest.approx(TRUE_A, abs=0.05)
    assert fit.b == pytest.approx(TRUE_B, abs=0.05)


def test_approach1_rejects_isoflop_sweep():
    # One run per model size: no size has a curve of loss against FLOPs.
    frame = simulate_isoflop_sweep(seed=8)
    frame["num_params"] *= np.linspace(1.0, 1.01, len(frame))
    with pytest.raises(ValueError, match="Approach 1 needs at least 4 model sizes with runs at two or more token budgets each, got 0"):
        fit_approach1(data_of(frame))


def test_input_checks_name_the_problem():
    frame = simulate_isoflop_sweep(seed=9)
    with pytest.raises(ValueError, match="unknown N convention 'embedding'"):
        prepare_fit_data(frame, "embedding", "6nd")
    broken = frame.copy()
    broken.loc[0, "final_loss"] = np.nan
    with pytest.raises(ValueError, match="column final_loss has 1 values"):
        prepare_fit_data(broken, "total", "6nd")
    with pytest.raises(ValueError, match="one row per run"):
        prepare_fit_data(pd.concat([frame, frame.iloc[:1]]), "total", "6nd")
    with pytest.raises(ValueError, match="missing the columns"):
        prepare_fit_data(frame.drop(columns=["num_tokens"]), "total", "6nd")


def test_conventions_pick_columns():
    frame = simulate_isoflop_sweep(seed=10)
    data = prepare_fit_data(frame, "non_embedding", "with_attention")
    np.testing.assert_array_equal(data.num_params, frame["num_non_embedding_params"].to_numpy())
    np.testing.assert_array_equal(data.compute_flops, frame["compute_flops"].to_numpy())
    fit = fit_approach2(data)
    assert fit.n_convention == "non_embedding"
    assert fit.c_convention == "with_attention"
    assert fit.flops_per_param_token == pytest.approx(1.1 * 6 / 0.8)
