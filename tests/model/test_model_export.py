import json

import pytest
import torch

from model.config import ModelConfig
from model.export import export_hf, hf_state_dict
from model.llama import Llama

transformers = pytest.importorskip("transformers")

TEXT = [
    "It is a truth universally acknowledged, that a single man in possession of a good fortune,",
    "must be in want of a wife. However little known the feelings or views of such a man may be",
    "on his first entering a neighbourhood, this truth is so well fixed in the minds of the",
    "surrounding families, that he is considered the rightful property of some one or other",
    "of their daughters. My dear Mr. Bennet, said his lady to him one day, have you heard that",
    "Netherfield Park is let at last? Mr. Bennet replied that he had not.",
] * 20


@pytest.fixture(scope="module")
def tokenizer_path(tmp_path_factory):
    import sentencepiece

    folder = tmp_path_factory.mktemp("tokenizer")
    text_file = folder / "text.txt"
    text_file.write_text("\n".join(TEXT) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(text_file), model_prefix=str(folder / "sp"), vocab_size=120, model_type="bpe",
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1, minloglevel=2,
    )
    return folder / "sp.model"


def random_model(config: ModelConfig) -> Llama:
    torch.manual_seed(0)
    model = Llama(config)
    with torch.no_grad():
        # Trained norm gains are not all 1, and a mistake in mapping them must show in the logits.
        for name, parameter in model.named_parameters():
            if parameter.dim() == 1:
                parameter.uniform_(0.5, 1.5)
            else:
                parameter.normal_(0.0, 0.1)
    return model


CONFIGS = [
    ModelConfig(d_model=64, n_layers=2, n_heads=4, d_ff=96, vocab_size=120, seq_len=32),
    ModelConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=96, vocab_size=120, seq_len=32, rope_theta=500.0),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["mha", "gqa"])
def test_export_logits_match_transformers(config, tokenizer_path, tmp_path):
    model = random_model(config).eval()
    out_dir = export_hf(model.state_dict(), config, tokenizer_path, tmp_path / "hf")
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.model", "tokenizer_config.json",
    ]

    reference = transformers.LlamaForCausalLM.from_pretrained(out_dir, local_files_only=True, dtype=torch.float32)
    reference.eval()
    token_ids = torch.randint(0, config.vocab_size, (2, config.seq_len), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = model(token_ids)
        theirs = reference(token_ids).logits
    assert ours.shape == theirs.shape
    assert torch.allclose(ours, theirs, atol=1e-4, rtol=0), (ours - theirs).abs().max()


def test_export_without_rotary_permutation_differs(tokenizer_path, tmp_path):
    # The rotary permutation is what makes the logits match: copying wq and wk as they are breaks it.
    config = CONFIGS[0]
    model = random_model(config).eval()
    out_dir = export_hf(model.state_dict(), config, None, tmp_path / "hf")
    reference = transformers.LlamaForCausalLM.from_pretrained(out_dir, local_files_only=True, dtype=torch.float32)
    unpermuted = hf_state_dict(model.state_dict(), config)
    for layer in range(config.n_layers):
        unpermuted[f"model.layers.{layer}.self_attn.q_proj.weight"] = model.layers[layer].attention.wq.weight.detach()
        unpermuted[f"model.layers.{layer}.self_attn.k_proj.weight"] = model.layers[layer].attention.wk.weight.detach()
    reference.load_state_dict(unpermuted)
    token_ids = torch.randint(0, config.vocab_size, (1, config.seq_len))
    with torch.no_grad():
        difference = (model(token_ids) - reference(token_ids).logits).abs().max()
    assert difference > 1e-2


def test_export_tokenizer_loads(tokenizer_path, tmp_path):
    import sentencepiece

    config = CONFIGS[0]
    out_dir = export_hf(random_model(config).state_dict(), config, tokenizer_path, tmp_path / "hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(out_dir, local_files_only=True)
    processor = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_path))
    text = "a single man in possession of a good fortune"
    assert tokenizer(text)["input_ids"] == [processor.bos_id()] + processor.encode(text)
    hf_config = json.loads((out_dir / "config.json").read_text())
    assert hf_config["bos_token_id"] == 1
    assert hf_config["eos_token_id"] == 2


def test_export_from_checkpoint_file(tmp_path):
    from model.checkpoint import save_checkpoint

    config = CONFIGS[1]
    model = random_model(config)
    url = str(tmp_path / "run.ckpt")
    save_checkpoint(url, {"config": {"model": config.to_dict()}, "model": model.state_dict()})
    out_dir = export_hf(url, None, None, tmp_path / "hf")
    assert json.loads((out_dir / "config.json").read_text())["num_key_value_heads"] == 2


def test_export_missing_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint at .*missing.ckpt: export needs a run that wrote one"):
        export_hf(str(tmp_path / "missing.ckpt"), None, None, tmp_path / "hf")
