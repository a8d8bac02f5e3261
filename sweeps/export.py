"""Export a stored run's latest checkpoint as a Hugging Face `LlamaForCausalLM` folder."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def export_run(store: Any, run_id: str, out_dir: str | Path) -> Path:
    """Load run `run_id`'s config and checkpoint location from the store and write the HF folder.

    The tokenizer comes from the run's corpus when that folder is still there; otherwise only the
    weights and config are written, with a warning.
    """
    from model.config import ModelConfig
    from model.export import export_hf

    runs = store.runs()
    runs = runs[runs["id"] == run_id]
    if runs.empty:
        raise ValueError(f"run {run_id!r} not found in {store!r}; list run ids with `scalelab sql \"SELECT id, status FROM runs\"`")
    row = runs.iloc[0]
    config = _json(row["config"])
    conventions = _json(row["conventions"]) or {}
    checkpoint_url = conventions.get("checkpoint_url")
    if not checkpoint_url:
        raise ValueError(f"run {run_id!r} has no checkpoint location in the store: only runs planned by `scalelab sweep` can be exported")
    if not config or "model" not in config:
        raise ValueError(f"run {run_id!r} has no model config in the store, so its weights cannot be interpreted")
    model_config = ModelConfig.from_dict(config["model"])

    tokenizer_path = None
    data = conventions.get("data")
    if data:
        candidate = Path(data).expanduser()
        try:
            from model.corpus import Corpus

            tokenizer_path = Corpus.open(candidate).info.tokenizer_model_path
        except (FileNotFoundError, ValueError, OSError) as error:
            logger.warning("corpus %s of run %s is not readable (%s); exporting weights without a tokenizer", data, run_id, error)
    if row["status"] != "completed":
        logger.warning("run %s is %s, not completed: exporting its latest checkpoint", run_id, row["status"])
    return export_hf(checkpoint_url, model_config, tokenizer_path, out_dir)


def _json(value: Any) -> Any:
    import json

    if isinstance(value, str):
        return json.loads(value)
    return value
