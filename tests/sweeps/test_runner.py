import dataclasses
import os
import signal

import pytest

from store import open_store
from sweeps.plan import plan_sweep
from sweeps.runner import submit
from sweeps.spec import spec_from_dict
from sweeps.status import cancel_sweep, sweep_status

from sweep_helpers import tiny_spec_dict


@pytest.fixture
def store(tmp_path):
    return open_store(f"sqlite:///{tmp_path / 'sweeps.db'}")


def point_counts(store, run_ids):
    points = store.loss_points(list(run_ids))
    grouped = points.groupby("run_id")["step"]
    return grouped.count().to_dict(), grouped.nunique().to_dict()


def test_submit_runs_all_then_resubmit_skips(local_ray, tiny_corpus, tmp_path, store):
    spec = spec_from_dict(tiny_spec_dict(tiny_corpus, tmp_path, "complete"))
    result = submit(spec, store, progress=False)
    assert result.counts == {"completed": 4}
    runs = store.runs("complete")
    assert set(runs["status"]) == {"completed"}
    assert (runs["attempts"] == 1).all()
    assert runs["final_val_loss"].notna().all()
    plan = plan_sweep(spec)
    counts, unique = point_counts(store, runs["id"])
    for run in plan.runs:
        assert counts[run.run_id] == run.steps
        assert unique[run.run_id] == run.steps

    again = submit(spec, store, progress=False)
    assert again.ran == []
    assert sorted(again.skipped) == sorted(runs["id"])
    rerun = store.runs("complete")
    assert (rerun["attempts"] == 1).all()
    assert list(rerun["started_at"]) == list(runs["started_at"])
    assert point_counts(store, runs["id"])[0] == counts


def test_runs_never_exceed_their_cpu_request(local_ray, tiny_corpus, tmp_path, store):
    """Runs that each request both CPUs of a 2-CPU Ray train one at a time, stop polls included.

    Each run lasts several stop-poll intervals. A poll that blocked in ray.get or ray.wait would
    lend the run's CPUs back to Ray, and Ray would start the next run beside it.
    """
    spec = spec_from_dict(
        tiny_spec_dict(tiny_corpus, tmp_path, "one-at-a-time", steps_smallest=600, resources={"num_cpus": 2})
    )
    intervals = {}

    def record(event):
        if event["kind"] in ("started", "finished"):
            intervals.setdefault(event["run_id"], {})[event["kind"]] = event["time_unix"]

    result = submit(spec, store, progress=False, on_event=record)
    assert result.counts == {"completed": 4}
    spans = sorted((times["started"], times["finished"]) for times in intervals.values())
    assert len(spans) == 4
    for (_, previous_end), (start, end) in zip(spans, spans[1:]):
        assert start >= previous_end, f"a run started at {start} while another ran until {previous_end}"
        assert end - start > 2.0, "runs must outlast two stop polls for this test to mean anything"


def test_diverged_run_recorded_rest_complete(local_ray, tiny_corpus, tmp_path, store):
    spec = spec_from_dict(tiny_spec_dict(tiny_corpus, tmp_path, "diverge"))
    plan = plan_sweep(spec)
    bad = plan.runs[1]
    # model.train's test hook makes the loss of step 3 NaN; the run id stays the planned one.
    poisoned = dataclasses.replace(bad, train_config={**bad.train_config, "inject_nan_at_step": 3})
    plan.runs[1] = poisoned
    result = submit(spec, store, progress=False, plan=plan)
    assert result.counts == {"completed": 3, "diverged": 1}
    runs = store.runs("diverge").set_index("id")
    assert runs.loc[bad.run_id, "status"] == "diverged"
    assert runs.loc[bad.run_id, "diverged_at_step"] == 3

    again = submit(spec, store, progress=False, plan=plan)
    assert again.ran == []


