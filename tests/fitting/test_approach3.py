"""Approach 3: objective, gradient, optimiser, closed form and refusals."""

import numpy as np
import pytest
from scipy import optimize

from fitting import approach3
from fitting.conventions import prepare_fit_data
from fitting.simulate import CHINCHILLA_LAW, simulate_random_runs

# Every 30th grid start: 150 starts that keep the grid's spread, for tests that need no full grid.
SUBGRID = approach3.chinchilla_grid()[::30]


def test_grid_matches_chinchilla():
    grid = approach3.chinchilla_grid()
    assert grid.shape == (4500, 5)
    assert sorted(set(grid[:, 0])) == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0]
    assert sorted(set(grid[:, 2])) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert sorted(set(grid[:, 3])) == [0.0, 0.5, 1.0, 1.5, 2.0]
    assert len({tuple(row) for row in grid}) == 4500


def test_gradient_matches_finite_differences():
    data = prepare_fit_data(simulate_random_runs(60, seed=3), "total", "6nd")
    args = (np.log(data.num_params), np.log(data.num_tokens), np.log(data.loss))
    point = np.array([6.0, 6.0, 0.5, 0.33, 0.29])
    error = optimize.check_grad(
        lambda p: approach3.objective_and_gradient(p, *args)[0],
        lambda p: approach3.objective_and_gradient(p, *args)[1],
        point,
        epsilon=1e-7,
    )
    gradient = approach3.objective_and_gradient(point, *args)[1]
    assert error < 1e-5 * np.linalg.norm(gradient) + 1e-9


def test_batched_objective_matches_numpy():
    import torch

    data = prepare_fit_data(simulate_random_runs(40, seed=4), "total", "6nd")
    log_n, log_d, log_loss = np.log(data.num_params), np.log(data.num_tokens), np.log(data.loss)
    objective = approach3._BatchedObjective(log_n, log_d, log_loss)
    starts = SUBGRID[:20]
    values, grads = objective(torch.as_tensor(starts), torch.arange(20))
    for row in range(20):
        expected_value, expected_grad = approach3.objective_and_gradient(starts[row], log_n, log_d, log_loss)
        assert values[row].item() == pytest.approx(expected_value, rel=1e-10)
        np.testing.assert_allclose(grads[row].numpy(), expected_grad, rtol=1e-8, atol=1e-14)


def test_recovers_known_law():
    frame = simulate_random_runs(200, noise=0.002, seed=5)
    fit = approach3.fit_approach3(prepare_fit_data(frame, "total", "6nd"), starts=SUBGRID)
    assert fit.alpha == pytest.approx(CHINCHILLA_LAW["alpha"], abs=0.03)
    assert fit.beta == pytest.approx(CHINCHILLA_LAW["beta"], abs=0.03)
    assert fit.E == pytest.approx(CHINCHILLA_LAW["E"], abs=0.1)
    assert fit.converged
    assert fit.grad_norm < 1e-6
    assert fit.num_starts == SUBGRID.shape[0]
    assert not [flag for flag in fit.flags if flag.code != "grid_boundary"]


def test_batched_solver_matches_scipy_optimum():
    frame = simulate_random_runs(80, noise=0.01, seed=6)
    data = prepare_fit_data(frame, "total", "6nd")
    args = (np.log(data.num_params), np.log(data.num_tokens), np.log(data.loss))
    starts = SUBGRID[::5]
    _, batched, _, _ = approach3.solve_batched(*args, starts)
    reference = min(approach3.polish(start, *args).fun for start in starts)
    assert np.nanmin(batched) <= reference * (1 + 1e-6)


def test_closed_form_matches_brute_force():
    frame = simulate_random_runs(120, noise=0.005, seed=7)
    fit = approach3.fit_approach3(prepare_fit_data(frame, "total", "6nd"), starts=SUBGRID)
    for budget in (1e19, 1e21, 1e23):
        # Minimise L(N, C / (6 N)) along the iso-FLOP line numerically.
        result = optimize.minimize_scalar(
            lambda log_n: fit.loss(np.exp(log_n), budget / (6 * np.exp(log_n))),
            bounds=(np.log(1e5), np.log(1e14)),
            method="bounded",
            options={"xatol": 1e-10},
        )
        assert fit.n_opt(budget) == pytest.approx(np.exp(result.x), rel=1e-4)
        assert fit.d_opt(budget) == pytest.approx(budget / (6 * np.exp(result.x)), rel=1e-4)
        assert fit.compute_for_num_params(fit.n_opt(budget)) == pytest.approx(budget, rel=1e-10)


