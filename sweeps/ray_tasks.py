"""The Ray side of a sweep: starting Ray, the event sink actor and the training task.

Tasks never touch the store. They send events (start, loss points, heartbeats) to one
`EventSink` actor, and the driver drains it and writes to the store in batches.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from typing import Any

logger = logging.getLogger(__name__)

# Loss records are small; Ray's default of 30% of RAM for the object store only costs memory.
OBJECT_STORE_BYTES = 200 * 1024**2
# A task sends its buffered events at least this often, and polls for a stop request at most this often.
FLUSH_INTERVAL_S = 0.5
STOP_POLL_INTERVAL_S = 1.0


def start_ray(address: str | None) -> bool:
    """Connect to the cluster at `address`, or start Ray on this machine; return whether we started it.

    An already initialised Ray (in tests, or a caller's session) is reused as it is.
    """
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    if ray.is_initialized():
        return False
    if address:
        logger.info("connecting to the Ray cluster at %s", address)
        ray.init(address=address, log_to_driver=False)
    else:
        logger.info("starting Ray on this machine")
        # "local" starts a new instance even when `ray start` left a cluster on this machine.
        ray.init(address="local", include_dashboard=False, object_store_memory=OBJECT_STORE_BYTES, log_to_driver=False)
    return True


class EventSink:
    """Actor that buffers task events for the driver and stores the stop requests for running runs."""

    def __init__(self) -> None:
        self._events: list[dict[str, Any]] = []
        self._stop_run_ids: set[str] = set()
        self._stop_all = False

    def put(self, events: list[dict[str, Any]]) -> None:
        self._events.extend(events)

    def drain(self) -> list[dict[str, Any]]:
        events, self._events = self._events, []
        return events

    def request_stop(self, run_ids: list[str] | None = None) -> None:
        if run_ids is None:
            self._stop_all = True
        else:
            self._stop_run_ids.update(run_ids)

    def should_stop(self, run_id: str) -> bool:
        return self._stop_all or run_id in self._stop_run_ids


def train_task(
    run_id: str,
    attempt: int,
    train_config: dict[str, Any],
    corpus_path: str,
    checkpoint_url: str,
    sink: Any,
    num_threads: int,
) -> dict[str, Any]:
    """Train one run inside a Ray worker and return its `RunResult` as a dict.

    `train_run` resumes from `checkpoint_url` when a checkpoint is there, so a retry after a
    preemption continues where the dead worker stopped.
    """
    import ray
    import torch

    from model.train import TrainConfig, train_run

    # Ray reuses workers, and torch keeps the thread count of the first task in a process.
    torch.set_num_threads(num_threads)
    context = ray.get_runtime_context()
    node_id = context.get_node_id()
    host = socket.gethostname()
    buffer: list[dict[str, Any]] = []
    last_flush = time.monotonic()
    last_stop_poll = 0.0
    stop = False

    def flush() -> None:
        nonlocal buffer, last_flush
        if buffer:
            sink.put.remote(buffer)
            buffer = []
        last_flush = time.monotonic()

    def on_event(event: dict[str, Any]) -> None:
        buffer.append({**event, "run_id": run_id, "attempt": attempt})
        if event.get("kind") == "heartbeat" or time.monotonic() - last_flush >= FLUSH_INTERVAL_S:
            flush()

    pending_poll = None

    def should_stop() -> bool:
        # Never call ray.get or ray.wait here. Ray counts a task blocked in either one as idle
        # and lends its CPUs to a queued run, so more runs than CPUs would train at once.
        # The poll's result arrives through a concurrent.futures callback instead.
        nonlocal last_stop_poll, stop, pending_poll
        if stop:
            return stop
        if pending_poll is not None:
            if not pending_poll.done():
                return stop
            try:
                stop = bool(pending_poll.result())
            except Exception:  # noqa: BLE001 - a lost sink must not stop training; the next poll retries
                logger.warning("stop poll of run %s failed", run_id, exc_info=True)
            pending_poll = None
        now = time.monotonic()
        if not stop and now - last_stop_poll >= STOP_POLL_INTERVAL_S:
            last_stop_poll = now
            pending_poll = sink.should_stop.remote(run_id).future()
        return stop

    on_event({"kind": "started", "pid": os.getpid(), "node_id": node_id, "host": host, "time_unix": time.time()})
    flush()
    result = train_run(TrainConfig.from_dict(train_config), corpus_path, checkpoint_url, on_event, should_stop)
    on_event({"kind": "finished", "status": result.status, "time_unix": time.time()})
    flush()
    output = dataclasses.asdict(result) if dataclasses.is_dataclass(result) else dict(result)
    output.update(node_id=node_id, host=host)
    return output
