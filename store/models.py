"""SQLAlchemy models of the store: sweeps, runs, loss points, fits and predictions.

Every column carries `info={"unit": ..., "doc": ...}`, which `scalelab sql --schema` and
docs/store.md print. FLOP and token counts are double precision because 1e21 FLOPs
overflows a 64-bit integer. Each loss that may be non-finite has a `<name>_kind` companion
column (see `store.floats`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

RUN_STATUSES = ("pending", "running", "completed", "failed", "preempted", "diverged", "cancelled")
TERMINAL_STATUSES = ("completed", "failed", "diverged", "cancelled")

# JSON on SQLite (stored as text), JSONB on PostgreSQL (indexable, queryable with ->>).
JsonType = JSON().with_variant(JSONB(), "postgresql")

def kind_check(column: str) -> str:
    """Return the CHECK expression that limits a kind column to the four kinds.

    It is written with OR rather than IN: SQLite evaluates a CHECK with an IN list about three
    times slower per inserted row (measured on loss-point inserts with SQLite 3.40).
    """
    return " OR ".join(f"{column} = '{kind}'" for kind in ("finite", "nan", "inf", "-inf"))


def utc_now() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """A timestamp that is stored in UTC and always read back timezone-aware.

    SQLite has no timezone type and returns naive datetimes; this type attaches UTC on the
    way out, so both engines give the same Python values.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime (UTC)")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def column_info(unit: str, doc: str) -> dict[str, str]:
    return {"unit": unit, "doc": doc}


def kind_column(of: str) -> Mapped[str | None]:
    return mapped_column(
        String(8),
        CheckConstraint(kind_check(f"{of}_kind"), name=f"ck_{of}_kind"),
        info=column_info("-", f"'finite', 'nan', 'inf' or '-inf'; NULL when {of} was not measured"),
    )


class Base(DeclarativeBase):
    pass


