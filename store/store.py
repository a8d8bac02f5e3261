"""The Store: typed reads and writes of sweeps, runs, loss points, fits and predictions."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Double, Engine, Table, TypeDecorator, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from store.engine import create_store_engine, display_url, migrate, resolve_url
from store.errors import StoreError
from store.floats import FINITE, decode_float, decode_float_column, encode_float, finite_or_none, json_float, json_safe
from store.models import (
    RUN_STATUSES,
    TERMINAL_STATUSES,
    Fit,
    FitParameter,
    LossPoint,
    Prediction,
    Run,
    Sweep,
    utc_now,
)

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

# Run columns that hold a loss and have a `<name>_kind` companion.
RUN_LOSS_COLUMNS = ("final_train_loss", "final_val_loss")
LOSS_POINT_FLOAT_KIND_COLUMNS = ("train_loss", "val_loss", "grad_norm")
LOSS_POINT_PLAIN_FLOAT_COLUMNS = ("lr", "tokens_per_s")
LOSS_POINT_KEYS = ("step", "tokens_seen", *LOSS_POINT_FLOAT_KIND_COLUMNS, *LOSS_POINT_PLAIN_FLOAT_COLUMNS)
# Keys of a training event that are not loss-point fields and are dropped silently.
LOSS_POINT_IGNORED_KEYS = ("kind", "run_id")
LOSS_POINT_ACCEPTED_KEYS = frozenset(LOSS_POINT_KEYS + LOSS_POINT_IGNORED_KEYS)

RUN_WRITABLE_COLUMNS = tuple(
    column.name
    for column in Run.__table__.columns
    if column.name not in ("id", "sweep_id", "created_at", "updated_at")
    and not column.name.endswith("_kind")
)
RUN_FLOAT_COLUMNS = tuple(
    column.name
    for column in Run.__table__.columns
    if isinstance(column.type, Double) and column.name not in RUN_LOSS_COLUMNS
)
FIT_INPUT_COLUMNS = (
    "run_id",
    "sweep",
    "budget_flops",
    "num_params",
    "num_non_embedding_params",
    "num_tokens",
    "compute_flops",
    "compute_flops_6nd",
    "final_loss",
)
N_COLUMNS = ("num_params", "num_non_embedding_params")
C_COLUMNS = ("compute_flops", "compute_flops_6nd", "budget_flops")
# Rows per INSERT statement: executemany of one statement is the fast path in both drivers.
INSERT_CHUNK_ROWS = 10_000


def _dialect_insert(engine: Engine, table: Table) -> Any:
    """Return an INSERT construct with ON CONFLICT support for the engine's dialect."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _decode_run_row(row: dict[str, Any]) -> dict[str, Any]:
    for name in RUN_LOSS_COLUMNS:
        row[name] = decode_float(row[name], row[f"{name}_kind"])
    return row


