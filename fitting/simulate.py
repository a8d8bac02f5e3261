"""Synthetic sweeps drawn from a known L(N, D), for tests, calibration and benchmarks."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Hoffmann et al. (2022), equation 10: the Approach 3 fit published in the Chinchilla paper.
CHINCHILLA_LAW = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def law_loss(num_params, num_tokens, law: dict[str, float] = CHINCHILLA_LAW):
    return law["E"] + law["A"] / num_params ** law["alpha"] + law["B"] / num_tokens ** law["beta"]


def simulate_isoflop_sweep(
    *,
    budgets: tuple[float, ...] = (1e18, 3e18, 1e19, 3e19, 1e20),
    sizes_per_budget: int = 9,
    size_span: float = 16.0,
    noise: float = 0.01,
    law: dict[str, float] = CHINCHILLA_LAW,
    seed: int = 0,
    sweep: str = "synthetic",
) -> pd.DataFrame:
    """Draw an IsoFLOP sweep in the `fit_inputs` layout.

    Each budget gets `sizes_per_budget` model sizes log-spaced over a factor `size_span` around the
    law's optimum, with D = C / (6 N); losses get multiplicative log-normal noise of scale `noise`.
    """
    rng = np.random.default_rng(seed)
    alpha, beta = law["alpha"], law["beta"]
    log_g = (np.log(alpha * law["A"]) - np.log(beta * law["B"])) / (alpha + beta)
    rows = []
    for budget in budgets:
        n_opt = np.exp(log_g + beta / (alpha + beta) * np.log(budget / 6.0))
        for num_params in n_opt * np.geomspace(1 / np.sqrt(size_span), np.sqrt(size_span), sizes_per_budget):
            rows.append((budget, num_params, budget / (6.0 * num_params)))
    return _frame(rows, noise, law, rng, sweep)


def simulate_grid(
    *,
    sizes: tuple[float, ...],
    tokens_per_param: tuple[float, ...],
    noise: float = 0.01,
    law: dict[str, float] = CHINCHILLA_LAW,
    seed: int = 0,
    sweep: str = "synthetic",
) -> pd.DataFrame:
    """Draw runs at every (size, tokens per parameter) pair: several token budgets per size."""
    rng = np.random.default_rng(seed)
    rows = []
    for num_params in sizes:
        for ratio in tokens_per_param:
            num_tokens = ratio * num_params
            rows.append((6.0 * num_params * num_tokens, num_params, num_tokens))
    return _frame(rows, noise, law, rng, sweep)


def simulate_random_runs(
    num_runs: int, *, noise: float = 0.01, law: dict[str, float] = CHINCHILLA_LAW, seed: int = 0,
    sweep: str = "synthetic",
) -> pd.DataFrame:
    """Draw runs with N log-uniform in 1e7-1e10 and tokens per parameter log-uniform in 5-500."""
    rng = np.random.default_rng(seed)
    num_params = np.exp(rng.uniform(np.log(1e7), np.log(1e10), num_runs))
    num_tokens = num_params * np.exp(rng.uniform(np.log(5.0), np.log(500.0), num_runs))
    rows = list(zip(6.0 * num_params * num_tokens, num_params, num_tokens))
    return _frame(rows, noise, law, rng, sweep)


def _frame(rows, noise, law, rng, sweep) -> pd.DataFrame:
    budget, num_params, num_tokens = (np.array(column, dtype=np.float64) for column in zip(*rows))
    loss = law_loss(num_params, num_tokens, law) * np.exp(noise * rng.standard_normal(budget.size))
    # A fixed 20% of N in embeddings and a 10% attention share stand in for a real architecture.
    return pd.DataFrame(
        {
            "run_id": [f"{sweep}-{index:04d}" for index in range(budget.size)],
            "sweep": sweep,
            "budget_flops": budget,
            "num_params": num_params,
            "num_non_embedding_params": 0.8 * num_params,
            "num_tokens": num_tokens,
            "compute_flops": 1.1 * 6.0 * num_params * num_tokens,
            "compute_flops_6nd": 6.0 * num_params * num_tokens,
            "final_loss": loss,
        }
    )
