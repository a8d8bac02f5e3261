"""Import of published or external runs: tables (CSV, JSON Lines, Parquet) and Gadre et al. files.

Imported sweeps are marked external and their runs completed, so `Store.fit_inputs` and the
fitters treat them like our own. Where a source gives only some of N, D and C, the rest is
derived with Chinchilla's approximation C = 6ND, and the run's `conventions` column records
which values were given and which were derived.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store.floats import json_safe
from store.models import utc_now

if TYPE_CHECKING:
    import pandas as pd

    from store.store import Store

logger = logging.getLogger(__name__)

TABLE_FORMATS = ("csv", "jsonl", "parquet")
FORMATS = (*TABLE_FORMATS, "gadre2024")
FORMAT_BY_SUFFIX = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
# Column names tried, in order, when an option such as --params-col is not given.
DEFAULT_COLUMNS = {
    "params": ("num_params", "params", "N"),
    "tokens": ("num_tokens", "tokens", "D"),
    "flops": ("compute_flops", "compute_flops_6nd", "flops", "C"),
    "loss": ("final_loss", "final_val_loss", "val_loss", "loss"),
}
OPTION_OF_ROLE = {
    "params": "--params-col",
    "tokens": "--tokens-col",
    "flops": "--flops-col",
    "loss": "--loss-col",
}
# Run columns copied as they are when a table has a column of the same name.
PASSTHROUGH_COLUMNS = (
    "num_non_embedding_params", "budget_flops", "seed",
    "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "vocab_size", "seq_len",
)
INTEGER_COLUMNS = ("seed", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "vocab_size", "seq_len")

GADRE_DEFAULT_VAL_SET = "c4_val"
GADRE_MODEL_NAME = re.compile(r"d=(?P<d_model>\d+)_l=(?P<n_layers>\d+)_h=(?P<n_heads>\d+)")


@dataclass(frozen=True)
class ImportResult:
    """Summary of one import: the sweep, the run count, the format and the conventions."""

    sweep: str
    num_runs: int
    file_format: str
    conventions: dict[str, str]


def detect_format(path: Path, file_format: str | None) -> str:
    """Return the import format of `path`: the one given, a folder's, or its suffix's."""
    if file_format is not None:
        if file_format not in FORMATS:
            raise ValueError(f"invalid --format {file_format!r}: choose one of {', '.join(FORMATS)}")
        return file_format
    if path.is_dir():
        return "gadre2024"
    detected = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if detected is None:
        raise ValueError(
            f"cannot tell the format of {str(path)!r} from its suffix {path.suffix!r}: "
            f"pass --format ({', '.join(FORMATS)})"
        )
    return detected


def import_runs(
    store: Store,
    path: str | Path,
    sweep: str,
    *,
    file_format: str | None = None,
    params_col: str | None = None,
    tokens_col: str | None = None,
    flops_col: str | None = None,
    loss_col: str | None = None,
    gadre_dataset: str | None = None,
    gadre_val_set: str = GADRE_DEFAULT_VAL_SET,
) -> ImportResult:
    """Import runs from a table file or a folder of Gadre et al. run files into an external sweep.

    Re-importing the same rows into the same sweep updates them in place: run ids are hashes
    of the sweep name and the row.
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"import source {str(path)!r} not found: pass an existing file or folder")
    detected = detect_format(path, file_format)
    if detected == "gadre2024":
        runs, conventions, options = _gadre_runs(path, sweep, gadre_dataset, gadre_val_set)
    else:
        columns = {"params": params_col, "tokens": tokens_col, "flops": flops_col, "loss": loss_col}
        runs, conventions, options = _table_runs(path, detected, sweep, columns)
    if not runs:
        raise ValueError(f"import source {str(path)!r} contains no runs: nothing to import")
    spec = {
        "source": str(path.resolve()),
        "format": detected,
        "options": options,
        "conventions": conventions,
        "imported_at": utc_now().isoformat(),
    }
    store.upsert_sweep(sweep, spec, external=True)
    store.upsert_runs(runs)
    logger.info("imported %d runs from %s into sweep %r", len(runs), path, sweep)
    return ImportResult(sweep=sweep, num_runs=len(runs), file_format=detected, conventions=conventions)


def _run_id(sweep: str, record: dict[str, Any]) -> str:
    payload = json.dumps({"sweep": sweep, "record": json_safe(record)}, sort_keys=True)
    return "ext-" + hashlib.sha256(payload.encode()).hexdigest()[:20]