class Store:
    """Reads and writes of one database; open it with `store.open_store(url)`.

    Writes are meant to come from one process per sweep (the sweep driver), but any number of
    processes may write loss points at once: SQLite serializes them through its lock and
    busy timeout, PostgreSQL through row locks.
    """

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    # ---------------------------------------------------------------- sweeps

    def upsert_sweep(self, name: str, spec: dict, *, external: bool = False) -> int:
        """Insert a sweep or replace its spec and external flag; return its id."""
        if not name or not isinstance(name, str):
            raise ValueError(f"invalid sweep name {name!r}: pass a non-empty string")
        values = {"spec": json_safe(spec or {}), "external": bool(external), "updated_at": utc_now()}
        statement = (
            _dialect_insert(self.engine, Sweep.__table__)
            .values(name=name, created_at=utc_now(), **values)
        )
        statement = statement.on_conflict_do_update(index_elements=["name"], set_=values)
        with self.engine.begin() as connection:
            connection.execute(statement)
            return connection.execute(select(Sweep.id).where(Sweep.name == name)).scalar_one()

    def sweep_names(self) -> list[str]:
        """Return the names of all sweeps, sorted."""
        with self._read() as connection:
            return list(connection.execute(select(Sweep.name).order_by(Sweep.name)).scalars())

    def sweep(self, name: str) -> dict[str, Any]:
        """Return one sweep as a dict with id, name, spec, external and times."""
        with self._read() as connection:
            row = connection.execute(select(Sweep.__table__).where(Sweep.name == name)).mappings().first()
        if row is None:
            raise self._unknown_sweep(name)
        return dict(row)

    def _sweep_id(self, connection: Any, name: str) -> int:
        sweep_id = connection.execute(select(Sweep.id).where(Sweep.name == name)).scalar_one_or_none()
        if sweep_id is None:
            raise self._unknown_sweep(name)
        return sweep_id

    def _unknown_sweep(self, name: str) -> StoreError:
        known = self.sweep_names()
        listing = ", ".join(known[:20]) if known else "none"
        if len(known) > 20:
            listing += " ..."
        return StoreError(
            f"sweep {name!r} not found in {self!r}; known sweeps: {listing}. "
            "Check the name, or --db if the sweep is in another database"
        )

    # ---------------------------------------------------------------- runs

    def _run_values(self, fields: dict[str, Any], *, context: str) -> dict[str, Any]:
        unknown = sorted(set(fields) - set(RUN_WRITABLE_COLUMNS))
        if unknown:
            raise ValueError(
                f"{context}: unknown run field(s) {unknown}; valid fields are "
                f"{', '.join(RUN_WRITABLE_COLUMNS)}"
            )
        values: dict[str, Any] = {}
        for name, value in fields.items():
            if name in RUN_LOSS_COLUMNS:
                values[name], values[f"{name}_kind"] = encode_float(value)
            elif name in RUN_FLOAT_COLUMNS:
                values[name] = finite_or_none(value)
            elif name in ("config", "conventions"):
                values[name] = json_safe(value) if value is not None else None
            elif name == "status":
                values[name] = _check_status(value)
            elif isinstance(value, datetime) or value is None:
                values[name] = value
            elif name in ("host", "node_id", "error"):
                values[name] = str(value)
            else:
                values[name] = int(value)
        return values

    def upsert_run(self, run: dict[str, Any]) -> None:
        """Insert a run or update the fields given; `run` needs `id` (or `run_id`) and `sweep`.

        Keys are `runs` column names (see `RUN_WRITABLE_COLUMNS`); the sweep must exist.
        Fields not given keep their stored values on update. 6N, 6ND and
        flops_per_token * num_tokens are filled in when their inputs are given and they are not.
        """
        self.upsert_runs([run])

    def upsert_runs(self, runs: Iterable[dict[str, Any]]) -> int:
        """Upsert many runs in one transaction, as `upsert_run` does each; return the count."""
        prepared = [self._prepare_run(run) for run in runs]
        now = utc_now()
        sweep_ids: dict[str, int] = {}
        with self.engine.begin() as connection:
            for sweep, run_id, fields, values in prepared:
                if sweep not in sweep_ids:
                    sweep_ids[sweep] = self._sweep_id(connection, sweep)
                statement = _dialect_insert(self.engine, Run.__table__).values(
                    id=run_id,
                    sweep_id=sweep_ids[sweep],
                    created_at=now,
                    updated_at=now,
                    **{"status": "pending", "attempts": 0, "retries": 0, **values},
                )
                updated = {name: statement.excluded[name] for name in ("sweep_id", *values)}
                updated["updated_at"] = now
                connection.execute(
                    statement.on_conflict_do_update(index_elements=["id"], set_=updated)
                )
        return len(prepared)

    def _prepare_run(self, run: dict[str, Any]) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
        fields = dict(run)
        run_id = fields.pop("id", None) or fields.pop("run_id", None)
        if not run_id:
            raise ValueError(f"run without an id: pass 'id' (the hash of its config) in {sorted(run)}")
        sweep = fields.pop("sweep", None)
        if not sweep:
            raise ValueError(f"run {run_id!r} without a sweep: pass 'sweep' (the sweep name)")
        values = _derive_compute(self._run_values(fields, context=f"run {run_id!r}"))
        return sweep, str(run_id), fields, values

    def set_run_status(self, run_id: str, status: str, **fields: Any) -> None:
        """Set a run's status and any other run fields, such as `final_val_loss` or `error`.

        `running` stamps `started_at` and a terminal status stamps `ended_at` unless given.
        """
        values = self._run_values({"status": status, **fields}, context=f"run {run_id!r}")
        now = utc_now()
        if status == "running":
            values.setdefault("started_at", now)
            values.setdefault("heartbeat_at", now)
        if status in TERMINAL_STATUSES:
            values.setdefault("ended_at", now)
        values["updated_at"] = now
        with self.engine.begin() as connection:
            result = connection.execute(update(Run).where(Run.id == run_id).values(**values))
            if result.rowcount == 0:
                raise StoreError(f"run {run_id!r} not found in {self!r}; store it first with upsert_run")

    def heartbeat(self, run_id: str) -> None:
        """Record that a run is alive now."""
        with self.engine.begin() as connection:
            connection.execute(update(Run).where(Run.id == run_id).values(heartbeat_at=utc_now()))

    def delete_sweep(self, name: str) -> None:
        """Delete a sweep with its runs, loss points, fits and predictions."""
        with self.engine.begin() as connection:
            sweep_id = self._sweep_id(connection, name)
            connection.execute(delete(Sweep).where(Sweep.id == sweep_id))

    def runs(self, sweep: str | None = None) -> pd.DataFrame:
        """Return runs (all, or one sweep's) with a `sweep` name column, non-finite losses decoded."""
        import pandas as pd

        statement = select(Run.__table__, Sweep.name.label("sweep")).join(Sweep, Sweep.id == Run.sweep_id)
        if sweep is not None:
            statement = statement.where(Sweep.name == sweep)
        statement = statement.order_by(Sweep.name, Run.budget_flops, Run.num_params, Run.id)
        with self._read() as connection:
            if sweep is not None:
                self._sweep_id(connection, sweep)
            rows = [_decode_run_row(dict(row)) for row in connection.execute(statement).mappings()]
        columns = ["id", "sweep", *[c.name for c in Run.__table__.columns if c.name not in ("id",)]]
        return _typed_frame(pd.DataFrame(rows, columns=columns), Run.__table__)

    # ---------------------------------------------------------------- loss points

    def add_loss_points(self, run_id: str, points: Iterable[dict[str, Any]]) -> int:
        """Insert loss points of one run; a (run_id, step) already stored is left as it is.

        Each point has `step` and any of `tokens_seen, train_loss, val_loss, lr, grad_norm,
        tokens_per_s`; a missing or None `val_loss` means no evaluation at that step. Returns
        the number of points given (re-added points included).
        """
        rows = [_loss_point_row(run_id, point) for point in points]
        if not rows:
            return 0
        with self.engine.begin() as connection:
            if self.dialect == "postgresql":
                _copy_loss_points(connection, rows)
            else:
                # One prepared INSERT run by the driver's executemany: a SQLAlchemy statement
                # per row would cost more than SQLite's own work.
                statement = _insert_loss_points_sql(self.engine.dialect.paramstyle)
                for start in range(0, len(rows), INSERT_CHUNK_ROWS):
                    connection.exec_driver_sql(statement, rows[start:start + INSERT_CHUNK_ROWS])
        return len(rows)

    def loss_points(self, run_ids: str | Sequence[str]) -> pd.DataFrame:
        """Return the loss points of the given runs, ordered by run and step.

        Losses come back as floats with NaN and infinities restored. `val_loss` is NaN both
        where no evaluation took place and where it diverged; `val_loss_kind`
        distinguishes them (None or 'nan').
        """
        import pandas as pd

        if isinstance(run_ids, str):
            run_ids = [run_ids]
        run_ids = list(run_ids)
        table = LossPoint.__table__
        columns = [column.name for column in table.columns]
        rows: list[Any] = []
        with self._read() as connection:
            # Chunks keep the IN list under SQLite's bound-parameter limit.
            for start in range(0, len(run_ids), 500):
                chunk = run_ids[start:start + 500]
                # Plain tuples: pandas probes each SQLAlchemy Row with hasattr, which costs an
                # exception per row and made this read five times slower.
                rows.extend(map(tuple, connection.execute(select(table).where(table.c.run_id.in_(chunk)))))
        frame = pd.DataFrame.from_records(rows, columns=columns)
        for name in LOSS_POINT_FLOAT_KIND_COLUMNS:
            frame[name] = decode_float_column(frame[name], frame[f"{name}_kind"])
        frame = _typed_frame(frame, table)
        return frame.sort_values(["run_id", "step"], ignore_index=True)

    # ---------------------------------------------------------------- fitting

    def fit_inputs(
        self, sweep: str, *, n_col: str = "num_params", c_col: str = "compute_flops"
    ) -> pd.DataFrame:
        """Return one row per completed run of a sweep in the layout the fitters read.

        Columns: run_id, sweep, budget_flops, num_params, num_non_embedding_params, num_tokens,
        compute_flops, compute_flops_6nd, final_loss (the final validation loss). Runs whose
        final loss is not finite, or that lack `n_col` or `c_col`, are left out with a log line.
        """
        import pandas as pd

        if n_col not in N_COLUMNS:
            raise ValueError(f"invalid n_col {n_col!r}: choose one of {', '.join(N_COLUMNS)}")
        if c_col not in C_COLUMNS:
            raise ValueError(f"invalid c_col {c_col!r}: choose one of {', '.join(C_COLUMNS)}")
        runs = self.runs(sweep)
        completed = runs[runs["status"] == "completed"]
        finite = completed["final_val_loss"].map(lambda value: value is not None and math.isfinite(value))
        has_columns = completed[n_col].notna() & completed[c_col].notna()
        usable = completed[finite & has_columns]
        left_out = len(completed) - len(usable)
        if left_out:
            logger.warning(
                "fit_inputs(%r): left out %d of %d completed runs without a finite final loss, "
                "%s or %s", sweep, left_out, len(completed), n_col, c_col,
            )
        frame = pd.DataFrame(
            {
                "run_id": usable["id"],
                "sweep": usable["sweep"],
                "budget_flops": usable["budget_flops"].astype(float),
                "num_params": usable["num_params"].astype(float),
                "num_non_embedding_params": usable["num_non_embedding_params"].astype(float),
                "num_tokens": usable["num_tokens"].astype(float),
                "compute_flops": usable["compute_flops"].astype(float),
                "compute_flops_6nd": usable["compute_flops_6nd"].astype(float),
                "final_loss": usable["final_val_loss"].astype(float),
            },
            columns=list(FIT_INPUT_COLUMNS),
        ).reset_index(drop=True)
        frame.attrs.update(n_col=n_col, c_col=c_col)
        return frame

    def save_fit(
        self,
        sweep: str,
        approach: str,
        *,
        n_convention: str,
        c_convention: str,
        data_filter: dict | None = None,
        params: dict[str, float],
        intervals: dict[str, tuple[float, float]] | None = None,
        interval_level: float | None = None,
        convergence: dict | None = None,
        details: dict | None = None,
    ) -> int:
        """Save a fit with its parameters (full double precision) and intervals; return its id."""
        intervals = intervals or {}
        unknown = sorted(set(intervals) - set(params))
        if unknown:
            raise ValueError(f"intervals for unknown parameter(s) {unknown}; parameters are {sorted(params)}")
        with self.engine.begin() as connection:
            sweep_id = self._sweep_id(connection, sweep)
            fit_id = connection.execute(
                insert(Fit).values(
                    sweep_id=sweep_id,
                    approach=approach,
                    n_convention=n_convention,
                    c_convention=c_convention,
                    data_filter=json_safe(data_filter or {}),
                    interval_level=finite_or_none(interval_level),
                    convergence=json_safe(convergence or {}),
                    details=json_safe(details or {}),
                    created_at=utc_now(),
                ).returning(Fit.id)
            ).scalar_one()
            rows = []
            for name, value in params.items():
                low, high = intervals.get(name, (None, None))
                row = {"fit_id": fit_id, "name": name}
                row["value"], row["value_kind"] = encode_float(value)
                row["lower"], row["lower_kind"] = encode_float(low)
                row["upper"], row["upper_kind"] = encode_float(high)
                rows.append(row)
            if rows:
                connection.execute(insert(FitParameter), rows)
        return fit_id

    def fits(self, sweep: str | None = None) -> pd.DataFrame:
        """Return fits (all, or one sweep's), newest last, with `params` and `intervals` dicts."""
        import pandas as pd

        statement = select(Fit.__table__, Sweep.name.label("sweep")).join(Sweep, Sweep.id == Fit.sweep_id)
        if sweep is not None:
            statement = statement.where(Sweep.name == sweep)
        with self._read() as connection:
            if sweep is not None:
                self._sweep_id(connection, sweep)
            fits = [dict(row) for row in connection.execute(statement.order_by(Fit.id)).mappings()]
            fit_ids = [fit["id"] for fit in fits]
            parameters = (
                connection.execute(
                    select(FitParameter.__table__).where(FitParameter.fit_id.in_(fit_ids))
                ).mappings().all()
                if fit_ids
                else []
            )
        by_fit: dict[int, list[Any]] = {}
        for parameter in parameters:
            by_fit.setdefault(parameter["fit_id"], []).append(parameter)
        for fit in fits:
            fit["params"] = {}
            fit["intervals"] = {}
            for parameter in by_fit.get(fit["id"], []):
                fit["params"][parameter["name"]] = decode_float(parameter["value"], parameter["value_kind"])
                if parameter["lower_kind"] is not None or parameter["upper_kind"] is not None:
                    fit["intervals"][parameter["name"]] = (
                        decode_float(parameter["lower"], parameter["lower_kind"]),
                        decode_float(parameter["upper"], parameter["upper_kind"]),
                    )
            for name in ("convergence", "details", "data_filter"):
                fit[name] = _restore_json_floats(fit[name])
            fit["fit_id"] = fit["id"]
        columns = [
            "fit_id", "id", "sweep", "approach", "n_convention", "c_convention", "data_filter",
            "params", "intervals", "interval_level", "convergence", "details", "created_at",
        ]
        return pd.DataFrame(fits, columns=columns)

    def save_predictions(self, fit_id: int, rows: list[dict[str, Any]]) -> None:
        """Save predictions of a fit: each row has target, num_params, num_tokens,
        compute_flops, loss and optionally `intervals` {quantity: (low, high)}."""
        allowed = {"target", "num_params", "num_tokens", "compute_flops", "loss", "intervals"}
        values = []
        now = utc_now()
        for row in rows:
            unknown = sorted(set(row) - allowed)
            if unknown:
                raise ValueError(f"prediction row has unknown field(s) {unknown}; valid fields are {sorted(allowed)}")
            if not row.get("target"):
                raise ValueError(f"prediction row without 'target': {row!r}")
            value = {
                "fit_id": fit_id,
                "target": str(row["target"]),
                "num_params": finite_or_none(row.get("num_params")),
                "num_tokens": finite_or_none(row.get("num_tokens")),
                "compute_flops": finite_or_none(row.get("compute_flops")),
                "intervals": json_safe(row.get("intervals") or {}),
                "created_at": now,
            }
            value["loss"], value["loss_kind"] = encode_float(row.get("loss"))
            values.append(value)
        with self.engine.begin() as connection:
            exists = connection.execute(select(Fit.id).where(Fit.id == fit_id)).scalar_one_or_none()
            if exists is None:
                raise StoreError(f"fit {fit_id!r} not found in {self!r}; save it first with save_fit")
            if values:
                connection.execute(insert(Prediction), values)

    def predictions(self, fit_id: int) -> pd.DataFrame:
        """Return the predictions of one fit, in the order they were saved."""
        import pandas as pd

        with self._read() as connection:
            rows = [
                dict(row)
                for row in connection.execute(
                    select(Prediction.__table__).where(Prediction.fit_id == fit_id).order_by(Prediction.id)
                ).mappings()
            ]
        for row in rows:
            row["loss"] = decode_float(row["loss"], row["loss_kind"])
            row["intervals"] = {
                name: tuple(_restore_json_floats(bound) for bound in bounds)
                for name, bounds in (row["intervals"] or {}).items()
            }
        columns = [
            "id", "fit_id", "target", "num_params", "num_tokens", "compute_flops", "loss",
            "loss_kind", "intervals", "created_at",
        ]
        return _typed_frame(pd.DataFrame(rows, columns=columns), Prediction.__table__)

    # ---------------------------------------------------------------- SQL

    def read_sql(self, query: str) -> pd.DataFrame:
        """Run one SQL query on a read-only connection and return the result as a DataFrame."""
        from store.readonly import read_only_query

        return read_only_query(self.url, query)

    def _read(self) -> Any:
        return self.engine.connect().execution_options(read_only=True)


