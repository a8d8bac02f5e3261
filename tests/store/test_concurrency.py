"""Eight processes writing loss points at once lose no row and hit no lock error."""

from __future__ import annotations

import multiprocessing
import traceback

from store import open_store

NUM_PROCESSES = 8
POINTS_PER_PROCESS = 600
# Small batches mean many transactions, so the writers really contend for the lock.
BATCH_POINTS = 25


def write_points(url: str, worker: int, errors) -> None:
    try:
        with open_store(url) as store:
            own_run = f"run-{worker}"
            for start in range(0, POINTS_PER_PROCESS, BATCH_POINTS):
                batch = [
                    {"step": step, "tokens_seen": step * 256, "train_loss": 5.0 - step * 1e-3}
                    for step in range(start, start + BATCH_POINTS)
                ]
                store.add_loss_points(own_run, batch)
                # Every worker also writes the same steps of one shared run.
                store.add_loss_points("shared", batch)
                store.heartbeat(own_run)
    except Exception:  # noqa: BLE001 - the parent asserts on the text
        errors.put(f"worker {worker}: {traceback.format_exc()}")


def test_concurrent_writers_lose_no_row(db_url):
    with open_store(db_url) as store:
        store.upsert_sweep("grid", {})
        store.upsert_runs(
            [{"id": f"run-{worker}", "sweep": "grid"} for worker in range(NUM_PROCESSES)]
            + [{"id": "shared", "sweep": "grid"}]
        )
    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    processes = [
        context.Process(target=write_points, args=(db_url, worker, errors)) for worker in range(NUM_PROCESSES)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=300)
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    assert messages == []
    assert [process.exitcode for process in processes] == [0] * NUM_PROCESSES

    with open_store(db_url) as store:
        counts = store.read_sql("SELECT run_id, count(*) AS n FROM loss_points GROUP BY run_id ORDER BY run_id")
    expected = {f"run-{worker}": POINTS_PER_PROCESS for worker in range(NUM_PROCESSES)}
    expected["shared"] = POINTS_PER_PROCESS
    assert dict(zip(counts["run_id"], counts["n"])) == expected
