"""Fixtures shared by every test package."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA_DIR = Path(__file__).parent / "data"
# Public-domain excerpt of the built-in corpus (see tests/data/PROVENANCE.md):
# 118 documents separated by form-feed lines, about 88,000 words.
EXCERPT_FILE = DATA_DIR / "english_pd_excerpt.txt"
TINY_VOCAB_SIZE = 512


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a corpus folder prepared from the committed excerpt with a 512-piece tokenizer.

    About 210,000 train and 20,000 val tokens (uint16); open it with
    ``model.corpus.Corpus.open(tiny_corpus)``. Prepared once per test session; treat it as read-only.
    """
    from model.corpus import prepare_corpus

    out = tmp_path_factory.mktemp("tiny_corpus")
    prepare_corpus(EXCERPT_FILE, out, TINY_VOCAB_SIZE, val_fraction=0.1, seed=0, licence="public domain")
    return out
