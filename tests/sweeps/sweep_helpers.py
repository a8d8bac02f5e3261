"""Spec builders shared by the sweep tests."""

SEQ_LEN = 32
TOKENS_PER_STEP = 256


def smallest_params(vocab_size: int) -> int:
    from model.sizes import family_config

    return family_config(32, 1, vocab_size, SEQ_LEN).num_params


def tiny_spec_dict(corpus, tmp_path, name, *, steps_smallest=40, **changes):
    """A spec of one budget and four sizes whose smallest model takes `steps_smallest` steps."""
    from model.corpus import Corpus

    vocab_size = Corpus.open(corpus).info.vocab_size
    base = smallest_params(vocab_size)
    data = {
        "name": name,
        "data": str(corpus),
        "seq_len": SEQ_LEN,
        "tokens_per_step": TOKENS_PER_STEP,
        "budgets": [6.0 * base * TOKENS_PER_STEP * steps_smallest],
        "models": {"sizes": [base, int(base * 1.6), int(base * 2.5), int(base * 4)]},
        "storage": {"checkpoint_root": str(tmp_path / "checkpoints")},
        "train": {"eval_batches": 2},
    }
    data.update(changes)
    return data