# ---------------------------------------------------------------- tables


def read_table(path: Path, file_format: str) -> pd.DataFrame:
    """Read a CSV, JSON Lines or Parquet file into a DataFrame."""
    import pandas as pd

    try:
        if file_format == "csv":
            return pd.read_csv(path)
        if file_format == "jsonl":
            return pd.read_json(path, lines=True)
        return pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {str(path)!r} as {file_format}: {error}") from error


def _resolve_column(frame: pd.DataFrame, role: str, requested: str | None) -> str | None:
    available = ", ".join(map(str, frame.columns))
    if requested is not None:
        if requested not in frame.columns:
            raise ValueError(
                f"column {requested!r} ({OPTION_OF_ROLE[role]}) not found; available columns: {available}"
            )
        return requested
    for candidate in DEFAULT_COLUMNS[role]:
        if candidate in frame.columns:
            return candidate
    return None


def _table_runs(
    path: Path, file_format: str, sweep: str, requested: dict[str, str | None]
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any]]:
    frame = read_table(path, file_format)
    available = ", ".join(map(str, frame.columns)) or "none"
    columns = {role: _resolve_column(frame, role, name) for role, name in requested.items()}
    missing = [
        f"{OPTION_OF_ROLE[role]} (tried {', '.join(DEFAULT_COLUMNS[role])})"
        for role in ("params", "loss")
        if columns[role] is None
    ]
    if columns["tokens"] is None and columns["flops"] is None:
        missing.append(
            f"{OPTION_OF_ROLE['tokens']} or {OPTION_OF_ROLE['flops']} "
            f"(tried {', '.join(DEFAULT_COLUMNS['tokens'] + DEFAULT_COLUMNS['flops'])})"
        )
    if missing:
        raise ValueError(
            f"{str(path)!r}: missing column(s) for {'; '.join(missing)}; "
            f"available columns: {available}. Name them with the options above"
        )

    params_col, tokens_col, flops_col, loss_col = (
        columns["params"], columns["tokens"], columns["flops"], columns["loss"]
    )
    conventions = {"num_params": f"from column {params_col!r}"}
    if tokens_col is not None:
        conventions["num_tokens"] = f"from column {tokens_col!r}"
    else:
        conventions["num_tokens"] = f"derived as C / (6N) from columns {flops_col!r} and {params_col!r}"
    if flops_col is not None:
        conventions["compute_flops"] = f"from column {flops_col!r}, in the source's own convention"
    else:
        conventions["compute_flops"] = "6 N D (no attention term): the source gives no C"
    conventions["final_val_loss"] = f"from column {loss_col!r}"

    runs = []
    records = frame.to_dict(orient="records")
    for index, record in enumerate(records):
        where = f"{str(path)!r} row {index + 1}"
        num_params = _positive(record[params_col], params_col, where)
        if tokens_col is not None:
            num_tokens = _positive(record[tokens_col], tokens_col, where)
        else:
            num_tokens = _positive(record[flops_col], flops_col, where) / (6.0 * num_params)
        compute_flops_6nd = 6.0 * num_params * num_tokens
        compute_flops = (
            _positive(record[flops_col], flops_col, where) if flops_col is not None else compute_flops_6nd
        )
        loss = _float(record[loss_col], loss_col, where)
        run: dict[str, Any] = {
            "id": _run_id(sweep, record),
            "sweep": sweep,
            "config": record,
            "num_params": num_params,
            "num_tokens": num_tokens,
            "compute_flops": compute_flops,
            "compute_flops_6nd": compute_flops_6nd,
            "budget_flops": compute_flops_6nd,
            "final_val_loss": loss,
            "status": "completed" if loss is not None and math.isfinite(loss) else "diverged",
            "conventions": conventions,
        }
        for name in PASSTHROUGH_COLUMNS:
            if name in record and name not in (params_col, tokens_col, flops_col, loss_col):
                value = record[name]
                if value is None or (isinstance(value, float) and math.isnan(value)):
                    continue
                run[name] = int(value) if name in INTEGER_COLUMNS else float(value)
        runs.append(run)
    options = {"columns": {"params": params_col, "tokens": tokens_col, "flops": flops_col, "loss": loss_col}}
    return runs, conventions, options