def test_cancel_stops_sweep_then_resubmit_finishes(local_ray, tiny_corpus, tmp_path, store):
    spec = spec_from_dict(tiny_spec_dict(tiny_corpus, tmp_path, "cancel", steps_smallest=100))
    cancelled = []

    def cancel_on_first_loss(event):
        if event["kind"] == "loss" and not cancelled:
            cancelled.extend(cancel_sweep(open_store(store.url), "cancel"))

    result = submit(spec, store, progress=False, max_parallel=1, on_event=cancel_on_first_loss)
    assert result.cancelled
    assert cancelled
    runs = store.runs("cancel")
    # The first run may finish before the driver polls for the cancel; the queued ones never start.
    assert set(runs["status"]) <= {"cancelled", "completed"}
    num_cancelled = int((runs["status"] == "cancelled").sum())
    assert num_cancelled >= 3
    assert sweep_status(store, "cancel")[0]["counts"]["cancelled"] == num_cancelled

    finished = submit(spec, store, progress=False)
    assert finished.counts == {"completed": 4}
    plan = plan_sweep(spec)
    counts, unique = point_counts(store, runs["id"])
    for run in plan.runs:
        assert counts[run.run_id] == run.steps == unique[run.run_id]


def interrupt_one_run(spec, store, signal_number):
    """Submit the spec's first run alone and send `signal_number` to its worker at step 30.

    Return the submit result, the planned run and the worker pid of each attempt. A worker left
    stopped by SIGSTOP is continued at the end, so that no test leaves a frozen process behind.
    """
    plan = plan_sweep(spec)
    plan.runs = plan.runs[:1]
    pids = {}
    signalled = []

    def signal_mid_run(event):
        if event["kind"] == "started":
            pids[event["attempt"]] = event["pid"]
        if event["kind"] == "loss" and event["attempt"] == 1 and event["step"] >= 30 and not signalled:
            os.kill(pids[1], signal_number)
            signalled.append(event["step"])

    try:
        result = submit(spec, store, progress=False, plan=plan, on_event=signal_mid_run)
    finally:
        if signalled and signal_number == signal.SIGSTOP:
            try:
                os.kill(pids[1], signal.SIGCONT)
            except ProcessLookupError:
                pass
    assert signalled, "the run finished before the test could signal its worker"
    return result, plan.runs[0], pids


def assert_resumed_like_uninterrupted(store, sweep, result, target, pids, corpus):
    """Check that a run preempted once resumed in a new worker and matches an uninterrupted run."""
    from model.train import TrainConfig, train_run

    assert result.counts == {"completed": 1}
    run = store.runs(sweep).iloc[0]
    assert run["attempts"] == 2
    assert run["retries"] == 1
    assert pids[2] != pids[1]

    reference = train_run(TrainConfig.from_dict(target.train_config), corpus, None, num_threads=1)
    assert run["final_train_loss"] == reference.final_train_loss
    assert run["final_val_loss"] == reference.final_val_loss
    counts, unique = point_counts(store, [target.run_id])
    assert counts[target.run_id] == unique[target.run_id] == target.steps


@pytest.mark.slow
def test_killed_worker_resumes_same_loss(local_ray, tiny_corpus, tmp_path, store):
    spec = spec_from_dict(
        tiny_spec_dict(tiny_corpus, tmp_path, "kill-worker", steps_smallest=600, storage={"checkpoint_root": str(tmp_path / "ckpt"), "checkpoint_interval_steps": 10})
    )
    result, target, pids = interrupt_one_run(spec, store, signal.SIGKILL)
    assert_resumed_like_uninterrupted(store, "kill-worker", result, target, pids, tiny_corpus)


@pytest.mark.slow
def test_silent_run_marked_preempted_and_resumed(local_ray, tiny_corpus, tmp_path, store):
    """A worker that stops sending events (frozen with SIGSTOP) is preempted after the heartbeat timeout."""
    spec = spec_from_dict(
        tiny_spec_dict(
            tiny_corpus, tmp_path, "silent-worker", steps_smallest=600,
            storage={"checkpoint_root": str(tmp_path / "ckpt"), "checkpoint_interval_steps": 10},
            retry={"heartbeat_timeout_s": 10},
        )
    )
    result, target, pids = interrupt_one_run(spec, store, signal.SIGSTOP)
    assert_resumed_like_uninterrupted(store, "silent-worker", result, target, pids, tiny_corpus)