def test_rejects_too_few_runs():
    data = prepare_fit_data(simulate_random_runs(4, seed=8), "total", "6nd")
    with pytest.raises(ValueError, match="at least 5 runs"):
        approach3.fit_approach3(data)


def test_rejects_single_model_size():
    frame = simulate_random_runs(10, seed=9)
    frame["num_params"] = 1e8
    with pytest.raises(ValueError, match="two or more model sizes"):
        approach3.fit_approach3(prepare_fit_data(frame, "total", "6nd"))


def test_flags_absurd_exponent():
    flags = approach3.approach3_flags(np.array([5.0, 5.0, 0.5, 0.01, 0.3]), 1e-9, True, "")
    codes = {flag.code for flag in flags}
    assert "absurd_exponent" in codes
    flags = approach3.approach3_flags(np.array([30.0, 5.0, 0.5, 0.3, 0.3]), 1.0, False, "ABNORMAL")
    codes = {flag.code for flag in flags}
    assert {"grid_boundary", "not_converged"} <= codes


def test_hessian_matches_finite_differences_of_gradient():
    import torch

    data = prepare_fit_data(simulate_random_runs(40, seed=10), "total", "6nd")
    log_n, log_d, log_loss = np.log(data.num_params), np.log(data.num_tokens), np.log(data.loss)
    weights = np.random.default_rng(0).integers(0, 3, (2, 40)).astype(np.float64)
    objective = approach3._BatchedObjective(
        log_n - log_n.mean(), log_d - log_d.mean(), log_loss, weights, np.array([0, 1])
    )
    rows = torch.arange(2)
    z = torch.tensor([[0.3, 0.2, 0.5, 0.33, 0.29], [-1.0, -1.2, 0.52, 0.3, 0.3]], dtype=torch.float64)
    values, grads, hessians = objective.with_hessian(z, rows)
    plain_values, plain_grads = objective(z, rows)
    np.testing.assert_allclose(values.numpy(), plain_values.numpy(), rtol=1e-14)
    np.testing.assert_allclose(grads.numpy(), plain_grads.numpy(), rtol=1e-12, atol=1e-16)
    step = 1e-6
    for column in range(5):
        up, down = z.clone(), z.clone()
        up[:, column] += step
        down[:, column] -= step
        numeric = (objective(up, rows)[1] - objective(down, rows)[1]) / (2 * step)
        np.testing.assert_allclose(hessians[:, :, column].numpy(), numeric.numpy(), atol=1e-9)


def test_bootstrap_refits_reach_zero_gradient_and_match_scipy():
    from fitting.api import resample_weights

    data = prepare_fit_data(simulate_random_runs(60, noise=0.01, seed=11), "total", "6nd")
    _, candidates = approach3.fit_approach3_with_candidates(data, starts=SUBGRID)
    weights = resample_weights(data, 3, 20, np.random.default_rng(0))
    samples = approach3.bootstrap_approach3(data, weights, candidates, rng=np.random.default_rng(1))
    assert samples["converged"].all()
    assert np.max(samples["grad_norm"]) < 1e-6
    args = (np.log(data.num_params), np.log(data.num_tokens), np.log(data.loss))
    for row in range(3):
        reference = approach3.polish(candidates[0], *args, weights=weights[row])
        assert samples["alpha"][row] == pytest.approx(reference.x[3], abs=1e-5)
        assert samples["beta"][row] == pytest.approx(reference.x[4], abs=1e-5)


def test_duplicate_starts_are_merged_and_share_the_result():
    data = prepare_fit_data(simulate_random_runs(50, noise=0.01, seed=12), "total", "6nd")
    args = (np.log(data.num_params), np.log(data.num_tokens), np.log(data.loss))
    starts = np.repeat(SUBGRID[:3], 4, axis=0)
    params, objective, _, converged = approach3.solve_batched(*args, starts)
    for group in range(3):
        rows = slice(4 * group, 4 * group + 4)
        assert np.ptp(objective[rows]) == 0.0
        assert np.ptp(params[rows], axis=0).max() == 0.0
