"""Synthetic IsoFLOP sweeps written through the Store API, for tests, benchmarks and trying the app.

Final losses follow Chinchilla's fitted law L(N, D) = 1.69 + 406.4/N^0.34 + 410.7/D^0.28
(Hoffmann et al. 2022, section D.2) with log-normal noise; each run's curve follows the same law
in the tokens seen so far, so curves fall, and their lower envelope is meaningful.
"""

from __future__ import annotations

import numpy as np

CHINCHILLA = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}
# Embedding share of N for the synthetic models: vocabulary 8,192 with untied head.
VOCAB_SIZE = 8192


def _law(num_params, num_tokens):
    return CHINCHILLA["E"] + CHINCHILLA["A"] / num_params ** CHINCHILLA["alpha"] + \
        CHINCHILLA["B"] / num_tokens ** CHINCHILLA["beta"]


def fill_synthetic_sweep(store, name: str, *, budgets=(1e15, 1e16, 1e17), sizes_per_budget: int = 7,
                         points_per_run: int = 50, noise: float = 0.005, seed: int = 0,
                         statuses: dict[int, str] | None = None) -> list[str]:
    """Write a sweep of `len(budgets) * sizes_per_budget` runs with loss curves; return the run ids.

    `statuses` maps a run's index to a status other than `completed` (`diverged`, `running`).
    """
    rng = np.random.default_rng(seed)
    statuses = statuses or {}
    store.upsert_sweep(name, {"synthetic": True, "budgets_flops": list(budgets)})
    run_ids = []
    for budget in budgets:
        # Sizes spread over a factor of 30 around the Chinchilla optimum N ≈ 0.09·C^0.5 (about 20 tokens/parameter).
        centre = 0.09 * budget**0.5
        for num_params in np.geomspace(centre / 5.5, centre * 5.5, sizes_per_budget):
            index = len(run_ids)
            run_id = f"{name}-{index:04d}"
            d_model = int(max(64, (num_params / 12) ** (1 / 3) * 2))
            embedding = 2 * VOCAB_SIZE * d_model
            num_tokens = budget / (6 * num_params)
            flops_per_token = 6 * num_params * 1.05
            status = statuses.get(index, "completed")
            steps = np.arange(1, points_per_run + 1)
            tokens_seen = steps / steps[-1] * num_tokens
            loss = _law(num_params, tokens_seen) * np.exp(rng.normal(0, noise, len(steps)))
            if status == "diverged":
                loss[len(loss) // 2:] = np.nan
            final_val = float(_law(num_params, num_tokens) * np.exp(rng.normal(0, noise)))
            store.upsert_run({
                "id": run_id, "sweep": name, "status": "pending",
                "num_params": float(num_params), "num_non_embedding_params": float(max(num_params - embedding, num_params / 4)),
                "num_tokens": float(num_tokens), "compute_flops": float(flops_per_token * num_tokens),
                "compute_flops_6nd": float(6 * num_params * num_tokens), "budget_flops": float(budget),
                "flops_per_token": flops_per_token, "d_model": d_model, "vocab_size": VOCAB_SIZE,
            })
            every = max(1, len(steps) // 10)
            store.add_loss_points(run_id, [
                {"step": int(step), "tokens_seen": int(tokens), "train_loss": float(value),
                 "val_loss": float(value) * 1.01 if i % every == 0 or i == len(steps) - 1 else None}
                for i, (step, tokens, value) in enumerate(zip(steps, tokens_seen, loss))
            ])
            fields = {"final_train_loss": float(loss[-1])}
            if status == "completed":
                fields["final_val_loss"] = final_val
            if status == "diverged":
                fields["final_val_loss"] = float("nan")
            store.set_run_status(run_id, status, **fields)
            run_ids.append(run_id)
    return run_ids
