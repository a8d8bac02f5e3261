"""Store methods that the sweeps, fitting and dashboards packages call, on both engines."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest

from store import RUN_STATUSES, StoreError


def add_run(store, run_id, sweep="grid", **fields):
    values = {
        "id": run_id,
        "sweep": sweep,
        "config": {"lr": 1e-3, "model": {"d_model": 64}},
        "d_model": 64,
        "n_layers": 2,
        "n_heads": 4,
        "n_kv_heads": 4,
        "d_ff": 192,
        "vocab_size": 512,
        "seq_len": 64,
        "num_params": 1.2e5,
        "num_non_embedding_params": 0.9e5,
        "flops_per_token": 8e5,
        "num_tokens": 1e6,
        "budget_flops": 7.2e11,
        "seed": 0,
    }
    values.update(fields)
    store.upsert_run(values)


def test_sweep_and_run_round_trip(store):
    store.upsert_sweep("grid", {"budgets": [1e11, 1e12], "sizes": 5})
    add_run(store, "run-a")
    runs = store.runs("grid")
    assert list(runs["id"]) == ["run-a"]
    run = runs.iloc[0]
    assert run["sweep"] == "grid"
    assert run["status"] == "pending"
    assert run["config"] == {"lr": 1e-3, "model": {"d_model": 64}}
    assert run["d_model"] == 64
    assert run["num_params"] == 1.2e5
    # Derived: 6N, 6ND and flops_per_token * D.
    assert run["flops_per_token_6n"] == 6 * 1.2e5
    assert run["compute_flops_6nd"] == 6 * 1.2e5 * 1e6
    assert run["compute_flops"] == 8e5 * 1e6
    assert run["created_at"].tzinfo is not None
    assert store.sweep("grid")["spec"] == {"budgets": [1e11, 1e12], "sizes": 5}
    assert store.sweep("grid")["external"] is False


def test_upsert_sweep_replaces_spec(store):
    first_id = store.upsert_sweep("grid", {"a": 1})
    second_id = store.upsert_sweep("grid", {"a": 2}, external=True)
    assert first_id == second_id
    assert store.sweep("grid")["spec"] == {"a": 2}
    assert store.sweep("grid")["external"] is True


def test_upsert_run_keeps_fields_not_given(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a", seed=7)
    store.upsert_run({"id": "run-a", "sweep": "grid", "host": "node-1"})
    run = store.runs("grid").iloc[0]
    assert run["seed"] == 7
    assert run["host"] == "node-1"
    assert run["num_params"] == 1.2e5


def test_flop_counts_beyond_int64(store):
    store.upsert_sweep("grid", {})
    add_run(store, "big", num_params=6.5e10, num_tokens=1.4e12, budget_flops=5.46e23)
    run = store.runs("grid").iloc[0]
    assert run["compute_flops_6nd"] == 6 * 6.5e10 * 1.4e12
    assert run["budget_flops"] == 5.46e23
    frame = store.read_sql("SELECT budget_flops FROM runs WHERE budget_flops > 1e21")
    assert frame["budget_flops"].tolist() == [5.46e23]


def test_run_unknown_field_rejected(store):
    store.upsert_sweep("grid", {})
    with pytest.raises(ValueError, match=r"unknown run field\(s\) \['batch_sise'\]"):
        add_run(store, "run-a", batch_sise=8)


def test_run_in_unknown_sweep_rejected(store):
    store.upsert_sweep("grid", {})
    with pytest.raises(StoreError, match=r"sweep 'nope' not found .* known sweeps: grid"):
        add_run(store, "run-a", sweep="nope")


def test_set_run_status_stamps_times(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    store.set_run_status("run-a", "running", host="h1", node_id="n1", attempts=1)
    running = store.runs().iloc[0]
    assert running["status"] == "running"
    assert running["started_at"] is not None
    assert pd.isna(running["ended_at"])
    store.heartbeat("run-a")
    store.set_run_status("run-a", "completed", final_val_loss=3.25, final_train_loss=3.1, wall_s=12.5)
    done = store.runs().iloc[0]
    assert done["status"] == "completed"
    assert done["ended_at"] >= done["started_at"]
    assert done["heartbeat_at"].tzinfo == timezone.utc
    assert done["final_val_loss"] == 3.25
    assert done["final_val_loss_kind"] == "finite"
    assert done["wall_s"] == 12.5
    assert done["attempts"] == 1


def test_set_run_status_rejects_unknown_status(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    with pytest.raises(ValueError, match=r"invalid run status 'done': choose one of pending"):
        store.set_run_status("run-a", "done")


def test_set_run_status_unknown_run(store):
    with pytest.raises(StoreError, match=r"run 'ghost' not found"):
        store.set_run_status("ghost", "running")


def test_every_status_accepted(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    for status in RUN_STATUSES:
        store.set_run_status("run-a", status)
        assert store.runs().iloc[0]["status"] == status


def test_naive_datetime_rejected(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    with pytest.raises(Exception, match="naive datetime"):
        store.set_run_status("run-a", "running", started_at=datetime(2024, 1, 1))


def points(steps, train_loss=4.0, **extra):
    return [
        {"kind": "loss", "step": step, "tokens_seen": step * 512, "train_loss": train_loss,
         "val_loss": None, "lr": 1e-3, "grad_norm": 1.0, "tokens_per_s": 1000.0, **extra}
        for step in steps
    ]


def test_add_loss_points_idempotent(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    store.add_loss_points("run-a", points(range(0, 100)))
    store.add_loss_points("run-a", points(range(50, 150), train_loss=9.0))
    frame = store.loss_points("run-a")
    assert len(frame) == 150
    assert frame["step"].tolist() == list(range(150))
    # The first write of a step wins: a resumed run re-sending old points changes nothing.
    assert frame.loc[frame["step"] == 60, "train_loss"].item() == 4.0
    assert frame.loc[frame["step"] == 120, "train_loss"].item() == 9.0


def test_loss_points_val_loss_absent_or_nan(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    store.add_loss_points(
        "run-a",
        [
            {"step": 1, "train_loss": 5.0},
            {"step": 2, "train_loss": 4.0, "val_loss": 4.5},
            {"step": 3, "train_loss": float("nan"), "val_loss": float("nan"), "grad_norm": float("inf")},
        ],
    )
    frame = store.loss_points(["run-a"]).set_index("step")
    assert pd.isna(frame.loc[1, "val_loss_kind"])
    assert math.isnan(frame.loc[1, "val_loss"])
    assert frame.loc[2, "val_loss"] == 4.5
    assert frame.loc[3, "val_loss_kind"] == "nan"
    assert math.isnan(frame.loc[3, "val_loss"])
    assert math.isnan(frame.loc[3, "train_loss"])
    assert frame.loc[3, "grad_norm"] == math.inf
    stored = store.read_sql("SELECT step FROM loss_points WHERE val_loss IS NOT NULL ORDER BY val_loss")
    assert stored["step"].tolist() == [2, 3]


def test_loss_point_unknown_field_rejected(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['trian_loss'\]"):
        store.add_loss_points("run-a", [{"step": 1, "trian_loss": 3.0}])


def test_loss_points_of_unknown_run_rejected(store):
    with pytest.raises(Exception, match="(?i)foreign key"):
        store.add_loss_points("ghost", points([1]))


def test_diverged_run_never_best_in_sql(store):
    store.upsert_sweep("grid", {})
    for run_id, loss in (("nan-run", float("nan")), ("good", 3.0), ("worse", 3.5), ("neg-inf", -math.inf)):
        add_run(store, run_id)
        store.set_run_status(run_id, "completed", final_val_loss=loss)
    best = store.read_sql("SELECT id FROM runs ORDER BY final_val_loss LIMIT 1")
    assert best["id"].tolist() == ["good"]
    lowest = store.read_sql("SELECT MIN(final_val_loss) AS best FROM runs")
    assert lowest["best"].item() == 3.0
    ascending = store.read_sql("SELECT id FROM runs ORDER BY final_val_loss, id")["id"].tolist()
    assert ascending[:2] == ["good", "worse"]
    finite = store.read_sql("SELECT count(*) AS n FROM runs WHERE final_val_loss_kind = 'finite'")
    assert finite["n"].item() == 2
    runs = store.runs("grid").set_index("id")
    assert math.isnan(runs.loc["nan-run", "final_val_loss"])
    assert runs.loc["nan-run", "final_val_loss_kind"] == "nan"
    assert runs.loc["neg-inf", "final_val_loss"] == -math.inf


def test_fit_inputs_layout(store):
    store.upsert_sweep("grid", {})
    add_run(store, "done", num_params=1e5)
    add_run(store, "diverged", num_params=2e5)
    add_run(store, "nan-but-completed", num_params=3e5)
    add_run(store, "running", num_params=4e5)
    store.set_run_status("done", "completed", final_val_loss=3.3)
    store.set_run_status("diverged", "diverged", final_val_loss=float("nan"), diverged_at_step=12)
    store.set_run_status("nan-but-completed", "completed", final_val_loss=float("nan"))
    store.set_run_status("running", "running")
    frame = store.fit_inputs("grid", n_col="num_params", c_col="compute_flops")
    assert list(frame.columns) == [
        "run_id", "sweep", "budget_flops", "num_params", "num_non_embedding_params",
        "num_tokens", "compute_flops", "compute_flops_6nd", "final_loss",
    ]
    assert frame["run_id"].tolist() == ["done"]
    assert frame["final_loss"].tolist() == [3.3]
    assert frame["compute_flops"].dtype == float


def test_fit_inputs_rejects_unknown_convention(store):
    store.upsert_sweep("grid", {})
    with pytest.raises(ValueError, match=r"invalid n_col 'N': choose one of num_params"):
        store.fit_inputs("grid", n_col="N", c_col="compute_flops")
    with pytest.raises(ValueError, match=r"invalid c_col 'C'"):
        store.fit_inputs("grid", n_col="num_params", c_col="C")


def test_fit_inputs_unknown_sweep(store):
    with pytest.raises(StoreError, match=r"sweep 'missing' not found"):
        store.fit_inputs("missing", n_col="num_params", c_col="compute_flops")


def test_fit_and_predictions_round_trip(store):
    store.upsert_sweep("grid", {})
    alpha = 0.33918495297805646  # every digit of a double must survive
    fit_id = store.save_fit(
        "grid",
        "approach3",
        n_convention="num_params",
        c_convention="compute_flops_6nd",
        data_filter={"status": "completed", "min_budget_flops": 1e11},
        params={"E": 1.6934, "A": 406.4, "B": 410.7, "alpha": alpha, "beta": float("nan")},
        intervals={"alpha": (0.3, 0.37), "B": (100.0, math.inf)},
        interval_level=0.95,
        convergence={"iterations": 40, "objective": 1e-4, "gradient": float("nan")},
        details={"starts": 16},
    )
    fits = store.fits("grid")
    assert fits["fit_id"].tolist() == [fit_id]
    fit = fits.iloc[0]
    assert fit["approach"] == "approach3"
    assert fit["params"]["alpha"] == alpha
    assert math.isnan(fit["params"]["beta"])
    assert fit["intervals"]["alpha"] == (0.3, 0.37)
    assert fit["intervals"]["B"] == (100.0, math.inf)
    assert "E" not in fit["intervals"]
    assert fit["interval_level"] == 0.95
    assert math.isnan(fit["convergence"]["gradient"])
    assert fit["data_filter"] == {"status": "completed", "min_budget_flops": 1e11}

    store.save_predictions(
        fit_id,
        [
            {"target": "LLaMA-7B", "num_params": 6.7e9, "num_tokens": 1.4e11, "compute_flops": 5.6e21,
             "loss": 2.01, "intervals": {"loss": (1.95, 2.08)}},
            {"target": "C=1e25", "num_params": 1e11, "num_tokens": 1.6e13, "compute_flops": 1e25,
             "loss": float("inf"), "intervals": {}},
        ],
    )
    predictions = store.predictions(fit_id)
    assert predictions["target"].tolist() == ["LLaMA-7B", "C=1e25"]
    assert predictions["compute_flops"].tolist() == [5.6e21, 1e25]
    assert predictions["intervals"].iloc[0] == {"loss": (1.95, 2.08)}
    assert predictions["loss"].iloc[1] == math.inf


def test_save_predictions_unknown_fit(store):
    with pytest.raises(StoreError, match=r"fit 999 not found"):
        store.save_predictions(999, [{"target": "x", "loss": 1.0}])


def test_delete_sweep_cascades(store):
    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    store.add_loss_points("run-a", points(range(3)))
    store.delete_sweep("grid")
    assert store.read_sql("SELECT count(*) AS n FROM loss_points")["n"].item() == 0
    assert store.read_sql("SELECT count(*) AS n FROM runs")["n"].item() == 0


def test_isoflop_view(store):
    store.upsert_sweep("grid", {})
    add_run(store, "done")
    add_run(store, "failed")
    store.set_run_status("done", "completed", final_val_loss=3.0)
    store.set_run_status("failed", "failed", error="CUDA error")
    view = store.read_sql("SELECT run_id, sweep, final_loss FROM isoflop_points")
    assert view.to_dict(orient="records") == [{"run_id": "done", "sweep": "grid", "final_loss": 3.0}]


def test_kind_column_rejects_unknown_kind(store):
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    store.upsert_sweep("grid", {})
    add_run(store, "run-a")
    with pytest.raises(IntegrityError, match="ck_train_loss_kind"):
        with store.engine.begin() as connection:
            connection.execute(
                text("INSERT INTO loss_points (run_id, step, train_loss_kind) VALUES ('run-a', 1, 'bogus')")
            )


def test_decode_float_column_matches_decode_float():
    from store.floats import decode_float, decode_float_column

    values = [1.5, float("inf"), float("inf"), float("inf"), None, -2.0]
    kinds = ["finite", "nan", "inf", "-inf", None, "finite"]
    decoded = decode_float_column(values, kinds)
    expected = [decode_float(value, kind) for value, kind in zip(values, kinds)]
    np.testing.assert_array_equal(decoded, np.array([math.nan if v is None else v for v in expected]))
    with pytest.raises(ValueError, match="unknown float kind 'infinite'"):
        decode_float_column([1.0], ["infinite"])
