"""Loss-point insert throughput and aggregate-query time of the store, beside plain pandas.

    python -m benchmarks.store_throughput [--rows N] [--postgres-url URL | --no-postgres]

For each engine it writes the same N loss points (100 runs of N/100 steps) twice:
- ours: `Store.add_loss_points` in batches of 10,000 (an executemany INSERT ... ON CONFLICT
  DO NOTHING into the indexed table, with the NaN/inf kind encoding);
- reference: `DataFrame.to_sql` into a plain table without a key.
Then it times one aggregate over all N points (per-run count, min and mean training loss, last
step): ours as SQL through `Store.read_sql`, the reference as `pandas.read_sql` of every row
followed by a pandas groupby. PostgreSQL uses --postgres-url, or a throwaway server started
from /usr/lib/postgresql/*/bin, or is skipped with a note. The last output line is one JSON
object; `speedup` is our SQLite insert rate over pandas to_sql's.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd

from store import open_store, read_sql

NUM_RUNS = 100
BATCH_POINTS = 10_000
AGGREGATE_SQL = (
    "SELECT run_id, count(*) AS num_points, min(train_loss) AS min_train_loss, "
    "avg(train_loss) AS mean_train_loss, max(step) AS last_step "
    "FROM {table} WHERE train_loss_kind = 'finite' GROUP BY run_id"
)


def make_points(num_rows: int, seed: int = 0) -> pd.DataFrame:
    """Return synthetic loss curves: NUM_RUNS runs, steps 0.., a decaying noisy loss."""
    rng = np.random.default_rng(seed)
    steps_per_run = num_rows // NUM_RUNS
    step = np.tile(np.arange(steps_per_run), NUM_RUNS)
    run_index = np.repeat(np.arange(NUM_RUNS), steps_per_run)
    train_loss = 2.0 + 8.0 / np.sqrt(1.0 + step) + rng.normal(0, 0.01, step.size)
    return pd.DataFrame(
        {
            "run_id": [f"run-{index:03d}" for index in run_index],
            "step": step,
            "tokens_seen": step * 4096,
            "train_loss": train_loss,
            "train_loss_kind": "finite",
            "val_loss": np.where(step % 100 == 0, train_loss + 0.05, np.nan),
            "lr": np.full(step.size, 3e-4),
            "grad_norm": rng.uniform(0.5, 1.5, step.size),
            "tokens_per_s": rng.uniform(5e3, 6e3, step.size),
        }
    )


def bench_engine(url: str, points: pd.DataFrame) -> dict[str, float]:
    """Time our inserts and query and the pandas reference on one database."""
    from sqlalchemy import create_engine

    results: dict[str, float] = {}
    with open_store(url) as store:
        store.upsert_sweep("bench", {"rows": len(points)})
        run_ids = sorted(points["run_id"].unique())
        store.upsert_runs([{"id": run_id, "sweep": "bench"} for run_id in run_ids])
        columns = ["step", "tokens_seen", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s"]
        batches = []
        for run_id, group in points.groupby("run_id", sort=True):
            records = group[columns].to_dict(orient="records")
            for record in records:
                if math.isnan(record["val_loss"]):
                    record["val_loss"] = None
            for start in range(0, len(records), BATCH_POINTS):
                batches.append((run_id, records[start:start + BATCH_POINTS]))

        started = time.perf_counter()
        for run_id, batch in batches:
            store.add_loss_points(run_id, batch)
        insert_s = time.perf_counter() - started
        results["insert_rows_per_s"] = len(points) / insert_s

        started = time.perf_counter()
        ours = store.read_sql(AGGREGATE_SQL.format(table="loss_points"))
        results["query_s"] = time.perf_counter() - started
        assert len(ours) == NUM_RUNS
        assert int(ours["num_points"].sum()) == len(points)

    reference_engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    started = time.perf_counter()
    points.to_sql("reference_points", reference_engine, if_exists="replace", index=False, chunksize=BATCH_POINTS)
    reference_insert_s = time.perf_counter() - started
    results["reference_insert_rows_per_s"] = len(points) / reference_insert_s

    started = time.perf_counter()
    frame = pd.read_sql("SELECT * FROM reference_points", reference_engine)
    finite = frame[frame["train_loss_kind"] == "finite"]
    reference = finite.groupby("run_id").agg(
        num_points=("step", "size"),
        min_train_loss=("train_loss", "min"),
        mean_train_loss=("train_loss", "mean"),
        last_step=("step", "max"),
    )
    results["reference_query_s"] = time.perf_counter() - started
    reference_engine.dispose()
    assert int(reference["num_points"].sum()) == len(points)
    # Both paths must return the same aggregate.
    merged = ours.set_index("run_id").sort_index()
    assert np.allclose(merged["min_train_loss"], reference["min_train_loss"].sort_index())
    results["insert_speedup"] = results["insert_rows_per_s"] / results["reference_insert_rows_per_s"]
    results["query_speedup"] = results["reference_query_s"] / results["query_s"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="loss points to insert and aggregate")
    parser.add_argument("--postgres-url", help="PostgreSQL server to use instead of a throwaway one")
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    args = parser.parse_args()
    if args.rows < NUM_RUNS:
        raise ValueError(f"--rows {args.rows} is too small: pass at least {NUM_RUNS} (one point per run)")

    points = make_points(args.rows)
    figures: dict[str, object] = {"rows": len(points), "runs": NUM_RUNS}
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scalelab-bench-")))
        sqlite = bench_engine(f"sqlite:///{folder / 'bench.db'}", points)
        figures.update({f"sqlite_{key}": value for key, value in sqlite.items()})
        print(
            f"SQLite: ours {sqlite['insert_rows_per_s']:,.0f} rows/s, pandas to_sql "
            f"{sqlite['reference_insert_rows_per_s']:,.0f} rows/s; aggregate over {len(points):,} points "
            f"{sqlite['query_s']:.3f} s, pandas read_sql + groupby {sqlite['reference_query_s']:.3f} s"
        )

        postgres_url = args.postgres_url
        if postgres_url is None and not args.no_postgres:
            from store.pgserver import ThrowawayPostgres

            try:
                server = ThrowawayPostgres()
                stack.callback(server.stop)
                postgres_url = server.start()
            except (RuntimeError, OSError, LookupError) as error:
                print(f"PostgreSQL skipped: no server could be started ({error})")
                figures["postgres_skipped"] = str(error)
        if postgres_url is not None:
            postgres = bench_engine(postgres_url, points)
            figures.update({f"postgres_{key}": value for key, value in postgres.items()})
            print(
                f"PostgreSQL: ours {postgres['insert_rows_per_s']:,.0f} rows/s, pandas to_sql "
                f"{postgres['reference_insert_rows_per_s']:,.0f} rows/s; aggregate "
                f"{postgres['query_s']:.3f} s, pandas {postgres['reference_query_s']:.3f} s"
            )
    figures["speedup"] = sqlite["insert_speedup"]
    print(json.dumps({key: round(value, 4) if isinstance(value, float) else value for key, value in figures.items()}))


if __name__ == "__main__":
    main()
