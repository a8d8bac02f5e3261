"""CorpusInfo: the metadata of a prepared corpus, stored as corpus.json beside its files."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INFO_FILE = "corpus.json"
FORMAT_VERSION = 1


@dataclass(kw_only=True)
class CorpusInfo:
    """Provenance, sizes and checksums of a prepared corpus."""

    name: str
    """Short corpus name, also the default output folder name."""
    source: str
    """The source as given: ``builtin``, ``debian`` or a path."""
    description: str
    """Description of the source in words."""
    provenance: str
    """Origin of the text and the commands that extracted it."""
    licence: str
    """Licence of the text; ``unknown`` for a user corpus unless given."""
    vocab_size: int
    """Tokenizer vocabulary size, special and byte pieces included."""
    tokenizer_model: str
    """File name of the sentencepiece model inside the corpus folder."""
    tokenizer_settings: dict[str, Any]
    """Every option the sentencepiece trainer received."""
    bos_id: int
    eos_id: int
    """Token id appended after every document, so documents in the token stream are separated."""
    dtype: str
    """numpy dtype of the token files: ``uint16`` when ``vocab_size`` <= 65536, else ``uint32``."""
    train_file: str
    val_file: str
    num_documents_train: int
    num_documents_val: int
    num_tokens_train: int
    """Tokens in the training file, document separators included."""
    num_tokens_val: int
    num_chars_train: int
    num_chars_val: int
    val_fraction: float
    """Requested share of the source's characters held out for validation, whole documents only."""
    seed: int
    source_sha256: str
    """sha256 of the cleaned source text: documents joined by form-feed lines, as in the built-in file."""
    files: dict[str, dict[str, Any]]
    """``{file name: {"sha256": hex digest, "num_bytes": size}}`` for the token files and the tokenizer."""
    sha256: str
    """Digest that identifies the prepared corpus: sha256 over the file digests in name order."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Preparation settings and library versions."""
    format_version: int = FORMAT_VERSION
    path: Path | None = field(default=None, compare=False)
    """Folder the corpus was opened from; not stored in corpus.json."""

    @property
    def tokenizer_model_path(self) -> Path:
        """Absolute path of the sentencepiece model; needs ``path`` (set by ``Corpus.open``)."""
        if self.path is None:
            raise ValueError("CorpusInfo.path is not set; open the corpus with Corpus.open(path)")
        return self.path / self.tokenizer_model

    @property
    def num_tokens(self) -> int:
        return self.num_tokens_train + self.num_tokens_val

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> CorpusInfo:
        names = {f.name for f in dataclasses.fields(cls)} - {"path"}
        missing = sorted(names - set(data) - {"settings", "format_version"})
        if missing:
            raise ValueError(f"corpus.json lacks fields {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names}, path=path)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
