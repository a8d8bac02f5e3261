"""All store access of the dashboards: sweeps, runs, loss curves and cached fits.

The app and the report read the store only through `DashboardData`, so the figures stay pure
functions of DataFrames. Fits are computed on the fly from the store's `fit_inputs` (never read
from the `fits` table), so they follow the runs as they land. Each result is cached under the
sweep's data version, which changes when a run is added, changes status or is updated.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import pandas as pd

from dashboards.analysis import SweepAnalysis

logger = logging.getLogger(__name__)

FAILED_STATUSES = ("failed", "diverged")
RUN_COLUMNS = (
    "run_id",
    "sweep",
    "status",
    "budget_flops",
    "num_params",
    "num_non_embedding_params",
    "num_tokens",
    "compute_flops",
    "final_loss",
)


def _final_loss(runs: pd.DataFrame) -> pd.Series:
    # The final validation loss is what fits use; fall back to the train loss for runs
    # (imported ones, for example) that have no validation loss.
    loss = pd.Series(float("nan"), index=runs.index, dtype=float)
    for column in ("final_loss", "final_val_loss", "final_train_loss"):
        if column in runs:
            loss = loss.fillna(pd.to_numeric(runs[column], errors="coerce"))
    return loss


class DashboardData:
    """Read-only view of one store for the dashboards, with a small cache of fits."""

    def __init__(self, store, *, num_resamples: int = 100, cache_size: int = 16,
                 fit_in_process: bool = False,
                 approaches: tuple[str, ...] = ("approach1", "approach2", "approach3")):
        self.store = store
        self.num_resamples = num_resamples
        self.approaches = tuple(approaches)
        self._cache: OrderedDict[tuple, Future] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # One worker: fits are CPU-bound, and two at once would only slow each other down.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scalelab-fits")
        # The app fits in a child process: a fit's Python loops would otherwise hold the GIL
        # and stall every page request while they run. An in-memory SQLite store cannot be
        # reopened from a child, so it fits in the thread.
        self._processes = None
        url = str(getattr(store, "url", ""))
        if fit_in_process and url and ":memory:" not in url:
            self._processes = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))

    def close(self) -> None:
        """Stop the background fit workers (a fit in progress is abandoned)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)

    def sweeps(self) -> list[str]:
        """Return the names of all sweeps in the store, sorted, those without runs included."""
        if hasattr(self.store, "sweep_names"):
            return list(self.store.sweep_names())
        runs = self.store.runs()
        if runs.empty or "sweep" not in runs:
            return []
        return sorted(runs["sweep"].dropna().astype(str).unique())

    def runs(self, sweep: str | None, *, hide_failed: bool = False) -> pd.DataFrame:
        """Return one row per run of `sweep` in the RUN_COLUMNS layout, indexed by run_id."""
        runs = self.store.runs(sweep) if sweep else self.store.runs()
        if runs.empty:
            return pd.DataFrame(columns=list(RUN_COLUMNS)).set_index("run_id", drop=False)
        runs = runs.copy()
        if "run_id" not in runs and "id" in runs:
            runs["run_id"] = runs["id"]
        runs["run_id"] = runs["run_id"].astype(str)
        runs["final_loss"] = _final_loss(runs)
        for column in RUN_COLUMNS:
            if column not in runs:
                runs[column] = float("nan")
        if hide_failed:
            runs = runs[~runs["status"].isin(FAILED_STATUSES)]
        runs = runs[list(RUN_COLUMNS)].sort_values(["budget_flops", "num_params"], kind="stable")
        return runs.set_index("run_id", drop=False)

    def loss_points(self, run_ids: list[str]) -> pd.DataFrame:
        """Return run_id, step, tokens_seen, train_loss, val_loss of the given runs."""
        columns = ["run_id", "step", "tokens_seen", "train_loss", "val_loss"]
        if not run_ids:
            return pd.DataFrame(columns=columns)
        points = self._read_loss_points(list(run_ids))
        if points.empty:
            return pd.DataFrame(columns=columns)
        points = points.copy()
        points["run_id"] = points["run_id"].astype(str)
        for column in columns:
            if column not in points:
                points[column] = float("nan")
        return points[columns].sort_values(["run_id", "step"], kind="stable")

    def _read_loss_points(self, run_ids: list[str]) -> pd.DataFrame:
        # One read-only query per 500 runs of only the drawn columns: 0.7 s for 200,000 points,
        # against 1.6 s through Store.loss_points, which reads and decodes every column (quiet
        # 2-core machine). Non-finite and missing losses both come back as NaN, and neither is drawn.
        if not hasattr(self.store, "read_sql"):
            return self.store.loss_points(run_ids)
        frames = []
        for start in range(0, len(run_ids), 500):
            quoted = ", ".join("'" + str(run_id).replace("'", "''") + "'" for run_id in run_ids[start:start + 500])
            frames.append(self.store.read_sql(
                "SELECT run_id, step, tokens_seen, train_loss, val_loss FROM loss_points "
                f"WHERE run_id IN ({quoted}) ORDER BY run_id, step"
            ))
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def version(self, sweep: str | None, *, with_loss_points: bool = True) -> str:
        """Return a string that changes when a run of `sweep` is added, changes status or is updated.

        With `with_loss_points` it also changes when a loss point lands, so that the live
        training curves follow a running sweep; the fit cache leaves it out, because fits read
        only final losses.
        """
        runs = self.store.runs(sweep) if sweep else self.store.runs()
        if runs.empty:
            return "empty"
        statuses = runs["status"].value_counts().sort_index()
        parts = [f"{status}={count}" for status, count in statuses.items()]
        for column in ("updated_at", "heartbeat_at"):
            if column in runs and runs[column].notna().any():
                parts.append(f"{column}={runs[column].max()}")
        if with_loss_points and sweep and hasattr(self.store, "read_sql"):
            name = sweep.replace("'", "''")
            count = self.store.read_sql(
                "SELECT COUNT(*) AS num_points FROM loss_points JOIN runs ON runs.id = loss_points.run_id "
                f"JOIN sweeps ON sweeps.id = runs.sweep_id WHERE sweeps.name = '{name}'"
            )
            parts.append(f"points={int(count.iloc[0, 0])}")
        return f"{len(runs)}|" + ",".join(parts)

    def _analysis_key(self, sweep: str, n_convention: str) -> tuple:
        return (sweep, n_convention, self.version(sweep, with_loss_points=False), self.num_resamples,
                self.approaches)

    def _compute_analysis(self, sweep: str, n_convention: str) -> SweepAnalysis:
        return compute_analysis(self, sweep, n_convention)

    def _future(self, sweep: str, n_convention: str) -> Future:
        key = self._analysis_key(sweep, n_convention)
        with self._lock:
            future = self._cache.get(key)
            if future is None:
                if self._processes is not None:
                    future = self._processes.submit(
                        _analysis_in_process, self.store.url, sweep, n_convention, self.num_resamples,
                        self.approaches,
                    )
                else:
                    future = self._executor.submit(self._compute_analysis, sweep, n_convention)
                self._cache[key] = future
            self._cache.move_to_end(key)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return future

    def analysis(self, sweep: str, n_convention: str = "total") -> SweepAnalysis:
        """Fit all three approaches on `sweep` and wait for the result.

        Results are cached until the sweep's data version changes.
        """
        return self._future(sweep, n_convention).result()

    def analysis_if_ready(self, sweep: str, n_convention: str = "total") -> SweepAnalysis | None:
        """Return the cached fits of `sweep`, or None after starting them in the background.

        The app calls this so that a slow fit never blocks a page; its poll picks the result
        up through `fits_state` once the background fit finishes.
        """
        future = self._future(sweep, n_convention)
        return future.result() if future.done() else None

    def fits_state(self, sweep: str, n_convention: str = "total") -> str:
        """Return `ready` or `running` for the fits of the sweep's current data version."""
        key = self._analysis_key(sweep, n_convention)
        with self._lock:
            future = self._cache.get(key)
        if future is None:
            return "not started"
        return "ready" if future.done() else "running"


def compute_analysis(data: DashboardData, sweep: str, n_convention: str) -> SweepAnalysis:
    """Fit the three approaches on `sweep` through `data`, logging how long it took."""
    from dashboards.fits import analyse_sweep

    started = time.perf_counter()
    runs = data.runs(sweep)
    points = data.loss_points(list(runs.loc[runs["status"] == "completed", "run_id"]))
    result = analyse_sweep(
        data.store, sweep, runs, points, n_convention=n_convention, num_resamples=data.num_resamples,
        approaches=data.approaches,
    )
    logger.info("fits of sweep %s (%s N) took %.1f s", sweep, n_convention, time.perf_counter() - started)
    return result


def _analysis_in_process(url: str, sweep: str, n_convention: str, num_resamples: int,
                         approaches: tuple[str, ...]) -> SweepAnalysis:
    from store import open_store

    store = open_store(url)
    try:
        data = DashboardData(store, num_resamples=num_resamples, approaches=approaches)
        return compute_analysis(data, sweep, n_convention)
    finally:
        store.close()
