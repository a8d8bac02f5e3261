"""Train a sentencepiece BPE tokenizer on the training documents, deterministically and quietly."""

from __future__ import annotations

import collections
import io
import logging
import re
from collections.abc import Iterator

logger = logging.getLogger(__name__)

UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
NUM_BYTE_PIECES = 256
NUM_SPECIAL_PIECES = 3
CHARACTER_COVERAGE = 0.9995
# Lines longer than this (in characters) are cut at a space for training only;
# sentencepiece skips training sentences over max_sentence_length bytes.
MAX_TRAINING_LINE_CHARS = 4_000
MAX_SENTENCE_BYTES = 4 * MAX_TRAINING_LINE_CHARS


def trainer_settings(vocab_size: int) -> dict:
    """Return the sentencepiece trainer options used for every corpus.

    BPE with byte fallback, as in the LLaMA tokenizer, so any text encodes without <unk>.
    Digits are split and the text is not normalized, so decoding gives back the input.
    One thread and the whole input (no sampling) make the model bytes reproducible.
    """
    return {
        "model_type": "bpe",
        "vocab_size": vocab_size,
        "byte_fallback": True,
        "character_coverage": CHARACTER_COVERAGE,
        "split_digits": True,
        "normalization_rule_name": "identity",
        "remove_extra_whitespaces": False,
        "add_dummy_prefix": True,
        "allow_whitespace_only_pieces": True,
        "unk_id": UNK_ID,
        "bos_id": BOS_ID,
        "eos_id": EOS_ID,
        "pad_id": -1,
        "input_sentence_size": 0,
        "shuffle_input_sentence": False,
        "max_sentence_length": MAX_SENTENCE_BYTES,
        "num_threads": 1,
        "minloglevel": 2,
    }


def training_lines(documents: list[str]) -> Iterator[str]:
    """Yield the non-empty lines of the documents, long lines cut at spaces."""
    for document in documents:
        for line in document.split("\n"):
            while len(line) > MAX_TRAINING_LINE_CHARS:
                cut = line.rfind(" ", 0, MAX_TRAINING_LINE_CHARS)
                cut = cut if cut > 0 else MAX_TRAINING_LINE_CHARS
                yield line[:cut]
                line = line[cut:].lstrip(" ")
            if line.strip():
                yield line


def required_characters(documents: list[str]) -> int:
    """Count the characters sentencepiece keeps as pieces at ``CHARACTER_COVERAGE``."""
    counts: collections.Counter[str] = collections.Counter()
    for document in documents:
        counts.update(re.sub(r"\s", "", document))
    counts["\u2581"] += 1  # the word-boundary piece is always required
    total = sum(counts.values())
    kept = 0
    covered = 0
    for _char, count in counts.most_common():
        if covered / total >= CHARACTER_COVERAGE:
            break
        covered += count
        kept += 1
    return kept


def min_vocab_size(documents: list[str]) -> int:
    return NUM_BYTE_PIECES + NUM_SPECIAL_PIECES + required_characters(documents)


def max_vocab_size_bound(documents: list[str]) -> int:
    """Upper bound on the vocabulary BPE can build: every merge makes a substring of a distinct word."""
    words: set[str] = set()
    for document in documents:
        words.update(document.split())
    return NUM_BYTE_PIECES + NUM_SPECIAL_PIECES + sum(len(word) for word in words)


def train_tokenizer(documents: list[str], vocab_size: int) -> bytes:
    """Train the tokenizer and return the serialized sentencepiece model.

    Raises ValueError when sentencepiece finds the vocabulary too large or too small
    for these documents (the checks in ``prepare_corpus`` catch most cases earlier).
    """
    import sentencepiece as spm

    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=training_lines(documents), model_writer=model, **trainer_settings(vocab_size)
        )
    except RuntimeError as error:
        message = str(error)
        too_high = re.search(r"value <= (\d+)", message)
        if too_high:
            raise ValueError(
                f"vocab_size {vocab_size} is too large for this corpus: BPE can build at most "
                f"{too_high.group(1)} pieces from its training documents; pass --vocab-size "
                f"{too_high.group(1)} or less, or give a larger corpus"
            ) from None
        too_low = re.search(r"(\d+) vs (\d+)", message)
        if too_low:
            raise ValueError(
                f"vocab_size {vocab_size} is too small for this corpus: it needs {too_low.group(2)} "
                f"pieces for bytes, special tokens and characters; pass --vocab-size {too_low.group(2)} or more"
            ) from None
        raise
    return model.getvalue()
