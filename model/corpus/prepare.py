"""prepare_corpus: split a source by document, train the tokenizer, write token files and corpus.json."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from model.corpus.info import INFO_FILE, CorpusInfo
from model.corpus.sources import MAX_DOCUMENT_CHARS, SourceDocuments, join_documents, read_source
from model.corpus.tokenizer import (
    BOS_ID,
    EOS_ID,
    max_vocab_size_bound,
    min_vocab_size,
    train_tokenizer,
    trainer_settings,
)

logger = logging.getLogger(__name__)

TRAIN_FILE = "train.npy"
VAL_FILE = "val.npy"
TOKENIZER_FILE = "tokenizer.model"
DEFAULT_VOCAB_SIZE = 4096
DEFAULT_VAL_FRACTION = 0.05
MAX_VAL_FRACTION = 0.5
MAX_VOCAB_SIZE = 2**31 - 1
# Each token must have been seen a few times for BPE statistics to mean anything;
# fewer source words than this multiple of the vocabulary is rejected as too small.
MIN_WORDS_PER_VOCAB_ENTRY = 4


def validate_settings(vocab_size: int, val_fraction: float, seed: int) -> None:
    """Raise ValueError for a setting outside its range, before any file is read."""
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not 0 < vocab_size <= MAX_VOCAB_SIZE:
        raise ValueError(f"vocab_size {vocab_size!r} is invalid; pass a positive integer such as 4096")
    if not isinstance(val_fraction, (int, float)) or not 0 < val_fraction <= MAX_VAL_FRACTION:
        raise ValueError(
            f"val_fraction {val_fraction!r} is invalid; pass a fraction above 0 and at most {MAX_VAL_FRACTION}, "
            f"such as {DEFAULT_VAL_FRACTION}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed {seed!r} is invalid; pass a non-negative integer")


def split_documents(
    documents: list[str], val_fraction: float, seed: int, description: str = "corpus"
) -> tuple[list[int], list[int]]:
    """Choose whole documents for validation until they hold ``val_fraction`` of the characters.

    Documents are visited in a seeded random order. One that would push the validation
    share past twice the target is skipped, so a single huge document cannot swallow it.
    Returns the train and val document indices, each in source order.
    """
    if len(documents) < 2:
        raise ValueError(
            f"{description} has {len(documents)} document, but holding out a validation split by document "
            f"needs at least 2; give more documents (more .txt files, JSON lines or Parquet rows)"
        )
    total = sum(len(d) for d in documents)
    target = val_fraction * total
    order = np.random.default_rng(seed).permutation(len(documents))
    val: list[int] = []
    size = 0
    for index in order:
        if size >= target or len(val) + 1 == len(documents):
            break
        length = len(documents[index])
        if size + length > 2 * target:
            continue
        val.append(int(index))
        size += length
    if not val:
        # Every document alone exceeds twice the target, so hold out the smallest one.
        val = [min(range(len(documents)), key=lambda i: len(documents[i]))]
    val_set = set(val)
    train = [i for i in range(len(documents)) if i not in val_set]
    return train, sorted(val)


def _check_vocab(train_documents: list[str], vocab_size: int, description: str) -> None:
    low = min_vocab_size(train_documents)
    if vocab_size < low:
        raise ValueError(
            f"vocab_size {vocab_size} is too small for corpus {description}: byte fallback needs 256 byte pieces, "
            f"3 special pieces and {low - 259} character pieces; pass --vocab-size {low} or more"
        )
    num_words = sum(len(d.split()) for d in train_documents)
    high = min(max_vocab_size_bound(train_documents), num_words // MIN_WORDS_PER_VOCAB_ENTRY)
    if vocab_size > high:
        raise ValueError(
            f"corpus {description} is too small for vocab_size {vocab_size}: its training split has "
            f"{num_words} words, and a BPE vocabulary needs at least {MIN_WORDS_PER_VOCAB_ENTRY} words per piece; "
            f"pass --vocab-size {high} or less, or give more text"
        )


def token_dtype(vocab_size: int) -> np.dtype:
    """Return uint16 when every id fits (vocab_size <= 65536), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 2**16 else np.dtype(np.uint32)


