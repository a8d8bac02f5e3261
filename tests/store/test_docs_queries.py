"""Every SQL example in docs/store.md runs on both engines and returns rows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from store import open_store, read_sql

DOC = Path(__file__).resolve().parents[2] / "docs" / "store.md"


def example_queries() -> list[str]:
    return re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


@pytest.fixture
def demo_url(db_url: str) -> str:
    with open_store(db_url) as store:
        store.upsert_sweep("demo", {"budgets": [1e11, 1e12]})
        for budget in (1e11, 1e12):
            for index, num_params in enumerate((1e5, 2e5, 4e5)):
                run_id = f"run-{budget:.0e}-{index}"
                num_tokens = budget / (6 * num_params)
                store.upsert_run(
                    {"id": run_id, "sweep": "demo", "num_params": num_params, "num_tokens": num_tokens,
                     "flops_per_token": 6.5 * num_params, "budget_flops": budget}
                )
                diverged = index == 2 and budget == 1e12
                store.add_loss_points(
                    run_id,
                    [
                        {"step": step, "tokens_seen": step * 512, "train_loss": 5.0 - step * 0.01,
                         "val_loss": 5.1 - step * 0.01 if step % 10 == 0 else None, "lr": 1e-3}
                        for step in range(0, 50)
                    ],
                )
                if diverged:
                    store.set_run_status(run_id, "diverged", final_val_loss=float("nan"), diverged_at_step=40)
                else:
                    store.set_run_status(run_id, "completed", final_val_loss=3.0 + abs(index - 1) * 0.1)
        store.save_fit(
            "demo", "approach3", n_convention="num_params", c_convention="compute_flops",
            params={"E": 1.7, "alpha": 0.34}, intervals={"alpha": (0.3, 0.38)}, interval_level=0.95,
        )
    return db_url


def test_docs_have_examples():
    assert len(example_queries()) >= 5


@pytest.mark.parametrize("index", range(len(example_queries())))
def test_example_query_runs(demo_url, index):
    frame = read_sql(example_queries()[index], demo_url)
    assert len(frame) > 0


def test_best_run_per_budget_example(demo_url):
    best = read_sql(example_queries()[0], demo_url)
    assert best["id"].tolist() == ["run-1e+11-1", "run-1e+12-1"]
