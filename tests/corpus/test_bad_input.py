"""Each bad input is a ValueError naming the value and the fix, raised before tokenizer training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.corpus import Corpus, prepare_corpus
from model.corpus import prepare as prepare_module

EXCERPT_FILE = Path(__file__).parents[1] / "data" / "english_pd_excerpt.txt"


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    """Fail the test if sentencepiece training starts: validation must come first."""

    def reject_training(*args, **kwargs):
        raise AssertionError("tokenizer training started before input validation")

    monkeypatch.setattr(prepare_module, "train_tokenizer", reject_training)


def documents(count: int) -> list[str]:
    return EXCERPT_FILE.read_text(encoding="utf-8").split("\n\f\n")[:count]


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ValueError, match=r"corpus source '.*nowhere' is not 'builtin', 'debian' or an existing path"):
        prepare_corpus(missing, tmp_path / "out")


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "corpus.csv"
    path.write_text("text\nhello\n")
    with pytest.raises(ValueError, match=r"suffix '\.csv'.*use \.txt, \.jsonl"):
        prepare_corpus(path, tmp_path / "out")


def test_folder_without_txt(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "notes.md").write_text("# not a .txt file\n")
    with pytest.raises(ValueError, match=r"corpus folder .*docs contains no \.txt files"):
        prepare_corpus(folder, tmp_path / "out")


def test_empty_corpus(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("")
    (folder / "b.txt").write_text("\ufeff \r\n\r\n")
    with pytest.raises(ValueError, match=r"contains no text; give a source with non-empty documents"):
        prepare_corpus(folder, tmp_path / "out")


def test_jsonl_without_text_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": "one"}) + "\n" + json.dumps({"body": "two"}) + "\n")
    with pytest.raises(ValueError, match=r"docs\.jsonl line 2 has no 'text' field"):
        prepare_corpus(path, tmp_path / "out")


def test_jsonl_invalid_json(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": "one"}\n{"text": \n')
    with pytest.raises(ValueError, match=r"line 2 is not valid JSON"):
        prepare_corpus(path, tmp_path / "out")


def test_jsonl_text_not_string(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"text": ["a", "list"]}\n')
    with pytest.raises(ValueError, match=r"line 1: 'text' is list, not a string"):
        prepare_corpus(path, tmp_path / "out")


def test_parquet_without_text_column(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"content": ["a", "b"], "id": [1, 2]}), path)
    with pytest.raises(ValueError, match=r"has no 'text' column \(columns: content, id\); rename"):
        prepare_corpus(path, tmp_path / "out")


def test_parquet_text_not_string(tmp_path):
    path = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), path)
    with pytest.raises(ValueError, match=r"column 'text' has type int64, not string"):
        prepare_corpus(path, tmp_path / "out")


def test_not_a_parquet_file(tmp_path):
    path = tmp_path / "docs.parquet"
    path.write_text("plain text, not Parquet")
    with pytest.raises(ValueError, match=r"is not a readable Parquet file"):
        prepare_corpus(path, tmp_path / "out")


def test_single_document_cannot_hold_out_val(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text(json.dumps({"text": documents(1)[0]}) + "\n")
    with pytest.raises(ValueError, match=r"docs\.jsonl has 1 document, but holding out a validation split by document needs at least 2"):
        prepare_corpus(path, tmp_path / "out", 512)


def test_corpus_too_small_for_vocab(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in documents(20)))
    with pytest.raises(ValueError, match=r"too small for vocab_size 32000: .* pass --vocab-size \d+ or less"):
        prepare_corpus(path, tmp_path / "out", 32000)


def test_vocab_too_small_for_bytes(tmp_path):
    with pytest.raises(ValueError, match=r"vocab_size 300 is too small .* pass --vocab-size 3\d\d or more"):
        prepare_corpus(EXCERPT_FILE, tmp_path / "out", 300)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"vocab_size": 0}, r"vocab_size 0 is invalid"),
        ({"vocab_size": 512.5}, r"vocab_size 512\.5 is invalid"),
        ({"val_fraction": 0.0}, r"val_fraction 0\.0 is invalid; pass a fraction above 0 and at most 0\.5"),
        ({"val_fraction": 0.9}, r"val_fraction 0\.9 is invalid"),
        ({"seed": -1}, r"seed -1 is invalid"),
    ],
)
def test_invalid_settings(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        prepare_corpus(EXCERPT_FILE, tmp_path / "out", **settings)


def test_output_path_is_a_file(tmp_path):
    out = tmp_path / "out"
    out.write_text("")
    with pytest.raises(ValueError, match=r"output path .*out exists and is not a folder"):
        prepare_corpus(EXCERPT_FILE, out, 512)


class TestOpen:
    @pytest.fixture
    def copy(self, tiny_corpus, tmp_path):
        target = tmp_path / "corpus"
        shutil.copytree(tiny_corpus, target)
        return target

    def test_missing_folder(self, tmp_path):
        with pytest.raises(ValueError, match=r"has no corpus\.json; run `scalelab data prepare"):
            Corpus.open(tmp_path / "nothing")

    def test_missing_token_file(self, copy):
        (copy / "val.npy").unlink()
        with pytest.raises(ValueError, match=r"corpus file .*val\.npy is missing; run `scalelab data prepare"):
            Corpus.open(copy)

    def test_truncated_token_file(self, copy):
        data = (copy / "train.npy").read_bytes()
        (copy / "train.npy").write_bytes(data[:-10])
        with pytest.raises(ValueError, match=r"train\.npy has \d+ bytes but corpus\.json records \d+"):
            Corpus.open(copy)

    def test_corrupt_bytes_found_by_verify(self, copy):
        path = copy / "train.npy"
        tokens = np.load(path)
        tokens[100] = (tokens[100] + 1) % 512
        np.save(path, tokens)
        Corpus.open(copy)  # same size: only the full check sees the change
        with pytest.raises(ValueError, match=r"train\.npy has sha256 [0-9a-f]{64} but corpus\.json records"):
            Corpus.open(copy, verify_checksums=True)

    def test_invalid_corpus_json(self, copy):
        (copy / "corpus.json").write_text('{"name": "x"}')
        with pytest.raises(ValueError, match=r"is not a valid corpus description \(corpus\.json lacks fields"):
            Corpus.open(copy)