def _encode(processor, documents: list[str], dtype: np.dtype) -> np.ndarray:
    """Tokenize documents and join them, each followed by EOS."""
    if not documents:
        return np.zeros(0, dtype=dtype)
    pieces = []
    batch = 256
    for start in range(0, len(documents), batch):
        for ids in processor.encode(documents[start : start + batch], out_type=int, add_eos=True):
            pieces.append(np.asarray(ids, dtype=dtype))
    return np.concatenate(pieces)


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _default_file_mode() -> int:
    """Return the mode a plain `open` gives a new file: 0o666 less the process's umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    # mkstemp creates the file with mode 0o600; a corpus is shared like any other data file.
    os.fchmod(handle, _default_file_mode())
    with os.fdopen(handle, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npy")
    os.fchmod(handle, _default_file_mode())
    with os.fdopen(handle, "wb") as out:
        np.save(out, array, allow_pickle=False)
    os.replace(temporary, path)


def prepare_corpus(
    source: str | os.PathLike = "builtin",
    out_dir: str | os.PathLike | None = None,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
    licence: str | None = None,
    force: bool = False,
    max_document_chars: int = MAX_DOCUMENT_CHARS,
) -> CorpusInfo:
    """Build a tokenized corpus from ``source`` in ``out_dir`` and return its CorpusInfo.

    ``source`` is ``"builtin"``, ``"debian"``, a folder of .txt files, a .txt, .jsonl or
    .parquet file. ``out_dir`` defaults to ``./scalelab_data/<name>``. An ``out_dir`` that
    already holds a corpus is kept unless ``force`` is set. The same inputs always give
    byte-identical files. Documents longer than ``max_document_chars`` are split at
    paragraph boundaries. Bad input raises ValueError before the tokenizer is trained.
    """
    validate_settings(vocab_size, val_fraction, seed)
    if isinstance(max_document_chars, bool) or not isinstance(max_document_chars, int) or max_document_chars < 1000:
        raise ValueError(f"max_document_chars {max_document_chars!r} is invalid; pass an integer of at least 1000")
    loaded: SourceDocuments = read_source(source, max_document_chars)
    out = Path(out_dir) if out_dir is not None else Path("scalelab_data") / loaded.name
    if out.exists() and not out.is_dir():
        raise ValueError(f"output path {out} exists and is not a folder; pass another --out")
    if (out / INFO_FILE).exists() and not force:
        raise ValueError(f"{out} already holds a prepared corpus; pass --force to overwrite it or choose another --out")

    documents = loaded.documents
    train_index, val_index = split_documents(documents, val_fraction, seed, loaded.description)
    train_documents = [documents[i] for i in train_index]
    val_documents = [documents[i] for i in val_index]
    _check_vocab(train_documents, vocab_size, loaded.description)

    import sentencepiece as spm

    logger.info(
        "training a %d-piece BPE tokenizer on %d documents of %s", vocab_size, len(train_documents), loaded.description
    )
    model_bytes = train_tokenizer(train_documents, vocab_size)
    processor = spm.SentencePieceProcessor(model_proto=model_bytes)
    dtype = token_dtype(vocab_size)
    train_tokens = _encode(processor, train_documents, dtype)
    val_tokens = _encode(processor, val_documents, dtype)

    out.mkdir(parents=True, exist_ok=True)
    # corpus.json is written last, so a folder whose preparation was interrupted has none
    # and Corpus.open rejects it instead of pairing old metadata with new token files.
    (out / INFO_FILE).unlink(missing_ok=True)
    _write_bytes_atomic(out / TOKENIZER_FILE, model_bytes)
    _write_npy_atomic(out / TRAIN_FILE, train_tokens)
    _write_npy_atomic(out / VAL_FILE, val_tokens)
    files = {
        name: {"sha256": sha256_file(out / name), "num_bytes": (out / name).stat().st_size}
        for name in (TOKENIZER_FILE, TRAIN_FILE, VAL_FILE)
    }
    corpus_digest = hashlib.sha256("".join(f"{n}:{files[n]['sha256']}\n" for n in sorted(files)).encode()).hexdigest()

    info = CorpusInfo(
        name=loaded.name,
        source=str(source),
        description=loaded.description,
        provenance=loaded.provenance,
        licence=licence or loaded.licence,
        vocab_size=vocab_size,
        tokenizer_model=TOKENIZER_FILE,
        tokenizer_settings=trainer_settings(vocab_size),
        bos_id=BOS_ID,
        eos_id=EOS_ID,
        dtype=dtype.name,
        train_file=TRAIN_FILE,
        val_file=VAL_FILE,
        num_documents_train=len(train_documents),
        num_documents_val=len(val_documents),
        num_tokens_train=int(train_tokens.size),
        num_tokens_val=int(val_tokens.size),
        num_chars_train=sum(len(d) for d in train_documents),
        num_chars_val=sum(len(d) for d in val_documents),
        val_fraction=float(val_fraction),
        seed=seed,
        source_sha256=hashlib.sha256(join_documents(documents).encode("utf-8")).hexdigest(),
        files=files,
        sha256=corpus_digest,
        settings={
            "document_separator": "eos appended after every document",
            "split": "whole documents in seeded random order until val_fraction of characters",
            "sentencepiece_version": spm.__version__,
            "numpy_version": np.__version__,
            "max_document_chars": max_document_chars,
            "invalid_utf8_sequences_replaced": loaded.invalid_utf8_sequences,
            **loaded.details,
        },
        path=out.resolve(),
    )
    _write_bytes_atomic(out / INFO_FILE, info.to_json().encode("utf-8"))
    logger.info(
        "wrote %s: %d train tokens, %d val tokens", out, info.num_tokens_train, info.num_tokens_val
    )
    return info


def open_or_prepare(
    source: str | os.PathLike = "builtin",
    out_dir: str | os.PathLike | None = None,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    *,
    val_fraction: float = DEFAULT_VAL_FRACTION,
    seed: int = 0,
):
    """Open the corpus in ``out_dir`` if it was prepared from ``source`` with these settings, else prepare it.

    A folder prepared with other settings, or damaged, is prepared again. The source itself is
    not reread, so an edited user corpus needs ``prepare_corpus(..., force=True)``. Returns a ``Corpus``.
    """
    from model.corpus.corpus import Corpus

    validate_settings(vocab_size, val_fraction, seed)
    if out_dir is None:
        name = str(source) if str(source) in ("builtin", "debian") else Path(source).stem
        out_dir = Path("scalelab_data") / name
    try:
        corpus = Corpus.open(out_dir)
    except ValueError as error:
        if (Path(out_dir) / INFO_FILE).exists():
            logger.warning("preparing %s again: %s", out_dir, error)
    else:
        info = corpus.info
        requested = (str(source), vocab_size, float(val_fraction), seed)
        if (info.source, info.vocab_size, info.val_fraction, info.seed) == requested:
            return corpus
        logger.info("preparing %s again: its settings differ from source=%s vocab_size=%d", out_dir, source, vocab_size)
    prepare_corpus(source, out_dir, vocab_size, val_fraction=val_fraction, seed=seed, force=True)
    return Corpus.open(out_dir)
