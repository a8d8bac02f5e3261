"""Read a corpus source into a list of cleaned documents.

A source is ``"builtin"``, ``"debian"``, a folder of ``.txt`` files, a single ``.txt``
file, a JSON Lines file with a ``text`` field, or a Parquet file with a ``text`` column.
Every reader returns :class:`SourceDocuments`; validation errors are ``ValueError``s
raised before any tokenizer training.
"""

from __future__ import annotations

import json
import logging
import lzma
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

logger = logging.getLogger(__name__)

BUILTIN_FILE = "english_pd.txt.xz"
# Documents in the built-in file, and in a single .txt file that contains form feeds,
# are separated by a line holding one form feed (ASCII 0x0C, the page-break character).
DOCUMENT_SEPARATOR = "\n\f\n"
# A document longer than this is split at paragraph (else line) boundaries, so that
# one huge file can still give a validation split and tokenizes in bounded memory.
MAX_DOCUMENT_CHARS = 1_000_000
# Paragraphs of a single .txt file without form feeds are grouped into documents of
# at least this many characters, so a by-document split does not hold out lone lines.
MIN_GROUPED_DOCUMENT_CHARS = 2_000
JSONL_SUFFIXES = (".jsonl", ".json-lines", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
PUBLIC_DOMAIN = "public domain"


@dataclass
class SourceDocuments:
    """Documents of one source, with what is known about where they came from."""

    name: str
    description: str
    provenance: str
    licence: str
    documents: list[str]
    invalid_utf8_sequences: int = 0
    details: dict = field(default_factory=dict)


def normalize_text(text: str) -> str:
    """Drop a byte-order mark, turn CRLF and CR into LF, and strip surrounding blank space.

    Form feeds inside a document become newlines, because a form-feed line separates
    documents in the files this package writes.
    """
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    return text.strip()


def decode_bytes(data: bytes) -> tuple[str, int]:
    """Decode UTF-8, replacing invalid byte sequences with U+FFFD; return the text and their count."""
    try:
        return data.decode("utf-8"), 0
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        # U+FFFD already present in the input is encoded as EF BF BD and is not a replacement.
        return text, text.count("\ufffd") - data.count("\ufffd".encode("utf-8"))


def split_huge(document: str, max_chars: int = MAX_DOCUMENT_CHARS) -> list[str]:
    """Split a document longer than ``max_chars`` at blank lines, else at newlines, else hard."""
    if len(document) <= max_chars:
        return [document]
    parts: list[str] = []
    rest = document
    while len(rest) > max_chars:
        window = rest[:max_chars]
        cut = window.rfind("\n\n")
        if cut < max_chars // 2:
            cut = window.rfind("\n")
        if cut < max_chars // 2:
            cut = max_chars
        parts.append(rest[:cut].strip())
        rest = rest[cut:]
    parts.append(rest.strip())
    return [part for part in parts if part]


def group_paragraphs(text: str, min_chars: int = MIN_GROUPED_DOCUMENT_CHARS) -> list[str]:
    """Group blank-line-separated paragraphs into documents of at least ``min_chars``."""
    documents: list[str] = []
    current: list[str] = []
    size = 0
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        current.append(paragraph)
        size += len(paragraph)
        if size >= min_chars:
            documents.append("\n\n".join(current))
            current, size = [], 0
    if current:
        documents.append("\n\n".join(current))
    return documents


def split_text_file(text: str) -> list[str]:
    """Split one text into documents: at form-feed lines if present, else by paragraph groups."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if "\f" in text:
        return [normalize_text(part) for part in text.split("\f")]
    return group_paragraphs(text)


def join_documents(documents: list[str]) -> str:
    """Serialize documents in the form-feed-separated layout of the built-in file."""
    return DOCUMENT_SEPARATOR.join(documents) + "\n"


def _finish(source: SourceDocuments, max_document_chars: int = MAX_DOCUMENT_CHARS) -> SourceDocuments:
    documents: list[str] = []
    empty = 0
    split = 0
    for document in source.documents:
        document = normalize_text(document)
        if not document:
            empty += 1
            continue
        parts = split_huge(document, max_document_chars)
        split += len(parts) > 1
        documents.extend(parts)
    if empty:
        logger.warning("skipped %d empty documents in %s", empty, source.description)
    if split:
        logger.info("split %d documents longer than %d characters", split, max_document_chars)
    if source.invalid_utf8_sequences:
        logger.warning(
            "%s: replaced %d invalid UTF-8 byte sequences with U+FFFD", source.description, source.invalid_utf8_sequences
        )
    source.documents = documents
    source.details.update(empty_documents_skipped=empty, documents_split=split)
    if not documents:
        raise ValueError(
            f"corpus source {source.description} contains no text; "
            f"give a source with non-empty documents or use --source builtin"
        )
    return source


def read_builtin() -> SourceDocuments:
    """Read the public-domain corpus shipped inside this package."""
    data = resources.files("model.corpus").joinpath("builtin", BUILTIN_FILE).read_bytes()
    text = lzma.decompress(data).decode("utf-8")
    documents = text.removesuffix("\n").split(DOCUMENT_SEPARATOR)
    return _finish(
        SourceDocuments(
            name="builtin",
            description="built-in corpus",
            provenance=(
                "World English Bible (engWEB2015eb), Matthew Henry's Concise Commentary (MHCC) and "
                "Spurgeon's Treasury of David, Psalms 1-72 (TDavid), extracted from Debian SWORD packages "
                "with diatheke; see model/corpus/builtin/PROVENANCE.md"
            ),
            licence=PUBLIC_DOMAIN,
            documents=documents,
        )
    )


def read_debian() -> SourceDocuments:
    """Extract the built-in corpus again from installed Debian packages."""
    from model.corpus import debian

    documents = debian.extract_documents()
    versions = debian.package_versions()
    return _finish(
        SourceDocuments(
            name="debian",
            description="Debian SWORD packages",
            provenance="; ".join(
                [f"{' '.join(debian.diatheke_command(m))} ({m.title})" for m in debian.MODULES]
                + [f"{package} {version}" for package, version in versions.items()]
            ),
            licence=PUBLIC_DOMAIN,
            documents=documents,
            details={"debian_packages": versions},
        )
    )


def _read_txt_folder(path: Path) -> SourceDocuments:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".txt")
    if not files:
        raise ValueError(
            f"corpus folder {path} contains no .txt files; put one UTF-8 .txt file per document there, "
            f"or pass a .jsonl or .parquet file"
        )
    documents = []
    replaced = 0
    for file in files:
        text, count = decode_bytes(file.read_bytes())
        replaced += count
        documents.append(text)
    return SourceDocuments(
        name=path.name,
        description=f"folder {path} ({len(files)} .txt files)",
        provenance=f"user corpus: folder {path.resolve()}, one document per .txt file",
        licence="unknown",
        documents=documents,
        invalid_utf8_sequences=replaced,
    )


def _read_txt_file(path: Path) -> SourceDocuments:
    text, replaced = decode_bytes(path.read_bytes())
    return SourceDocuments(
        name=path.stem,
        description=f"text file {path}",
        provenance=(
            f"user corpus: {path.resolve()}, split into documents at form-feed lines, "
            f"or else into groups of blank-line-separated paragraphs"
        ),
        licence="unknown",
        documents=split_text_file(text),
        invalid_utf8_sequences=replaced,
    )


def _read_jsonl(path: Path) -> SourceDocuments:
    documents = []
    replaced = 0
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line, count = decode_bytes(raw)
            replaced += count
            line = line.lstrip("\ufeff").strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ValueError(
                    f"{path} line {line_number} is not valid JSON ({error.msg}); "
                    f'write one JSON object per line, such as {{"text": "..."}}'
                ) from None
            if not isinstance(record, dict) or "text" not in record:
                raise ValueError(
                    f"{path} line {line_number} has no 'text' field; "
                    f'write one JSON object per line with the document in "text"'
                )
            if not isinstance(record["text"], str):
                raise ValueError(
                    f"{path} line {line_number}: 'text' is {type(record['text']).__name__}, not a string; "
                    f"store each document as a JSON string"
                )
            documents.append(record["text"])
    return SourceDocuments(
        name=path.stem,
        description=f"JSON Lines file {path}",
        provenance=f"user corpus: {path.resolve()}, one document per line's 'text' field",
        licence="unknown",
        documents=documents,
        invalid_utf8_sequences=replaced,
    )


def _read_parquet(path: Path) -> SourceDocuments:
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as error:  # pyarrow raises several types for a file that is not Parquet
        raise ValueError(f"{path} is not a readable Parquet file ({error}); write it with pyarrow or pandas") from None
    if "text" not in schema.names:
        raise ValueError(
            f"Parquet file {path} has no 'text' column (columns: {', '.join(schema.names) or 'none'}); "
            f"rename the column that holds the documents to 'text'"
        )
    column = pq.read_table(path, columns=["text"]).column("text")
    import pyarrow as pa

    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        raise ValueError(
            f"Parquet file {path}: column 'text' has type {column.type}, not string; store documents as strings"
        )
    documents = [value for value in column.to_pylist() if value is not None]
    return SourceDocuments(
        name=path.stem,
        description=f"Parquet file {path}",
        provenance=f"user corpus: {path.resolve()}, one document per row of column 'text'",
        licence="unknown",
        documents=documents,
    )


def read_source(source: str | Path, max_document_chars: int = MAX_DOCUMENT_CHARS) -> SourceDocuments:
    """Read ``source`` into cleaned, non-empty documents, or raise ValueError saying what to fix."""
    if str(source) == "builtin":
        return read_builtin()
    if str(source) == "debian":
        return read_debian()
    path = Path(source).expanduser()
    if not path.exists():
        raise ValueError(
            f"corpus source {str(source)!r} is not 'builtin', 'debian' or an existing path; "
            f"pass a folder of .txt files, a .txt, .jsonl or .parquet file, or --source builtin"
        )
    if path.is_dir():
        reader = _read_txt_folder
    elif path.suffix.lower() == ".txt":
        reader = _read_txt_file
    elif path.suffix.lower() in JSONL_SUFFIXES:
        reader = _read_jsonl
    elif path.suffix.lower() in PARQUET_SUFFIXES:
        reader = _read_parquet
    else:
        raise ValueError(
            f"corpus file {path} has suffix {path.suffix or '(none)'!r}, which is not supported; "
            f"use .txt, .jsonl (a 'text' field per line) or .parquet (a 'text' column)"
        )
    return _finish(reader(path), max_document_chars)
