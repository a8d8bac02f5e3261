"""Tokenized text corpora: preparation from a source, and memory-mapped access.

``prepare_corpus(source, out_dir, vocab_size)`` writes ``train.npy``, ``val.npy``,
``tokenizer.model`` and ``corpus.json`` into a folder. ``Corpus.open(folder)`` reads them,
and ``open_or_prepare`` reuses a folder prepared with the same settings.
"""

from model.corpus.corpus import Corpus
from model.corpus.info import CorpusInfo
from model.corpus.prepare import open_or_prepare, prepare_corpus

__all__ = ["Corpus", "CorpusInfo", "open_or_prepare", "prepare_corpus"]