LOSS_POINT_INSERT_COLUMNS = (
    "run_id", "step", "tokens_seen",
    "train_loss", "train_loss_kind", "val_loss", "val_loss_kind",
    "lr", "grad_norm", "grad_norm_kind", "tokens_per_s",
)


def _insert_loss_points_sql(paramstyle: str) -> str:
    placeholder = "?" if paramstyle == "qmark" else "%s"
    return (
        f"INSERT INTO loss_points ({', '.join(LOSS_POINT_INSERT_COLUMNS)}) "
        f"VALUES ({', '.join([placeholder] * len(LOSS_POINT_INSERT_COLUMNS))}) "
        "ON CONFLICT (run_id, step) DO NOTHING"
    )


def _copy_loss_points(connection: Any, rows: list[tuple]) -> None:
    """Insert rows on PostgreSQL through COPY into a temporary table, then one INSERT ... SELECT.

    COPY streams rows without a round trip per row, and the final INSERT skips keys that are
    already stored (ON CONFLICT DO NOTHING), as the SQLite path does.
    """
    columns = ", ".join(LOSS_POINT_INSERT_COLUMNS)
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS loss_points_incoming "
            "(LIKE loss_points INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with cursor.copy(f"COPY loss_points_incoming ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO loss_points ({columns}) SELECT {columns} FROM loss_points_incoming "
            "ON CONFLICT (run_id, step) DO NOTHING"
        )
        cursor.execute("TRUNCATE loss_points_incoming")
    finally:
        cursor.close()


