"""`scalelab data prepare` and `scalelab data info`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from model.corpus.prepare import DEFAULT_VAL_FRACTION, DEFAULT_VOCAB_SIZE

logger = logging.getLogger(__name__)

data_app = typer.Typer(help="Prepare and inspect tokenized text corpora.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the `data` command group to the root app."""
    app.add_typer(data_app, name="data")


@data_app.command("prepare")
def prepare_command(
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="builtin (the shipped public-domain corpus), debian (extract it again from installed "
            "Debian SWORD packages), or a path: a folder of .txt files, a .txt, .jsonl or .parquet file.",
        ),
    ] = "builtin",
    out: Annotated[
        Optional[Path], typer.Option("--out", help="Output folder (default: ./scalelab_data/NAME, NAME being builtin, debian or the name of the source file or folder).")
    ] = None,
    vocab_size: Annotated[int, typer.Option("--vocab-size", help="Tokenizer vocabulary size, in pieces.")] = (
        DEFAULT_VOCAB_SIZE
    ),
    val_fraction: Annotated[
        float, typer.Option("--val-fraction", help="Share of the text's characters held out as whole documents.")
    ] = DEFAULT_VAL_FRACTION,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the by-document validation split.")] = 0,
    licence: Annotated[
        Optional[str], typer.Option("--licence", help="Licence of a user corpus, recorded in corpus.json.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite a corpus already in the output folder.")] = False,
) -> None:
    """Build a tokenized corpus offline: train a BPE tokenizer and write memory-mappable token files."""
    from rich.console import Console

    from model.corpus.prepare import prepare_corpus

    # Tokenizer training and tokenization report no progress, so a spinner shows the command is working.
    with Console(stderr=True).status(f"preparing corpus from {source}"):
        info = prepare_corpus(
            source, out, vocab_size, val_fraction=val_fraction, seed=seed, licence=licence, force=force
        )
    typer.echo(f"wrote {info.path}")
    typer.echo(
        f"  train: {info.num_tokens_train:,} tokens in {info.num_documents_train:,} documents\n"
        f"  val:   {info.num_tokens_val:,} tokens in {info.num_documents_val:,} documents\n"
        f"  vocab_size {info.vocab_size}, licence: {info.licence}, sha256 {info.sha256[:16]}"
    )


@data_app.command("info")
def info_command(
    path: Annotated[Path, typer.Argument(help="Folder written by `scalelab data prepare`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print corpus.json as JSON.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Recompute the sha256 of every file.")] = False,
) -> None:
    """Print a prepared corpus's provenance, licence, sizes and checksums."""
    from model.corpus.corpus import Corpus

    corpus = Corpus.open(path, verify_checksums=verify)
    info = corpus.info
    if as_json:
        typer.echo(json.dumps({**info.to_dict(), "path": str(info.path)}, indent=2, sort_keys=True))
        return
    rows = [
        ("path", str(info.path)),
        ("source", info.description),
        ("provenance", info.provenance),
        ("licence", info.licence),
        ("vocab_size", str(info.vocab_size)),
        ("tokenizer", str(info.tokenizer_model_path)),
        ("num_tokens_train", f"{info.num_tokens_train:,} ({info.num_documents_train:,} documents)"),
        ("num_tokens_val", f"{info.num_tokens_val:,} ({info.num_documents_val:,} documents)"),
        ("source_sha256", info.source_sha256),
        ("sha256", info.sha256),
        ("checksums", "verified" if verify else "sizes checked (pass --verify for sha256)"),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        typer.echo(f"{name:<{width}}  {value}")
