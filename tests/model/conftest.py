import numpy as np
import pytest

from model.batches import ArrayCorpus, ArrayCorpusInfo

VOCAB_SIZE = 256


def make_token_stream(num_tokens: int, seed: int) -> np.ndarray:
    """Token ids that follow a learnable rule: each id is the previous one plus 0, 1 or 2, mod 256."""
    rng = np.random.default_rng(seed)
    return (np.cumsum(rng.integers(0, 3, size=num_tokens)) % VOCAB_SIZE).astype(np.uint16)


@pytest.fixture(scope="session")
def token_arrays(tmp_path_factory):
    """Train and val token arrays saved as .npy files, shared by in-process and subprocess runs."""
    folder = tmp_path_factory.mktemp("tokens")
    np.save(folder / "train.npy", make_token_stream(50_000, seed=1))
    np.save(folder / "val.npy", make_token_stream(5_000, seed=2))
    return folder


def load_array_corpus(folder) -> ArrayCorpus:
    return ArrayCorpus(
        train=np.load(folder / "train.npy", mmap_mode="r"),
        val=np.load(folder / "val.npy", mmap_mode="r"),
        info=ArrayCorpusInfo(vocab_size=VOCAB_SIZE),
    )


@pytest.fixture
def corpus(token_arrays) -> ArrayCorpus:
    return load_array_corpus(token_arrays)