class Sweep(Base):
    __tablename__ = "sweeps"

    id: Mapped[int] = mapped_column(
        Integer, primary_key=True, info=column_info("-", "surrogate key")
    )
    name: Mapped[str] = mapped_column(
        String(200), unique=True, info=column_info("-", "sweep name, unique")
    )
    spec: Mapped[dict] = mapped_column(
        JsonType, info=column_info("-", "the sweep specification as given, or the import options")
    )
    external: Mapped[bool] = mapped_column(
        Boolean,
        default=False,
        info=column_info("-", "true for runs imported from elsewhere (published results)"),
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utc_now, info=column_info("UTC", "time the sweep was first stored")
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utc_now,
        onupdate=utc_now,
        info=column_info("UTC", "time the sweep was last stored"),
    )


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{status}'" for status in RUN_STATUSES) + ")",
            name="ck_runs_status",
        ),
    )

    id: Mapped[str] = mapped_column(
        String(64), primary_key=True, info=column_info("-", "run id: a hash of the resolved config")
    )
    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"),
        index=True,
        info=column_info("-", "sweeps.id of the sweep the run belongs to"),
    )
    config: Mapped[dict | None] = mapped_column(
        JsonType, info=column_info("-", "resolved training config (model and optimizer) as JSON")
    )

    d_model: Mapped[int | None] = mapped_column(Integer, info=column_info("-", "model width"))
    n_layers: Mapped[int | None] = mapped_column(Integer, info=column_info("-", "transformer blocks"))
    n_heads: Mapped[int | None] = mapped_column(Integer, info=column_info("-", "query heads"))
    n_kv_heads: Mapped[int | None] = mapped_column(
        Integer, info=column_info("-", "key/value heads (grouped-query attention)")
    )
    d_ff: Mapped[int | None] = mapped_column(Integer, info=column_info("-", "SwiGLU hidden width"))
    vocab_size: Mapped[int | None] = mapped_column(Integer, info=column_info("tokens", "vocabulary size"))
    seq_len: Mapped[int | None] = mapped_column(Integer, info=column_info("tokens", "sequence length"))

    num_params: Mapped[float | None] = mapped_column(
        Double,
        info=column_info("parameters", "N: all unique parameters, embedding and output head included"),
    )
    num_non_embedding_params: Mapped[float | None] = mapped_column(
        Double, info=column_info("parameters", "N without the token embedding and the output head")
    )
    flops_per_token: Mapped[float | None] = mapped_column(
        Double, info=column_info("FLOPs", "training FLOPs per token with attention (forward + backward)")
    )
    flops_per_token_6n: Mapped[float | None] = mapped_column(
        Double, info=column_info("FLOPs", "6 * num_params")
    )
    num_tokens: Mapped[float | None] = mapped_column(
        Double, info=column_info("tokens", "D: training tokens of the run")
    )
    compute_flops: Mapped[float | None] = mapped_column(
        Double, info=column_info("FLOPs", "C with attention: flops_per_token * num_tokens")
    )
    compute_flops_6nd: Mapped[float | None] = mapped_column(
        Double, info=column_info("FLOPs", "C as 6 * num_params * num_tokens")
    )
    budget_flops: Mapped[float | None] = mapped_column(
        Double,
        index=True,
        info=column_info("FLOPs", "FLOP budget of the sweep grid point (6ND equals it)"),
    )
    conventions: Mapped[dict | None] = mapped_column(
        JsonType,
        info=column_info("-", "how N, D and C were obtained, such as 'num_tokens derived as C / (6N)'"),
    )
    seed: Mapped[int | None] = mapped_column(Integer, info=column_info("-", "random seed"))

    status: Mapped[str] = mapped_column(
        String(16),
        default="pending",
        index=True,
        info=column_info("-", "one of " + ", ".join(RUN_STATUSES)),
    )
    attempts: Mapped[int] = mapped_column(
        Integer, default=0, info=column_info("-", "times the run was started")
    )
    retries: Mapped[int] = mapped_column(
        Integer, default=0, info=column_info("-", "retries used after failures or preemptions")
    )
    host: Mapped[str | None] = mapped_column(String(255), info=column_info("-", "host name that ran it"))
    node_id: Mapped[str | None] = mapped_column(String(255), info=column_info("-", "Ray node id"))
    heartbeat_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=column_info("UTC", "last heartbeat from the running task")
    )
    started_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=column_info("UTC", "start of the latest attempt")
    )
    ended_at: Mapped[datetime | None] = mapped_column(
        UTCDateTime, info=column_info("UTC", "end of the latest attempt")
    )
    wall_s: Mapped[float | None] = mapped_column(
        Double, info=column_info("s", "wall-clock time of training")
    )
    tokens_per_s: Mapped[float | None] = mapped_column(
        Double, info=column_info("tokens/s", "mean training throughput")
    )
    error: Mapped[str | None] = mapped_column(
        Text, info=column_info("-", "error text of a failed run")
    )
    diverged_at_step: Mapped[int | None] = mapped_column(
        Integer, info=column_info("steps", "optimizer step at which the loss diverged")
    )
    final_train_loss: Mapped[float | None] = mapped_column(
        Double, info=column_info("nats/token", "last training loss; +Infinity when non-finite")
    )
    final_train_loss_kind: Mapped[str | None] = kind_column("final_train_loss")
    final_val_loss: Mapped[float | None] = mapped_column(
        Double,
        index=True,
        info=column_info("nats/token", "last validation loss; +Infinity when non-finite"),
    )
    final_val_loss_kind: Mapped[str | None] = kind_column("final_val_loss")
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utc_now, info=column_info("UTC", "time the run was first stored")
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime,
        default=utc_now,
        onupdate=utc_now,
        info=column_info("UTC", "time the run row last changed"),
    )


class LossPoint(Base):
    __tablename__ = "loss_points"

    # The primary key (run_id, step) makes re-adding a point a no-op (ON CONFLICT DO NOTHING).
    run_id: Mapped[str] = mapped_column(
        ForeignKey("runs.id", ondelete="CASCADE"),
        primary_key=True,
        info=column_info("-", "runs.id"),
    )
    step: Mapped[int] = mapped_column(
        Integer, primary_key=True, info=column_info("steps", "optimizer steps completed")
    )
    tokens_seen: Mapped[int | None] = mapped_column(
        BigInteger, info=column_info("tokens", "training tokens consumed up to this step")
    )
    train_loss: Mapped[float | None] = mapped_column(
        Double, info=column_info("nats/token", "training loss; +Infinity when non-finite")
    )
    train_loss_kind: Mapped[str | None] = kind_column("train_loss")
    val_loss: Mapped[float | None] = mapped_column(
        Double,
        info=column_info("nats/token", "validation loss; NULL when not evaluated at this step"),
    )
    val_loss_kind: Mapped[str | None] = kind_column("val_loss")
    lr: Mapped[float | None] = mapped_column(Double, info=column_info("-", "learning rate"))
    grad_norm: Mapped[float | None] = mapped_column(
        Double, info=column_info("-", "global gradient L2 norm before clipping; +Infinity when non-finite")
    )
    grad_norm_kind: Mapped[str | None] = kind_column("grad_norm")
    tokens_per_s: Mapped[float | None] = mapped_column(
        Double, info=column_info("tokens/s", "training throughput at this step")
    )


