"""Typed results of the three approaches, their bootstrap, and predictions.

Every number is kept at full float64 precision: rounding an exponent before predicting moves a
65B-scale allocation by tens of percent.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True, kw_only=True)
class Flag:
    """Something the data cannot support, found while fitting."""

    code: str
    """Short machine-readable kind, such as `edge_minimum` or `not_converged`."""
    message: str


@dataclass(frozen=True, kw_only=True)
class BudgetRejection:
    """A FLOP budget that Approach 2 left out of its power laws, with the reason."""

    budget_flops: float
    variable: str
    """`num_params` or `num_tokens`: the parabola that failed."""
    reason: str


@dataclass(frozen=True, kw_only=True)
class PowerLawFit:
    """Approach 1 or 2: N_opt = exp(log_k_n) * C^a and D_opt = exp(log_k_d) * C^b."""

    approach: int
    a: float
    b: float
    log_k_n: float
    log_k_d: float
    points: pd.DataFrame
    """One row per FLOP level used: compute_flops, n_opt, d_opt, loss_opt."""
    n_convention: str
    c_convention: str
    num_runs: int
    num_params_range: tuple[float, float]
    compute_flops_range: tuple[float, float]
    rejected: tuple[BudgetRejection, ...] = ()
    flags: tuple[Flag, ...] = ()
    flops_per_param_token: float = 6.0
    """k in C = k * N * D over the fitted runs; converts LLaMA's actual tokens to compute."""

    # Bootstrap draws with exponents near 0 send these to 0 or infinity. Such draws are expected,
    # counted by the bootstrap flags, and must not print a numpy warning for each of them.
    def n_opt(self, compute_flops: np.ndarray | float) -> np.ndarray:
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            return np.exp(self.log_k_n + self.a * np.log(compute_flops))

    def d_opt(self, compute_flops: np.ndarray | float) -> np.ndarray:
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            return np.exp(self.log_k_d + self.b * np.log(compute_flops))

    def compute_for_num_params(self, num_params: np.ndarray | float) -> np.ndarray:
        """Invert N_opt(C): the budget at which num_params is compute-optimal."""
        with np.errstate(divide="ignore", over="ignore", under="ignore"):
            return np.exp((np.log(num_params) - self.log_k_n) / self.a)

    def loss(self, num_params, num_tokens) -> None:
        """Approaches 1 and 2 model no loss surface, so they predict no loss."""
        return None

    def params(self) -> dict[str, float]:
        return {"a": self.a, "b": self.b, "log_k_n": self.log_k_n, "log_k_d": self.log_k_d}


@dataclass(frozen=True, kw_only=True)
class ParametricFit:
    """Approach 3: L(N, D) = E + A / N^alpha + B / D^beta, fitted with a Huber loss on log losses."""

    log_E: float
    log_A: float
    log_B: float
    alpha: float
    beta: float
    objective: float
    """Summed Huber loss at the optimum."""
    grad_norm: float
    """Euclidean norm of the objective's gradient at the optimum, in (log_A, log_B, log_E, alpha, beta)."""
    converged: bool
    num_starts: int
    num_starts_at_best: int
    """Starts whose local optimum is within 1e-9 (relative) of the best objective."""
    flops_per_param_token: float
    """k in C = k * N * D, used by the closed form; exactly 6 for the 6nd convention with total N."""
    n_convention: str
    c_convention: str
    num_runs: int
    num_params_range: tuple[float, float]
    num_tokens_range: tuple[float, float]
    compute_flops_range: tuple[float, float]
    flags: tuple[Flag, ...] = ()
    method: str = ""
    approach: int = 3

    @property
    def E(self) -> float:
        return math.exp(self.log_E)

    @property
    def A(self) -> float:
        return math.exp(self.log_A)

    @property
    def B(self) -> float:
        return math.exp(self.log_B)

    @property
    def a(self) -> float:
        """Exponent of N_opt in C: beta / (alpha + beta)."""
        return self.beta / (self.alpha + self.beta)

    @property
    def b(self) -> float:
        """Exponent of D_opt in C: alpha / (alpha + beta)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def log_G(self) -> float:
        """log of G = (alpha A / (beta B))^(1 / (alpha + beta)) (Hoffmann et al. 2022, equation 4)."""
        return (
            math.log(self.alpha) + self.log_A - math.log(self.beta) - self.log_B
        ) / (self.alpha + self.beta)

    def n_opt(self, compute_flops):
        scaled = np.log(compute_flops) - math.log(self.flops_per_param_token)
        return np.exp(self.log_G + self.a * scaled)

    def d_opt(self, compute_flops):
        scaled = np.log(compute_flops) - math.log(self.flops_per_param_token)
        return np.exp(self.b * scaled - self.log_G)

    def compute_for_num_params(self, num_params):
        """Invert N_opt(C): C = k * (N / G)^((alpha + beta) / beta)."""
        return self.flops_per_param_token * np.exp((np.log(num_params) - self.log_G) / self.a)

    def loss(self, num_params, num_tokens):
        return (
            self.E
            + np.exp(self.log_A - self.alpha * np.log(num_params))
            + np.exp(self.log_B - self.beta * np.log(num_tokens))
        )

    def params(self) -> dict[str, float]:
        return {
            "E": self.E,
            "A": self.A,
            "B": self.B,
            "alpha": self.alpha,
            "beta": self.beta,
            "log_E": self.log_E,
            "log_A": self.log_A,
            "log_B": self.log_B,
            "a": self.a,
            "b": self.b,
            "log_G": self.log_G,
        }


@dataclass(frozen=True, kw_only=True)
class BootstrapResult:
    """Percentile intervals from refitting on runs resampled with replacement."""

    level: float
    """Central coverage of each interval, such as 0.8 for the 10th to 90th percentile."""
    num_resamples: int
    num_failed: int
    """Resamples on which the approach rejected the data (too few budgets left, and the like)."""
    samples: dict[str, np.ndarray] = field(repr=False)
    """One array of resampled values per parameter name, failed resamples left out."""

    def interval(self, name: str) -> tuple[float, float]:
        values = self.samples[name]
        values = values[np.isfinite(values)]
        if values.size == 0:
            return (math.nan, math.nan)
        tail = 50.0 * (1.0 - self.level)
        low, high = np.percentile(values, [tail, 100.0 - tail])
        return (float(low), float(high))

    def intervals(self) -> dict[str, tuple[float, float]]:
        return {name: self.interval(name) for name in self.samples}


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """A compute-optimal allocation for one budget or one target model."""

    target: str
    num_params: float
    num_tokens: float
    compute_flops: float
    loss: float | None
    intervals: dict[str, tuple[float, float]]
    actual_tokens: float | None = None
    """LLaMA's training tokens, for the LLaMA targets."""
    loss_at_actual_tokens: float | None = None
    extrapolation_factor: float = 1.0
    """num_params over the largest N in the fit (or C over the largest C for budget targets)."""

    def to_dict(self) -> dict:
        row = asdict(self)
        row["intervals"] = {name: list(bounds) for name, bounds in self.intervals.items()}
        return row


@dataclass(frozen=True, kw_only=True)
class FitReport:
    """One approach's fit with its bootstrap, flags and the conventions it used."""

    fit: PowerLawFit | ParametricFit
    bootstrap: BootstrapResult | None
    flags: tuple[Flag, ...]
    seed: int

    @property
    def approach(self) -> int:
        return self.fit.approach

    def intervals(self) -> dict[str, tuple[float, float]]:
        return self.bootstrap.intervals() if self.bootstrap is not None else {}