def _loss_point_row(run_id: str, point: dict[str, Any]) -> tuple:
    """Return the values of one loss point in LOSS_POINT_INSERT_COLUMNS order.

    This runs once per point, so the common finite case avoids function calls:
    `x - x == 0.0` holds for every finite number and fails for NaN and infinities.
    """
    if not point.keys() <= LOSS_POINT_ACCEPTED_KEYS:
        unknown = sorted(point.keys() - LOSS_POINT_ACCEPTED_KEYS)
        raise ValueError(
            f"loss point of run {run_id!r} has unknown field(s) {unknown}; "
            f"valid fields are {', '.join(LOSS_POINT_KEYS)}"
        )
    get = point.get
    step = get("step")
    if step is None:
        raise ValueError(f"loss point of run {run_id!r} without 'step': {point!r}")
    tokens_seen = get("tokens_seen")
    encoded = []
    for name in LOSS_POINT_FLOAT_KIND_COLUMNS:
        value = get(name)
        if value is None:
            encoded += (None, None)
        elif value - value == 0.0:
            encoded += (float(value), FINITE)
        else:
            encoded += encode_float(value)
    lr = get("lr")
    tokens_per_s = get("tokens_per_s")
    return (
        run_id,
        int(step),
        None if tokens_seen is None else int(tokens_seen),
        encoded[0],
        encoded[1],
        encoded[2],
        encoded[3],
        lr if lr is None or lr - lr == 0.0 else None,
        encoded[4],
        encoded[5],
        tokens_per_s if tokens_per_s is None or tokens_per_s - tokens_per_s == 0.0 else None,
    )


