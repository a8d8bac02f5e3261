"""The sweep progress bar: runs done, FLOPs done against planned, and estimated time left."""

from __future__ import annotations

from typing import Any

from sweeps.plan import Plan, PlannedRun


class SweepProgress:
    """A rich progress bar measured in FLOPs (with attention), so long runs weigh more than short ones.

    A running run counts its tokens seen times its FLOPs per token. The time left is rich's
    estimate from the FLOP rate so far.
    """

    def __init__(self, plan: Plan, *, enabled: bool) -> None:
        self.enabled = enabled
        self.total_runs = len(plan.runs)
        self.planned_flops = plan.total_compute_flops
        self.done_runs = 0
        self.done_flops = 0.0
        self.partial_flops: dict[str, float] = {}
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SweepProgress:
        if self.enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn("runs {task.fields[runs]}"),
                TextColumn("FLOPs {task.fields[flops]}"),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
            )
            self._progress.start()
            self._task = self._progress.add_task("sweep", total=self.planned_flops, runs="", flops="")
            self.refresh()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self.refresh()
            self._progress.stop()
            self._progress = None

    def add_done(self, run: PlannedRun, status: str) -> None:
        """Count a run as finished, whatever its final status."""
        self.done_runs += 1
        self.done_flops += run.compute_flops
        self.partial_flops.pop(run.run_id, None)

    def set_partial(self, run: PlannedRun, tokens_seen: int) -> None:
        self.partial_flops[run.run_id] = min(tokens_seen, run.num_tokens) * run.flops_per_token

    def flops_done(self) -> float:
        return self.done_flops + sum(self.partial_flops.values())

    def refresh(self) -> None:
        if self._progress is None:
            return
        done = self.flops_done()
        self._progress.update(
            self._task,
            completed=done,
            runs=f"{self.done_runs}/{self.total_runs}",
            flops=f"{done:.3g}/{self.planned_flops:.3g}",
        )
