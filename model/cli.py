"""`scalelab model info`: parameter and FLOP counts of a preset, a target N or an explicit shape."""

from __future__ import annotations

import json
from typing import Any

import typer

from model.config import ModelConfig
from model.sizes import LLAMA_SEQ_LEN, LLAMA_VOCAB_SIZE, PRESETS, resolve_size

model_app = typer.Typer(help="Inspect model shapes and their accounting.", no_args_is_help=True)


def describe(config: ModelConfig) -> dict[str, Any]:
    """Return the counts and the shape of a config, in the layout `model info --json` prints."""
    return {
        "num_params": config.num_params,
        "num_non_embedding_params": config.num_non_embedding_params,
        "flops_per_token": config.flops_per_token,
        "flops_per_token_6n": config.flops_per_token_6n,
        "shape": config.to_dict(),
    }


@model_app.command("info")
def info(
    size: str = typer.Argument(
        None,
        help=f"A preset ({', '.join(PRESETS)}) or a parameter count such as 20M; "
        "omit it to give the whole shape by options.",
    ),
    d_model: int = typer.Option(None, help="Residual width; overrides the size's."),
    n_layers: int = typer.Option(None, help="Number of transformer blocks; overrides the size's."),
    n_heads: int = typer.Option(None, help="Number of query heads; overrides the size's."),
    n_kv_heads: int = typer.Option(None, help="Number of key/value heads (grouped-query attention)."),
    d_ff: int = typer.Option(None, help="SwiGLU hidden width (default: 2/3·4·d_model rounded up to 256)."),
    vocab_size: int = typer.Option(None, help=f"Vocabulary size (default: the preset's, else {LLAMA_VOCAB_SIZE})."),
    seq_len: int = typer.Option(None, help=f"Context length in tokens (default: the preset's, else {LLAMA_SEQ_LEN})."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Print N, non-embedding N and training FLOPs per token of a model shape."""
    shape_options = {
        "d_model": d_model,
        "n_layers": n_layers,
        "n_heads": n_heads,
        "n_kv_heads": n_kv_heads,
        "d_ff": d_ff,
    }
    given = {key: value for key, value in shape_options.items() if value is not None}
    if size is None:
        missing = [key for key in ("d_model", "n_layers", "n_heads") if key not in given]
        if missing:
            raise ValueError(
                f"no SIZE and no {', '.join('--' + key.replace('_', '-') for key in missing)}: "
                "give a preset or count as SIZE, or the shape by options."
            )
        config = ModelConfig(
            vocab_size=vocab_size or LLAMA_VOCAB_SIZE, seq_len=seq_len or LLAMA_SEQ_LEN, **given
        )
    else:
        if size in PRESETS:
            config = resolve_size(size, vocab_size, seq_len)
        else:
            config = resolve_size(size, vocab_size or LLAMA_VOCAB_SIZE, seq_len or LLAMA_SEQ_LEN)
        if given:
            if "d_model" in given and "d_ff" not in given:
                given["d_ff"] = None  # recompute the LLaMA rule for the new width
            if "n_heads" in given and "n_kv_heads" not in given:
                given["n_kv_heads"] = None
            config = config.replace(**given)

    summary = describe(config)
    if as_json:
        typer.echo(json.dumps(summary))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"model {size or 'shape'}", show_header=False)
    for key, value in config.to_dict().items():
        table.add_row(key, str(value))
    table.add_row("head_dim", str(config.head_dim))
    table.add_row("num_params", f"{config.num_params:,}")
    table.add_row("num_non_embedding_params", f"{config.num_non_embedding_params:,}")
    table.add_row("flops_per_token", f"{config.flops_per_token:.6g}")
    table.add_row("flops_per_token_6n", f"{config.flops_per_token_6n:.6g}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add `scalelab model ...` to the root app."""
    app.add_typer(model_app, name="model")