class Fit(Base):
    __tablename__ = "fits"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, info=column_info("-", "fit id"))
    sweep_id: Mapped[int] = mapped_column(
        ForeignKey("sweeps.id", ondelete="CASCADE"),
        index=True,
        info=column_info("-", "sweeps.id of the fitted sweep"),
    )
    approach: Mapped[str] = mapped_column(
        String(64), info=column_info("-", "Chinchilla approach, such as 'approach2' or 'approach3'")
    )
    n_convention: Mapped[str] = mapped_column(
        String(64), info=column_info("-", "runs column used as N, such as num_params")
    )
    c_convention: Mapped[str] = mapped_column(
        String(64), info=column_info("-", "runs column used as C, such as compute_flops")
    )
    data_filter: Mapped[dict | None] = mapped_column(
        JsonType, info=column_info("-", "which runs went into the fit")
    )
    interval_level: Mapped[float | None] = mapped_column(
        Double, info=column_info("fraction", "confidence level of the intervals, such as 0.95")
    )
    convergence: Mapped[dict | None] = mapped_column(
        JsonType, info=column_info("-", "optimizer convergence details (iterations, final objective)")
    )
    details: Mapped[dict | None] = mapped_column(
        JsonType, info=column_info("-", "other fit outputs, such as per-budget minima")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utc_now, info=column_info("UTC", "time of the fit")
    )


class FitParameter(Base):
    __tablename__ = "fit_parameters"

    fit_id: Mapped[int] = mapped_column(
        ForeignKey("fits.id", ondelete="CASCADE"), primary_key=True, info=column_info("-", "fits.id")
    )
    name: Mapped[str] = mapped_column(
        String(64), primary_key=True, info=column_info("-", "parameter, such as E, A, B, alpha, beta")
    )
    value: Mapped[float | None] = mapped_column(
        Double, info=column_info("-", "fitted value at full double precision")
    )
    value_kind: Mapped[str | None] = kind_column("value")
    lower: Mapped[float | None] = mapped_column(
        Double, info=column_info("-", "lower end of the interval; NULL when none")
    )
    lower_kind: Mapped[str | None] = kind_column("lower")
    upper: Mapped[float | None] = mapped_column(
        Double, info=column_info("-", "upper end of the interval; NULL when none")
    )
    upper_kind: Mapped[str | None] = kind_column("upper")


class Prediction(Base):
    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, info=column_info("-", "prediction id"))
    fit_id: Mapped[int] = mapped_column(
        ForeignKey("fits.id", ondelete="CASCADE"), index=True, info=column_info("-", "fits.id")
    )
    target: Mapped[str] = mapped_column(
        String(200), info=column_info("-", "what was predicted, such as 'LLaMA-7B' or 'C=1e21'")
    )
    num_params: Mapped[float | None] = mapped_column(
        Double, info=column_info("parameters", "N of the prediction")
    )
    num_tokens: Mapped[float | None] = mapped_column(
        Double, info=column_info("tokens", "D of the prediction")
    )
    compute_flops: Mapped[float | None] = mapped_column(
        Double, info=column_info("FLOPs", "C of the prediction")
    )
    loss: Mapped[float | None] = mapped_column(
        Double, info=column_info("nats/token", "predicted loss; +Infinity when non-finite")
    )
    loss_kind: Mapped[str | None] = kind_column("loss")
    intervals: Mapped[dict | None] = mapped_column(
        JsonType, info=column_info("-", "{quantity: [low, high]} intervals, same units as the columns")
    )
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utc_now, info=column_info("UTC", "time of the prediction")
    )
