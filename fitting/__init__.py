"""Chinchilla's three approaches to compute-optimal scaling, with run-level bootstrap intervals.

Functions take frames in the `Store.fit_inputs` layout; only `fitting.io` touches the store.
"""

from fitting.api import fit, holdout_largest, predict_budgets, predict_targets
from fitting.conventions import LLAMA_TARGETS, prepare_fit_data
from fitting.results import BootstrapResult, FitReport, Flag, ParametricFit, PowerLawFit, Prediction

__all__ = [
    "LLAMA_TARGETS",
    "BootstrapResult",
    "FitReport",
    "Flag",
    "ParametricFit",
    "PowerLawFit",
    "Prediction",
    "fit",
    "holdout_largest",
    "predict_budgets",
    "predict_targets",
    "prepare_fit_data",
]
