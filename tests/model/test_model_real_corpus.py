"""Training and export on the built-in English corpus, through `model.corpus.Corpus.open`."""

import math

import pytest
import torch

from model.export import export_hf
from model.llama import Llama
from model.sizes import PRESETS
from model.train import TrainConfig, train_run

transformers = pytest.importorskip("transformers")

VOCAB_SIZE = 512


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    from model.corpus import prepare_corpus

    folder = tmp_path_factory.mktemp("corpus")
    prepare_corpus("builtin", folder, VOCAB_SIZE)
    return folder


@pytest.mark.slow
def test_train_and_export_on_real_text(corpus_dir, tmp_path):
    from model.corpus import Corpus

    model_config = PRESETS["tiny"].replace(vocab_size=VOCAB_SIZE)
    config = TrainConfig.from_rule(model_config, 8 * 32 * 40, batch_size=8, eval_batches=2)
    url = str(tmp_path / "run.ckpt")
    result = train_run(config, corpus_dir, url, num_threads=1)
    assert result.status == "completed"
    assert result.final_val_loss < math.log(VOCAB_SIZE) - 0.5

    tokenizer_path = Corpus.open(corpus_dir).info.tokenizer_model_path
    out_dir = export_hf(url, None, tokenizer_path, tmp_path / "hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir, local_files_only=True)
    reference = transformers.LlamaForCausalLM.from_pretrained(out_dir, local_files_only=True, dtype=torch.float32)
    token_ids = tokenizer("It was the best of times, it was the worst of times.", return_tensors="pt")["input_ids"]

    from model.checkpoint import load_checkpoint

    ours = Llama(model_config)
    ours.load_state_dict(load_checkpoint(url)["model"])
    with torch.no_grad():
        difference = (ours.eval()(token_ids) - reference.eval()(token_ids).logits).abs().max()
    assert difference < 1e-4
