"""Train one run in a separate process, for the kill-and-resume test.

Usage: python resume_worker.py TOKEN_FOLDER CONFIG_JSON CHECKPOINT_PATH
"""

import json
import sys
from pathlib import Path

import numpy as np

from model.batches import ArrayCorpus, ArrayCorpusInfo
from model.train import TrainConfig, train_run

if __name__ == "__main__":
    folder, config_path, checkpoint_path = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    config = TrainConfig.from_dict(json.loads(config_path.read_text()))
    corpus = ArrayCorpus(
        train=np.load(folder / "train.npy", mmap_mode="r"),
        val=np.load(folder / "val.npy", mmap_mode="r"),
        info=ArrayCorpusInfo(vocab_size=config.model.vocab_size),
    )
    train_run(config, corpus, checkpoint_path, num_threads=1)
