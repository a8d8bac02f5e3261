"""Fit results in the shape the figures draw, built from the `fitting` package.

The figures never call `fitting` themselves: this module runs the fits on a sweep's
`fit_inputs` table and turns each approach's result into the plain dataclasses below,
so that the report and the app draw the same thing and a refused fit becomes a message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

APPROACH_LABELS = {
    "approach1": "Approach 1 (training-curve envelope)",
    "approach2": "Approach 2 (IsoFLOP parabolas)",
    "approach3": "Approach 3 (parametric L(N, D))",
}

# N convention of a fit (the names `fitting` uses) -> label, and -> fit_inputs column.
N_CONVENTIONS = {
    "total": "N: all parameters",
    "non_embedding": "N: non-embedding parameters",
}
N_CONVENTION_COLUMNS = {"total": "num_params", "non_embedding": "num_non_embedding_params"}


@dataclass(frozen=True)
class Parabola:
    """One budget's parabola of loss in log10 N, with its minimum or the reason it was refused."""

    budget_flops: float
    coefficients: tuple[float, float, float]
    """(c2, c1, c0) of loss = c2·x² + c1·x + c0 with x = log10(N)."""
    log10_n_range: tuple[float, float]
    n_opt: float | None
    n_opt_interval: tuple[float, float] | None
    loss_at_opt: float | None
    rejected_reason: str | None = None


@dataclass(frozen=True)
class PowerLaw:
    """X_opt(C) = coefficient · C^exponent, with a bootstrap band over a grid of C."""

    coefficient: float
    exponent: float
    exponent_interval: tuple[float, float] | None = None
    band_compute_flops: np.ndarray | None = None
    band_lower: np.ndarray | None = None
    band_upper: np.ndarray | None = None

    def __call__(self, compute_flops: np.ndarray) -> np.ndarray:
        return self.coefficient * np.asarray(compute_flops, dtype=float) ** self.exponent


@dataclass
class ApproachResult:
    """One approach's fit on one sweep, or the reason it could not be fitted."""

    approach: str
    error: str | None = None
    n_opt: PowerLaw | None = None
    d_opt: PowerLaw | None = None
    optima: pd.DataFrame | None = None
    """Per-FLOP-level optima: compute_flops, n_opt, d_opt (Approaches 1 and 2)."""
    parabolas: list[Parabola] = field(default_factory=list)
    params: dict[str, float] = field(default_factory=dict)
    """E, A, B, alpha, beta for Approach 3."""
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    predictions: pd.DataFrame | None = None
    """target, num_params, num_tokens, compute_flops, loss, their intervals, llama_num_tokens."""
    rejections: dict[float, str] = field(default_factory=dict)
    """Approach 2: budget_flops -> why fitting left that budget's parabola out."""
    flags: list[str] = field(default_factory=list)
    """Warnings of the fit that the data may not support it."""

    @property
    def label(self) -> str:
        return APPROACH_LABELS.get(self.approach, self.approach)


@dataclass
class SweepAnalysis:
    """Everything the fit views draw for one sweep under one N convention."""

    sweep: str
    n_column: str
    """The fit_inputs column used as N: num_params or num_non_embedding_params."""
    fit_inputs: pd.DataFrame
    approaches: dict[str, ApproachResult]
    message: str | None = None
    """Reason no fit could be attempted at all, such as a sweep with no completed runs."""


def empty_analysis(sweep: str, n_convention: str, message: str) -> SweepAnalysis:
    """Build an analysis with no fits and the message every fit view shows instead."""
    approaches = {name: ApproachResult(name, error=message) for name in APPROACH_LABELS}
    n_column = N_CONVENTION_COLUMNS.get(n_convention, "num_params")
    return SweepAnalysis(sweep, n_column, pd.DataFrame(), approaches, message)