def _derive_compute(values: dict[str, Any]) -> dict[str, Any]:
    """Fill in 6N, 6ND and flops_per_token * D where the run gives their inputs but not them."""
    num_params = values.get("num_params")
    num_tokens = values.get("num_tokens")
    flops_per_token = values.get("flops_per_token")
    if num_params is not None and values.get("flops_per_token_6n") is None:
        values["flops_per_token_6n"] = 6.0 * num_params
    if num_params is not None and num_tokens is not None and values.get("compute_flops_6nd") is None:
        values["compute_flops_6nd"] = 6.0 * num_params * num_tokens
    if flops_per_token is not None and num_tokens is not None and values.get("compute_flops") is None:
        values["compute_flops"] = flops_per_token * num_tokens
    return values


def _typed_frame(frame: pd.DataFrame, table: Table) -> pd.DataFrame:
    """Give a frame's columns the dtypes of their SQL columns, also when every value is None.

    Floats become float64 (None becomes NaN), integers nullable Int64, timestamps
    datetime64 in UTC.
    """
    import pandas as pd

    for column in table.columns:
        if column.name not in frame.columns or column.primary_key and column.name == "id":
            continue
        python_type = _python_type(column)
        if python_type is float:
            frame[column.name] = frame[column.name].astype(float)
        elif python_type is int:
            frame[column.name] = frame[column.name].astype("Int64" if column.nullable else "int64")
        elif python_type is datetime:
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True).astype("datetime64[us, UTC]")
    return frame


def _python_type(column: Any) -> type | None:
    column_type = column.type.impl if isinstance(column.type, TypeDecorator) else column.type
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


def _check_status(status: Any) -> str:
    if status not in RUN_STATUSES:
        raise ValueError(f"invalid run status {status!r}: choose one of {', '.join(RUN_STATUSES)}")
    return status


def _restore_json_floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _restore_json_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_restore_json_floats(item) for item in value]
    return json_float(value)


def open_store(url: str | None = None) -> Store:
    """Open (creating or migrating as needed) the database at `url`.

    `url` defaults to $SCALELAB_DB, then sqlite:///scalelab.db in the current folder.
    `postgresql://` URLs use the psycopg 3 driver. Raises StoreError naming the URL when the
    database cannot be opened.
    """
    resolved = resolve_url(url)
    engine = create_store_engine(resolved)
    try:
        migrate(engine)
    except StoreError:
        engine.dispose()
        raise
    except Exception as error:
        engine.dispose()
        raise StoreError(
            f"cannot migrate database {display_url(resolved)!r} to this version's schema: {error}; "
            "check that it is a scalelab database and that this user may create tables"
        ) from error
    return Store(engine, resolved)
