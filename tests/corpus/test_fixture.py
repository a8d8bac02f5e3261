from model.corpus import Corpus


def test_tiny_corpus_opens(tiny_corpus):
    corpus = Corpus.open(tiny_corpus, verify_checksums=True)
    assert corpus.info.vocab_size == 512
    assert corpus.train.dtype.name == "uint16"
    assert corpus.info.num_tokens_train > 100_000
    assert corpus.info.num_tokens_val > 10_000
    assert int(corpus.train.max()) < 512
