"""Encoding of floats that may be NaN or infinite, such as the loss of a diverged run.

SQLite turns a bound NaN into NULL, and NULL sorts before every number in SQLite, so a
diverged run would come first in `ORDER BY final_val_loss`. PostgreSQL keeps NaN but sorts
it after +infinity, and averages it silently into NaN. Neither is safe for a query that
picks the best run, so every column that can hold a non-finite loss has a companion
`<column>_kind` column:

| value in Python | numeric column | `<column>_kind` |
|---|---|---|
| None (not measured) | NULL | NULL |
| finite x | x | `finite` |
| NaN | +Infinity | `nan` |
| +inf | +Infinity | `inf` |
| -inf | +Infinity | `-inf` |

A non-finite value is stored as +Infinity in both engines, so it sorts after every finite
loss, `MIN()` skips it while a finite loss exists, and `AVG()` over it is infinite instead of
a plausible number. The kind column keeps the original value, and the Python API decodes the
pair back to NaN, inf or -inf.
"""

from __future__ import annotations

import math
from typing import Any

FINITE = "finite"
NAN = "nan"
POS_INF = "inf"
NEG_INF = "-inf"
FLOAT_KINDS = (FINITE, NAN, POS_INF, NEG_INF)

# The value every non-finite float takes in its numeric column: it sorts as the worst loss.
NON_FINITE_SORT_VALUE = math.inf


def encode_float(value: Any) -> tuple[float | None, str | None]:
    """Split a float into its stored (numeric column, kind column) pair."""
    if value is None:
        return None, None
    number = float(value)
    if math.isfinite(number):
        return number, FINITE
    if math.isnan(number):
        return NON_FINITE_SORT_VALUE, NAN
    return NON_FINITE_SORT_VALUE, POS_INF if number > 0 else NEG_INF


def decode_float(value: float | None, kind: str | None) -> float | None:
    """Rebuild the Python float from its stored (numeric column, kind column) pair."""
    if kind is None:
        return None
    if kind == FINITE:
        return float(value)
    if kind == NAN:
        return math.nan
    if kind == POS_INF:
        return math.inf
    if kind == NEG_INF:
        return -math.inf
    raise ValueError(f"unknown float kind {kind!r}; expected one of {FLOAT_KINDS}")


def decode_float_column(values: Any, kinds: Any) -> Any:
    """Rebuild a float64 array from a numeric column and its kind column, vectorised.

    A row whose kind is None (no value) becomes NaN, as `decode_float`'s None does in a float column.
    """
    import numpy as np
    import pandas as pd

    kinds = pd.Series(kinds, dtype=object).reset_index(drop=True)
    present = kinds.notna().to_numpy()
    unknown = set(kinds[present]) - set(FLOAT_KINDS)
    if unknown:
        raise ValueError(f"unknown float kind {sorted(map(str, unknown))[0]!r}; expected one of {FLOAT_KINDS}")
    kinds = kinds.to_numpy()
    finite = present & (kinds == FINITE)
    decoded = np.full(kinds.shape, np.nan)
    decoded[finite] = pd.Series(values, dtype=object).to_numpy()[finite].astype(np.float64)
    decoded[present & (kinds == POS_INF)] = np.inf
    decoded[present & (kinds == NEG_INF)] = -np.inf
    return decoded


def finite_or_none(value: Any) -> float | None:
    """Return a finite float, or None for a missing or non-finite one.

    Columns without a kind column (learning rate, tokens/s, FLOP counts) store NULL for a
    non-finite value, the same in both engines.
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def json_safe(value: Any) -> Any:
    """Convert a JSON-like value so that PostgreSQL's JSON types and SQLite both accept it.

    Non-finite floats become the strings "NaN", "Infinity" and "-Infinity" (JSON has no such
    numbers), numpy scalars and arrays become Python numbers and lists, tuples become lists.
    """
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    # numpy scalars and arrays, without importing numpy here
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if hasattr(value, "item"):
        return json_safe(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def json_float(value: Any) -> Any:
    """Read back a float written by `json_safe`, leaving other values alone."""
    if value == "NaN":
        return math.nan
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    return value
