"""The sweep driver: writes the sweep to the store, runs its runs as Ray tasks, survives faults.

The driver is the only process that writes to the store. Tasks stream events to an
`EventSink` actor; the driver drains it every `POLL_INTERVAL_S` and writes loss points in
batches. On completion it writes the run's full loss history again, which the store ignores per
(run_id, step) where a point is already there, so points lost in transit are restored and none
is duplicated.

Status rules:
- `completed` and `diverged` are final: a second submit of the same spec skips them.
- `failed`, `preempted`, `cancelled`, `pending` and `running` (left by a driver that died) run
  again on the next submit, resuming from their checkpoints.
- A preemption (worker or node died, or the heartbeat stopped for `retry.heartbeat_timeout_s`)
  retries from the latest checkpoint and counts against `retry.max_preemptions`.
- An exception in the run counts against `retry.max_retries`.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweeps.plan import Plan, PlannedRun, plan_sweep, resolve_path
from sweeps.progress import SweepProgress
from sweeps.spec import SweepSpec

logger = logging.getLogger(__name__)

__all__ = ["FINAL_STATUSES", "SubmitResult", "submit"]

FINAL_STATUSES = ("completed", "diverged")
POLL_INTERVAL_S = 0.5
# The store's heartbeat column is for people and dashboards; once per run every few seconds is enough.
STORE_HEARTBEAT_INTERVAL_S = 5.0
CANCEL_POLL_INTERVAL_S = 2.0
LOSS_POINT_FIELDS = ("step", "tokens_seen", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s")


@dataclass
class SubmitResult:
    """Outcome of one `submit` call."""

    sweep: str
    counts: dict[str, int]
    """Runs of the sweep by final status after this call."""
    skipped: list[str]
    """Run ids already completed or diverged before this call, not run again."""
    ran: list[str]
    """Run ids launched by this call."""
    wall_s: float
    cancelled: bool = False

    @property
    def num_runs(self) -> int:
        return sum(self.counts.values())


@dataclass
class _RunState:
    run: PlannedRun
    attempts: int
    failures: int = 0
    preemptions: int = 0
    ref: Any = None
    started: bool = False
    last_event_s: float = 0.0
    last_store_heartbeat_s: float = 0.0
    tokens_seen: int = 0
    status: str = "pending"
    points: list[dict[str, Any]] = field(default_factory=list)


def _is_preemption(error: BaseException) -> bool:
    """Return whether a Ray error means the worker or node went away, not that the run raised."""
    import ray.exceptions as rex

    kinds = tuple(
        getattr(rex, name)
        for name in (
            "WorkerCrashedError",
            "NodeDiedError",
            "ActorDiedError",
            "ActorUnavailableError",
            "LocalRayletDiedError",
            "ObjectLostError",
            "OwnerDiedError",
            "RaySystemError",
        )
        if hasattr(rex, name)
    )
    return isinstance(error, kinds)


def _loss_point(event: dict[str, Any]) -> dict[str, Any]:
    return {name: event.get(name) for name in LOSS_POINT_FIELDS}


class _Driver:
    """State of one submit: the queue of runs to launch, the Ray tasks in flight and their events."""

    def __init__(
        self,
        spec: SweepSpec,
        plan: Plan,
        store: Any,
        *,
        progress: bool,
        max_parallel: int | None,
        on_event: Callable[[dict[str, Any]], None] | None,
    ) -> None:
        self.spec = spec
        self.plan = plan
        self.store = store
        self.max_parallel = max_parallel
        self.on_event = on_event
        self.corpus_path = resolve_path(spec.data)
        self.states: dict[str, _RunState] = {}
        self.queue: deque[str] = deque()
        self.in_flight: dict[Any, str] = {}
        self.cancelled = False
        self.progress = SweepProgress(plan, enabled=progress)

    # ---------------------------------------------------------------- store

    def prepare(self) -> tuple[list[str], list[str]]:
        """Write the sweep and every run before anything launches; return (to run, skipped)."""
        self.store.upsert_sweep(self.spec.name, self.spec.model_dump(mode="json"))
        existing = self.store.runs(self.spec.name)
        stored = {row["id"]: row for row in existing.to_dict("records")}
        to_run, skipped = [], []
        for run in self.plan.runs:
            row = stored.get(run.run_id)
            if row is not None and row["status"] in FINAL_STATUSES:
                skipped.append(run.run_id)
                self.progress.add_done(run, row["status"])
                continue
            if row is None:
                self.store.upsert_run({**run.store_row(self.spec.data), "status": "pending"})
            else:
                self.store.set_run_status(run.run_id, "pending")
            attempts = 0 if row is None else int(row["attempts"] or 0)
            self.states[run.run_id] = _RunState(run=run, attempts=attempts)
            to_run.append(run.run_id)
        self.queue.extend(to_run)
        return to_run, skipped

    def flush_points(self) -> None:
        for run_id, state in self.states.items():
            if state.points:
                self.store.add_loss_points(run_id, state.points)
                state.points = []

    # ---------------------------------------------------------------- Ray

    def launch(self, remote_task: Any, sink: Any) -> None:
        limit = self.max_parallel or math.inf
        if self.queue and len(self.in_flight) < limit:
            # A cancel that landed since the last poll must stop queued runs from starting.
            self.check_cancel(sink)
        while self.queue and len(self.in_flight) < limit and not self.cancelled:
            run_id = self.queue.popleft()
            state = self.states[run_id]
            state.attempts += 1
            state.started = False
            state.status = "pending"
            resources = self.spec.resources
            options: dict[str, Any] = {"num_cpus": resources.num_cpus, "num_gpus": resources.num_gpus, "max_retries": 0}
            if resources.custom:
                options["resources"] = dict(resources.custom)
            state.ref = remote_task.options(**options).remote(
                run_id,
                state.attempts,
                state.run.train_config,
                self.corpus_path,
                state.run.checkpoint_url,
                sink,
                max(1, int(resources.num_cpus)),
            )
            self.in_flight[state.ref] = run_id
            logger.debug("launched run %s, attempt %d", run_id, state.attempts)

    def handle_events(self, events: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        for event in events:
            if self.on_event is not None:
                self.on_event(event)
            state = self.states.get(event.get("run_id", ""))
            # Events of an attempt that already ended (late deliveries) are dropped; the final
            # loss history written at completion covers their points.
            if state is None or event.get("attempt") != state.attempts or state.status in ("completed", "diverged", "failed", "cancelled"):
                continue
            state.last_event_s = now
            kind = event.get("kind")
            if kind == "started":
                state.started = True
                state.status = "running"
                self.store.set_run_status(
                    state.run.run_id,
                    "running",
                    attempts=state.attempts,
                    retries=state.failures + state.preemptions,
                    host=event.get("host"),
                    node_id=event.get("node_id"),
                    error=None,
                )
                state.last_store_heartbeat_s = now
            elif kind == "loss":
                state.points.append(_loss_point(event))
                state.tokens_seen = int(event.get("tokens_seen") or state.tokens_seen)
                self.progress.set_partial(state.run, state.tokens_seen)
            if kind in ("loss", "heartbeat") and now - state.last_store_heartbeat_s >= STORE_HEARTBEAT_INTERVAL_S:
                self.store.heartbeat(state.run.run_id)
                state.last_store_heartbeat_s = now

    def handle_result(self, ref: Any) -> None:
        import ray

        run_id = self.in_flight.pop(ref)
        state = self.states[run_id]
        state.ref = None
        try:
            result = ray.get(ref)
        except Exception as error:  # noqa: BLE001 - every task error is classified below
            self.handle_error(state, error)
            return
        # Points streamed so far go first; the full history then fills any gap.
        self.flush_points()
        self.store.add_loss_points(run_id, [_loss_point(point) for point in result["loss_points"]])
        status = result["status"]
        state.status = status
        self.store.set_run_status(
            run_id,
            status,
            final_train_loss=result["final_train_loss"],
            final_val_loss=result["final_val_loss"],
            diverged_at_step=result["diverged_at_step"],
            wall_s=result["wall_s"],
            tokens_per_s=result["tokens_per_s"],
            host=result.get("host"),
            node_id=result.get("node_id"),
        )
        logger.info("run %s %s after %d steps", run_id, status, result["steps"])
        self.progress.add_done(state.run, status)

    def handle_error(self, state: _RunState, error: BaseException) -> None:
        import ray.exceptions as rex

        run_id = state.run.run_id
        self.flush_points()
        if isinstance(error, rex.TaskCancelledError) or self.cancelled:
            state.status = "cancelled"
            self.store.set_run_status(run_id, "cancelled")
            self.progress.add_done(state.run, "cancelled")
            return
        message = " ".join(str(error).split())[-2000:]
        if _is_preemption(error):
            state.preemptions += 1
            retry = state.preemptions <= self.spec.retry.max_preemptions
            logger.warning("run %s preempted (%s): %s", run_id, type(error).__name__, "retrying from its checkpoint" if retry else "no preemption retries left")
            final = "preempted" if retry else "failed"
        else:
            state.failures += 1
            retry = state.failures <= self.spec.retry.max_retries
            logger.error("run %s failed, attempt %d: %s%s", run_id, state.attempts, message, "; retrying" if retry else "")
            final = "failed"
        self.store.set_run_status(run_id, final, error=message, retries=state.failures + state.preemptions)
        state.status = final if not retry else "pending"
        if retry:
            self.queue.append(run_id)
        else:
            self.progress.add_done(state.run, final)

    def check_heartbeats(self) -> None:
        import ray

        timeout = self.spec.retry.heartbeat_timeout_s
        now = time.monotonic()
        for ref, run_id in list(self.in_flight.items()):
            state = self.states[run_id]
            if state.started and now - state.last_event_s > timeout:
                logger.warning("run %s sent no event for %.0f s; marking it preempted and rescheduling", run_id, timeout)
                del self.in_flight[ref]
                ray.cancel(ref, force=True)
                state.ref = None
                state.preemptions += 1
                self.flush_points()
                if state.preemptions <= self.spec.retry.max_preemptions:
                    self.store.set_run_status(run_id, "preempted", error=f"no heartbeat for {timeout:g} s", retries=state.failures + state.preemptions)
                    state.status = "pending"
                    self.queue.append(run_id)
                else:
                    self.store.set_run_status(run_id, "failed", error=f"no heartbeat for {timeout:g} s, no preemption retries left")
                    state.status = "failed"
                    self.progress.add_done(state.run, "failed")

    def check_cancel(self, sink: Any) -> None:
        """Stop the sweep when `scalelab sweep cancel` marked any of our unfinished runs cancelled."""
        import ray

        if self.cancelled:
            return
        rows = self.store.runs(self.spec.name)
        flagged = set(rows.loc[rows["status"] == "cancelled", "id"])
        active = {run_id for run_id, state in self.states.items() if state.status in ("pending", "running")}
        if not flagged & active:
            return
        logger.info("sweep %s cancelled; stopping %d unfinished runs", self.spec.name, len(active))
        self.cancelled = True
        sink.request_stop.remote(None)
        for run_id in list(self.queue):
            self.states[run_id].status = "cancelled"
            self.store.set_run_status(run_id, "cancelled")
            self.progress.add_done(self.states[run_id].run, "cancelled")
        self.queue.clear()
        for ref, run_id in self.in_flight.items():
            # Runs not started yet are dropped from Ray's queue; running ones stop at their next
            # step through should_stop, checkpoint and return `cancelled`.
            if not self.states[run_id].started:
                ray.cancel(ref)

    def loop(self, remote_task: Any, sink: Any) -> None:
        import ray

        last_cancel_poll = time.monotonic()
        while self.queue or self.in_flight:
            self.launch(remote_task, sink)
            refs = list(self.in_flight)
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=POLL_INTERVAL_S) if refs else ([], [])
            self.handle_events(ray.get(sink.drain.remote()))
            for ref in ready:
                if ref in self.in_flight:
                    self.handle_result(ref)
            self.flush_points()
            self.check_heartbeats()
            if time.monotonic() - last_cancel_poll >= CANCEL_POLL_INTERVAL_S:
                self.check_cancel(sink)
                last_cancel_poll = time.monotonic()
            self.progress.refresh()


def submit(
    spec: SweepSpec,
    store: Any,
    *,
    address: str | None = None,
    progress: bool = True,
    max_parallel: int | None = None,
    plan: Plan | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> SubmitResult:
    """Run every run of `spec` that is not completed or diverged, and return the counts by status.

    `address` is a Ray cluster address (such as `127.0.0.1:6379`); without it Ray starts on this
    machine. `max_parallel` caps the runs handed to Ray at once (Ray's resources cap the rest).
    `plan` replaces `plan_sweep(spec)`, for callers that already planned. `on_event` receives
    every task event in the driver (such as `{"kind": "started", "pid": ...}`), for monitoring and tests.
    """
    if max_parallel is not None and max_parallel < 1:
        raise ValueError(f"max_parallel {max_parallel} must be at least 1; omit it to let Ray's resources decide")
    if not Path(spec.data).expanduser().exists():
        raise ValueError(f"corpus {spec.data!r} not found: prepare it with `scalelab data prepare --out {spec.data}`")
    plan = plan or plan_sweep(spec)
    start = time.monotonic()
    driver = _Driver(spec, plan, store, progress=progress, max_parallel=max_parallel, on_event=on_event)
    to_run, skipped = driver.prepare()
    if skipped:
        logger.info("sweep %s: %d runs already completed or diverged are skipped", spec.name, len(skipped))

    if to_run:
        from sweeps.ray_tasks import start_ray

        started_ray = start_ray(address)
        import ray

        from sweeps.ray_tasks import EventSink, train_task

        sink = ray.remote(num_cpus=0)(EventSink).remote()
        remote_task = ray.remote(train_task)
        try:
            with driver.progress:
                driver.loop(remote_task, sink)
        finally:
            driver.flush_points()
            ray.kill(sink)
            if started_ray:
                ray.shutdown()

    rows = store.runs(spec.name)
    planned = {run.run_id for run in plan.runs}
    counts = rows.loc[rows["id"].isin(planned), "status"].value_counts().to_dict()
    return SubmitResult(
        sweep=spec.name,
        counts={str(key): int(value) for key, value in counts.items()},
        skipped=skipped,
        ran=to_run,
        wall_s=time.monotonic() - start,
        cancelled=driver.cancelled,
    )