def _float(value: Any, column: str, where: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{where}: column {column!r} contains {value!r}, which is not a number") from error
    return number


def _positive(value: Any, column: str, where: str) -> float:
    number = _float(value, column, where)
    if number is None or not math.isfinite(number) or number <= 0:
        raise ValueError(
            f"{where}: column {column!r} contains {value!r}; expected a positive finite number"
        )
    return number


# ---------------------------------------------------------------- Gadre et al. 2024


def gadre_val_set_name(result: dict[str, Any]) -> str:
    """Name a validation set of a Gadre et al. result by the folder of its first shard.

    `training/eval_data/c4_val/shard-{0000000..0000010}.tar` is `c4_val`, and
    `training/eval_data/val_tok_mult/paloma_c4_en/00000001.tar` is `paloma_c4_en`.
    """
    val_data = result.get("val_data")
    first = val_data[0] if isinstance(val_data, list) and val_data else val_data
    return Path(str(first)).parent.name


def _gadre_runs(
    folder: Path, sweep: str, dataset: str | None, val_set: str
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any]]:
    files = sorted(folder.glob("*.json"))
    if not files:
        raise ValueError(f"folder {str(folder)!r} contains no .json run files of Gadre et al.")
    documents = []
    for file in files:
        try:
            document = json.loads(file.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{str(file)!r} is not valid JSON: {error}") from error
        if "hyperparameters" not in document or "results" not in document:
            raise ValueError(
                f"{str(file)!r} is not a Gadre et al. run file: it lacks 'hyperparameters' or 'results'"
            )
        documents.append((file, document))

    datasets = sorted({document.get("dataset_name", "") for _, document in documents})
    if dataset is None:
        if len(datasets) > 1:
            raise ValueError(
                f"folder {str(folder)!r} mixes training corpora {', '.join(datasets)}: choose one "
                "with --gadre-dataset, because losses on different corpora do not share a scaling law"
            )
        dataset = datasets[0]
    elif dataset not in datasets:
        raise ValueError(
            f"--gadre-dataset {dataset!r} not found in {str(folder)!r}; available: {', '.join(datasets)}"
        )

    conventions = {
        "num_params": "hyperparameters.params: all parameters, embeddings included",
        "num_non_embedding_params": "hyperparameters.params_no_embed",
        "num_tokens": "hyperparameters.tokens",
        "compute_flops": "6 N D, the convention of Gadre et al.",
        "final_val_loss": f"mean loss on validation set {val_set!r} (nats per token)",
    }
    runs = []
    for file, document in documents:
        if document.get("dataset_name") != dataset:
            continue
        hyperparameters = document["hyperparameters"]
        results = {gadre_val_set_name(result): result for result in document["results"]}
        if val_set not in results:
            raise ValueError(
                f"{str(file)!r} has no loss on validation set {val_set!r} (--gadre-val-set); "
                f"available: {', '.join(sorted(results))}"
            )
        num_params = float(hyperparameters["params"])
        num_tokens = float(hyperparameters["tokens"])
        compute_flops = 6.0 * num_params * num_tokens
        run: dict[str, Any] = {
            "id": _run_id(sweep, {"name": document.get("name"), "val_set": val_set}),
            "sweep": sweep,
            "config": {
                "name": document.get("name"),
                "dataset_name": dataset,
                "val_set": val_set,
                "hyperparameters": hyperparameters,
                "source_file": file.name,
            },
            "num_params": num_params,
            "num_non_embedding_params": float(hyperparameters["params_no_embed"])
            if hyperparameters.get("params_no_embed") is not None
            else None,
            "num_tokens": num_tokens,
            "compute_flops": compute_flops,
            "compute_flops_6nd": compute_flops,
            "budget_flops": compute_flops,
            "final_val_loss": float(results[val_set]["loss"]),
            "status": "completed",
            "conventions": conventions,
            "seed": _gadre_seed(document.get("open_lm_args") or []),
        }
        shape = GADRE_MODEL_NAME.search(str(hyperparameters.get("model", "")))
        if shape:
            run.update({key: int(value) for key, value in shape.groupdict().items()})
        runs.append(run)
    options = {"dataset": dataset, "val_set": val_set}
    return runs, conventions, options


def _gadre_seed(arguments: list[str]) -> int | None:
    for flag, value in zip(arguments, arguments[1:]):
        if flag == "--seed":
            return int(value)
    return None
