"""N and C conventions of a fit, the checks on its input frame, and the LLaMA targets.

`FIT_INPUT_COLUMNS` repeats the layout of `store.Store.fit_inputs` on purpose: only `fitting.io`
imports the store, so the math modules stay usable on any DataFrame of that layout.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

NConvention = Literal["total", "non_embedding"]
CConvention = Literal["with_attention", "6nd"]

N_COLUMNS: dict[str, str] = {"total": "num_params", "non_embedding": "num_non_embedding_params"}
C_COLUMNS: dict[str, str] = {"with_attention": "compute_flops", "6nd": "compute_flops_6nd"}

# One row per completed run, as `Store.fit_inputs` returns it.
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


@dataclass(frozen=True, kw_only=True)
class FitData:
    """The columns one fit reads, as float64 arrays in the order of the input frame."""

    run_id: np.ndarray
    budget_flops: np.ndarray
    num_params: np.ndarray
    """N in the fit's convention."""
    num_tokens: np.ndarray
    compute_flops: np.ndarray
    """C in the fit's convention."""
    loss: np.ndarray
    n_convention: str
    c_convention: str

    @property
    def num_runs(self) -> int:
        return int(self.loss.size)

    def subset(self, mask: np.ndarray) -> FitData:
        return FitData(
            run_id=self.run_id[mask],
            budget_flops=self.budget_flops[mask],
            num_params=self.num_params[mask],
            num_tokens=self.num_tokens[mask],
            compute_flops=self.compute_flops[mask],
            loss=self.loss[mask],
            n_convention=self.n_convention,
            c_convention=self.c_convention,
        )


def flops_per_param_token(data: FitData) -> float:
    """k in C = k * N * D for the fit's conventions: the median over runs of C / (N D).

    Exactly 6 for the 6nd convention with total N; larger with attention FLOPs or non-embedding N.
    """
    return float(np.median(data.compute_flops / (data.num_params * data.num_tokens)))


def data_summary(data: FitData) -> dict:
    """Describe the fitted data as the fields every fit result stores: conventions, run count and ranges."""
    return {
        "n_convention": data.n_convention,
        "c_convention": data.c_convention,
        "num_runs": data.num_runs,
        "num_params_range": (float(data.num_params.min()), float(data.num_params.max())),
        "compute_flops_range": (float(data.compute_flops.min()), float(data.compute_flops.max())),
        "flops_per_param_token": flops_per_param_token(data),
    }


def check_conventions(n_convention: str, c_convention: str) -> None:
    """Raise ValueError when either convention name is unknown."""
    if n_convention not in N_COLUMNS:
        raise ValueError(
            f"unknown N convention {n_convention!r}: use one of {', '.join(N_COLUMNS)}"
        )
    if c_convention not in C_COLUMNS:
        raise ValueError(
            f"unknown C convention {c_convention!r}: use one of {', '.join(C_COLUMNS)}"
        )


def prepare_fit_data(frame: pd.DataFrame, n_convention: str, c_convention: str) -> FitData:
    """Check a `fit_inputs` frame and pick the N and C columns of the chosen conventions.

    Raises ValueError naming the column or the runs when a column is missing or a value is not a
    finite positive number, because such a row would silently drop out of the log-space fits.
    """
    check_conventions(n_convention, c_convention)
    n_column = N_COLUMNS[n_convention]
    c_column = C_COLUMNS[c_convention]
    needed = ("run_id", "budget_flops", n_column, "num_tokens", c_column, "final_loss")
    missing = [column for column in needed if column not in frame.columns]
    if missing:
        raise ValueError(
            f"fit input is missing the columns {missing}: pass a frame in the layout of "
            f"Store.fit_inputs ({', '.join(FIT_INPUT_COLUMNS)})"
        )
    if len(frame) == 0:
        raise ValueError("fit input has no runs: the sweep needs completed runs with a final loss")

    values = {}
    for column in needed[1:]:
        array = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(array) & (array > 0))
        if bad.any():
            bad_runs = frame["run_id"].to_numpy()[bad][:5].tolist()
            raise ValueError(
                f"column {column} has {int(bad.sum())} values that are not finite positive numbers "
                f"(runs {bad_runs}): drop those runs or fill in the column before fitting"
            )
        values[column] = array
    run_ids = frame["run_id"].astype(str).to_numpy()
    if len(set(run_ids)) != len(run_ids):
        raise ValueError(
            "fit input lists a run_id more than once: pass one row per run (its final loss), "
            "never one row per checkpoint"
        )
    return FitData(
        run_id=run_ids,
        budget_flops=values["budget_flops"],
        num_params=values[n_column],
        num_tokens=values["num_tokens"],
        compute_flops=values[c_column],
        loss=values["final_loss"],
        n_convention=n_convention,
        c_convention=c_convention,
    )


@dataclass(frozen=True, kw_only=True)
class Target:
    """A model whose compute-optimal allocation we predict."""

    name: str
    num_params: float
    num_non_embedding_params: float
    actual_tokens: float
    """Tokens the published model was trained on."""

    def params_in(self, n_convention: str) -> float:
        return self.num_params if n_convention == "total" else self.num_non_embedding_params


def _llama(name: str, num_params: int, d_model: int, actual_tokens: float) -> Target:
    # LLaMA (Touvron et al. 2023): vocabulary of 32,000 tokens, untied input embedding and output
    # head of d_model x 32,000 each; num_params as the released checkpoints count them.
    embedding_params = 2 * 32_000 * d_model
    return Target(
        name=name,
        num_params=float(num_params),
        num_non_embedding_params=float(num_params - embedding_params),
        actual_tokens=actual_tokens,
    )


LLAMA_TARGETS: tuple[Target, ...] = (
    _llama("LLaMA-7B", 6_738_415_616, 4096, 1.0e12),
    _llama("LLaMA-13B", 13_015_864_320, 5120, 1.0e12),
    _llama("LLaMA-33B", 32_528_943_616, 6656, 1.4e12),
    _llama("LLaMA-65B", 65_285_660_672, 8192, 1.4e12),
)
