"""Training and validation windows drawn from token arrays.

A training batch is a pure function of (seed, step), so a resumed run needs only its step to
continue on the same data. Validation uses one fixed set of windows chosen by `EVAL_SEED`,
independent of the run's seed, so validation losses compare across runs of the same seq_len.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

# Fixed so that every run of a sweep is evaluated on the same windows.
EVAL_SEED = 20230227  # LLaMA's arXiv date, an arbitrary fixed value
EVAL_BATCH_SIZE = 8
"""Sequences per validation batch; fixed so that `eval_batches` means the same tokens in every run."""


class CorpusInfoLike(Protocol):
    vocab_size: int


class TokenCorpus(Protocol):
    """Corpus as training reads it: 1-D token arrays and the vocabulary size."""

    train: np.ndarray
    val: np.ndarray
    info: CorpusInfoLike


@dataclass(frozen=True)
class ArrayCorpusInfo:
    vocab_size: int


@dataclass(frozen=True)
class ArrayCorpus:
    """Token arrays already in memory or memory-mapped, for callers without a prepared corpus folder."""

    train: np.ndarray
    val: np.ndarray
    info: ArrayCorpusInfo


def open_corpus(corpus: str | Path | TokenCorpus) -> TokenCorpus:
    """Open a prepared corpus folder with `model.corpus.Corpus.open`, or pass a corpus object through."""
    if isinstance(corpus, str | Path):
        from model.corpus import Corpus

        return Corpus.open(corpus)
    return corpus


def check_corpus(corpus: TokenCorpus, vocab_size: int, seq_len: int) -> None:
    """Raise ValueError when the corpus cannot feed a model of this vocabulary and context."""
    if corpus.info.vocab_size > vocab_size:
        raise ValueError(
            f"corpus vocab_size={corpus.info.vocab_size} exceeds the model's vocab_size={vocab_size}: "
            "build the model with the corpus's vocab_size."
        )
    for split, tokens in (("train", corpus.train), ("val", corpus.val)):
        if tokens.ndim != 1:
            raise ValueError(f"corpus {split} split has shape {tokens.shape}: it must be a 1-D token array.")
        if len(tokens) < seq_len + 1:
            raise ValueError(
                f"corpus {split} split has {len(tokens)} tokens, fewer than seq_len + 1 = {seq_len + 1}: "
                "use a larger corpus or a shorter seq_len."
            )


def _windows(tokens: np.ndarray, offsets: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = np.stack([np.asarray(tokens[offset : offset + seq_len + 1], dtype=np.int64) for offset in offsets])
    rows_tensor = torch.from_numpy(rows)  # (B, T + 1)
    return rows_tensor[:, :-1], rows_tensor[:, 1:]  # inputs and next-token targets, each (B, T)


def train_batch(
    tokens: np.ndarray, *, seed: int, step: int, batch_size: int, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the batch of optimizer step `step` (0-based): uniform random windows, with replacement."""
    rng = np.random.default_rng([seed, step])
    offsets = rng.integers(0, len(tokens) - seq_len, size=batch_size)
    return _windows(tokens, offsets, seq_len)


def eval_windows(tokens: np.ndarray, *, eval_batches: int, seq_len: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Return the fixed validation batches: `eval_batches` batches of `EVAL_BATCH_SIZE` windows."""
    rng = np.random.default_rng(EVAL_SEED)
    offsets = rng.integers(0, len(tokens) - seq_len, size=eval_batches * EVAL_BATCH_SIZE)
    return [
        _windows(tokens, offsets[i * EVAL_BATCH_SIZE : (i + 1) * EVAL_BATCH_SIZE], seq_len)
        for i in range(eval_batches)
    ]
