"""Corpus: a prepared corpus opened from its folder, with memory-mapped token arrays."""

from __future__ import annotations

import json
import os
from functools import cached_property
from pathlib import Path

import numpy as np

from model.corpus.info import INFO_FILE, CorpusInfo
from model.corpus.prepare import sha256_file



def rebuild_hint(path: str | os.PathLike, source: str = "SOURCE", vocab_size: int | None = None) -> str:
    """Return the advice that ends every error about a missing or damaged corpus folder."""
    vocab = f" --vocab-size {vocab_size}" if vocab_size is not None else ""
    return f"run `scalelab data prepare --source {source} --out {path}{vocab} --force` to rebuild it"


class Corpus:
    """A prepared corpus: ``train`` and ``val`` token arrays and the tokenizer, read from one folder."""

    def __init__(self, path: Path, info: CorpusInfo, train: np.ndarray, val: np.ndarray) -> None:
        self.path = path
        self.info = info
        self.train = train
        self.val = val

    @classmethod
    def open(cls, path: str | os.PathLike, *, verify_checksums: bool = False) -> Corpus:
        """Open a corpus folder written by ``prepare_corpus``.

        File sizes are always checked against corpus.json; ``verify_checksums`` also
        recomputes every sha256, which reads every file once (8 MB for the built-in corpus).
        Raises ValueError naming the folder and the command that rebuilds it.
        """
        folder = Path(path).expanduser().resolve()
        hint = rebuild_hint(path)
        info_path = folder / INFO_FILE
        if not info_path.is_file():
            raise ValueError(f"corpus folder {path} has no {INFO_FILE}; {hint}")
        try:
            info = CorpusInfo.from_dict(json.loads(info_path.read_text(encoding="utf-8")), path=folder)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{info_path} is not a valid corpus description ({error}); {hint}") from None
        hint = rebuild_hint(path, info.source, info.vocab_size)

        for name, expected in info.files.items():
            file = folder / name
            if not file.is_file():
                raise ValueError(f"corpus file {file} is missing; {hint}")
            size = file.stat().st_size
            if size != expected["num_bytes"]:
                raise ValueError(
                    f"corpus file {file} has {size} bytes but corpus.json records {expected['num_bytes']}; {hint}"
                )
            if verify_checksums:
                digest = sha256_file(file)
                if digest != expected["sha256"]:
                    raise ValueError(
                        f"corpus file {file} has sha256 {digest} but corpus.json records {expected['sha256']}; {hint}"
                    )

        train = np.load(folder / info.train_file, mmap_mode="r", allow_pickle=False)
        val = np.load(folder / info.val_file, mmap_mode="r", allow_pickle=False)
        for split, array, expected in (("train", train, info.num_tokens_train), ("val", val, info.num_tokens_val)):
            if array.ndim != 1 or array.size != expected or array.dtype.name != info.dtype:
                raise ValueError(
                    f"{split} tokens in {folder} have shape {array.shape} and dtype {array.dtype}, "
                    f"but corpus.json records ({expected},) and {info.dtype}; {hint}"
                )
        return cls(folder, info, train, val)

    @property
    def vocab_size(self) -> int:
        return self.info.vocab_size

    @cached_property
    def tokenizer(self):
        """The sentencepiece processor of this corpus."""
        import sentencepiece as spm

        return spm.SentencePieceProcessor(model_file=str(self.info.tokenizer_model_path))

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, out_type=int)

    def decode(self, token_ids) -> str:
        return self.tokenizer.decode([int(t) for t in token_ids])

    def __repr__(self) -> str:
        return (
            f"Corpus({str(self.path)!r}, vocab_size={self.info.vocab_size}, "
            f"num_tokens_train={self.info.num_tokens_train}, num_tokens_val={self.info.num_tokens_val})"
        )

