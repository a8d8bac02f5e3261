"""prepare_corpus on every source type, determinism, the by-document split and checksums."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.corpus import Corpus, CorpusInfo, prepare_corpus
from model.corpus.prepare import token_dtype

EXCERPT_FILE = Path(__file__).parents[1] / "data" / "english_pd_excerpt.txt"

VOCAB = 512


def excerpt_documents() -> list[str]:
    return EXCERPT_FILE.read_text(encoding="utf-8").removesuffix("\n").split("\n\f\n")


def write_folder(folder, documents):
    folder.mkdir()
    for index, document in enumerate(documents):
        (folder / f"doc{index:04d}.txt").write_text(document, encoding="utf-8")
    return folder


def write_jsonl(path, documents):
    path.write_text("".join(json.dumps({"id": i, "text": d}) + "\n" for i, d in enumerate(documents)))
    return path


def write_parquet(path, documents):
    pq.write_table(pa.table({"text": documents, "id": list(range(len(documents)))}), path)
    return path


@pytest.fixture(scope="module")
def documents():
    return excerpt_documents()


@pytest.mark.parametrize("kind", ["folder", "jsonl", "parquet", "txt"])
def test_source_types_give_same_tokens(kind, documents, tmp_path, tiny_corpus):
    if kind == "folder":
        source = write_folder(tmp_path / "docs", documents)
    elif kind == "jsonl":
        source = write_jsonl(tmp_path / "docs.jsonl", documents)
    elif kind == "parquet":
        source = write_parquet(tmp_path / "docs.parquet", documents)
    else:
        source = EXCERPT_FILE
    info = prepare_corpus(source, tmp_path / "out", VOCAB, val_fraction=0.1, seed=0)
    assert info.num_documents_train + info.num_documents_val == len(documents)

    # Every reader yields the same documents in the same order, so the token files match
    # those of the shared fixture, which reads the excerpt as one .txt file.
    reference = Corpus.open(tiny_corpus)
    corpus = Corpus.open(tmp_path / "out")
    assert np.array_equal(corpus.train, reference.train)
    assert np.array_equal(corpus.val, reference.val)
    assert info.source_sha256 == reference.info.source_sha256


def test_same_inputs_byte_identical(documents, tmp_path):
    source = write_jsonl(tmp_path / "docs.jsonl", documents[:60])
    prepare_corpus(source, tmp_path / "a", VOCAB, seed=3)
    prepare_corpus(source, tmp_path / "b", VOCAB, seed=3)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == ["corpus.json", "tokenizer.model", "train.npy", "val.npy"]
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_seed_changes_split(documents, tmp_path):
    source = write_jsonl(tmp_path / "docs.jsonl", documents)
    first = prepare_corpus(source, tmp_path / "a", VOCAB, seed=0)
    second = prepare_corpus(source, tmp_path / "b", VOCAB, seed=1)
    assert first.source_sha256 == second.source_sha256
    assert first.files["val.npy"]["sha256"] != second.files["val.npy"]["sha256"]


def test_val_documents_absent_from_train(tiny_corpus, documents):
    corpus = Corpus.open(tiny_corpus)
    tokenizer = corpus.tokenizer
    eos = corpus.info.eos_id
    val_tokens = np.asarray(corpus.val)
    ends = np.flatnonzero(val_tokens == eos)
    assert len(ends) == corpus.info.num_documents_val
    assert ends[-1] == len(val_tokens) - 1

    train_text = corpus.decode(np.asarray(corpus.train))
    starts = np.concatenate([[0], ends[:-1] + 1])
    for start, end in zip(starts, ends):
        val_document = tokenizer.decode([int(t) for t in val_tokens[start:end]])
        assert val_document in documents
        # A 200-character opening is unique to each document of the excerpt.
        assert val_document[:200] not in train_text


def test_split_holds_out_about_val_fraction(tiny_corpus):
    info = Corpus.open(tiny_corpus).info
    share = info.num_chars_val / (info.num_chars_train + info.num_chars_val)
    assert info.num_documents_val >= 1
    assert 0.1 <= share <= 0.2
    share_tokens = info.num_tokens_val / info.num_tokens
    assert 0.05 <= share_tokens <= 0.25


def test_tokens_decode_to_documents(tiny_corpus, documents):
    corpus = Corpus.open(tiny_corpus)
    ids = np.asarray(corpus.train)
    first_end = int(np.flatnonzero(ids == corpus.info.eos_id)[0])
    assert corpus.decode(ids[:first_end]) == documents[0]
    assert corpus.encode(documents[0]) == [int(t) for t in ids[:first_end]]


def test_corpus_json_records_provenance(tiny_corpus):
    data = json.loads((tiny_corpus / "corpus.json").read_text())
    info = CorpusInfo.from_dict(data)
    assert info.licence == "public domain"
    assert info.num_tokens_train == Corpus.open(tiny_corpus).train.size
    assert info.dtype == "uint16"
    assert info.tokenizer_settings["model_type"] == "bpe"
    assert info.tokenizer_settings["byte_fallback"] is True
    assert set(info.files) == {"train.npy", "val.npy", "tokenizer.model"}
    assert "path" not in data


def test_byte_fallback_encodes_unseen_characters(tiny_corpus):
    corpus = Corpus.open(tiny_corpus)
    text = "Ωμέγα 漢字 🙂"
    ids = corpus.encode(text)
    assert 0 not in ids  # no <unk>
    assert corpus.decode(ids) == text


def test_token_dtype_by_vocab_size():
    assert token_dtype(512) == np.uint16
    assert token_dtype(65536) == np.uint16
    assert token_dtype(65537) == np.uint32


def test_messy_text_is_cleaned(documents, tmp_path):
    folder = tmp_path / "messy"
    folder.mkdir()
    for index, document in enumerate(documents[:40]):
        data = document.replace("\n", "\r\n").encode("utf-8")
        if index == 0:
            data = b"\xef\xbb\xbf" + data  # UTF-8 byte-order mark
        if index == 1:
            data = data + b" caf\xe9 \xff\xfe end"  # a Latin-1 byte and two stray bytes
        (folder / f"{index:03d}.txt").write_bytes(data)
    (folder / "empty.txt").write_text("  \n\n ")
    info = prepare_corpus(folder, tmp_path / "out", VOCAB, val_fraction=0.1)
    assert info.num_documents_train + info.num_documents_val == 40
    assert info.settings["empty_documents_skipped"] == 1
    assert info.settings["invalid_utf8_sequences_replaced"] == 3

    corpus = Corpus.open(tmp_path / "out")
    all_text = corpus.decode(np.asarray(corpus.train)) + corpus.decode(np.asarray(corpus.val))
    assert "\r" not in all_text
    assert "\ufeff" not in all_text
    assert "caf\ufffd" in all_text


def test_invalid_utf8_is_logged(documents, tmp_path, caplog):
    folder = tmp_path / "latin1"
    folder.mkdir()
    for index, document in enumerate(documents[:40]):
        (folder / f"{index:03d}.txt").write_bytes(document.encode("utf-8") + b"\xe9")
    with caplog.at_level("WARNING"):
        prepare_corpus(folder, tmp_path / "out", VOCAB)
    assert "replaced 40 invalid UTF-8 byte sequences" in caplog.text


def test_huge_document_is_split(documents, tmp_path):
    huge = "\n\n".join(documents)  # one document of about 480,000 characters
    source = write_jsonl(tmp_path / "one.jsonl", [huge])
    info = prepare_corpus(source, tmp_path / "out", VOCAB, max_document_chars=50_000)
    assert info.settings["documents_split"] == 1
    assert info.num_documents_train + info.num_documents_val >= 10
    assert info.num_documents_val >= 1


def test_single_txt_groups_paragraphs(documents, tmp_path):
    source = tmp_path / "book.txt"
    source.write_text("\n\n".join(documents[:60]), encoding="utf-8")
    info = prepare_corpus(source, tmp_path / "out", VOCAB)
    total = info.num_documents_train + info.num_documents_val
    # Paragraphs group into documents of at least 2,000 characters.
    assert 1 < total <= (info.num_chars_train + info.num_chars_val) // 2_000 + 1


def test_force_overwrites(tmp_path, documents):
    source = write_jsonl(tmp_path / "docs.jsonl", documents[:50])
    prepare_corpus(source, tmp_path / "out", VOCAB)
    with pytest.raises(ValueError, match="already holds a prepared corpus; pass --force"):
        prepare_corpus(source, tmp_path / "out", VOCAB)
    info = prepare_corpus(source, tmp_path / "out", VOCAB, seed=1, force=True)
    assert Corpus.open(tmp_path / "out").info.seed == 1
    assert info.seed == 1


def test_open_or_prepare_reuses_folder(tmp_path, documents):
    from model.corpus import open_or_prepare

    source = write_jsonl(tmp_path / "docs.jsonl", documents[:50])
    first = open_or_prepare(source, tmp_path / "out", VOCAB)
    modified = (tmp_path / "out" / "train.npy").stat().st_mtime_ns
    again = open_or_prepare(source, tmp_path / "out", VOCAB)
    assert again.info.sha256 == first.info.sha256
    assert (tmp_path / "out" / "train.npy").stat().st_mtime_ns == modified

    other_seed = open_or_prepare(source, tmp_path / "out", VOCAB, seed=5)
    assert other_seed.info.seed == 5

    (tmp_path / "out" / "val.npy").write_bytes(b"damaged")
    repaired = open_or_prepare(source, tmp_path / "out", VOCAB, seed=5)
    assert repaired.info.sha256 == other_seed.info.sha256


def test_split_skips_oversized_documents():
    from model.corpus.prepare import split_documents

    documents = ["x" * 100_000] + ["y" * 1_000] * 20  # target: 5 % of 120,000 characters
    for seed in range(20):
        train, val = split_documents(documents, 0.05, seed)
        assert 0 not in val
        assert 6 <= len(val) <= 12
        assert sorted(train + val) == list(range(21))


def test_split_two_documents_holds_out_smaller():
    from model.corpus.prepare import split_documents

    train, val = split_documents(["a" * 5_000, "b" * 4_000], 0.05, seed=0)
    assert val == [1]
    assert train == [0]


def test_prepared_files_follow_umask(tmp_path):
    import os
    import stat

    previous = os.umask(0o022)
    try:
        prepare_corpus(EXCERPT_FILE, tmp_path / "corpus", 512, licence="public domain")
    finally:
        os.umask(previous)
    files = [path for path in (tmp_path / "corpus").iterdir() if path.is_file()]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
