import math

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from model.config import ModelConfig, swiglu_d_ff
from model.llama import Llama
from model.sizes import PRESETS

# LLaMA 7B-65B with a 32,000-token vocabulary; the totals published by Meta's released weights.
PINNED_PRESET_PARAMS = {
    "7B": 6_738_415_616,
    "13B": 13_015_864_320,
    "33B": 32_528_943_616,
    "65B": 65_285_660_672,
}
PINNED_PRESET_D_FF = {"7B": 11008, "13B": 13824, "33B": 17920, "65B": 22016}


@pytest.mark.parametrize("name", sorted(PINNED_PRESET_PARAMS))
def test_preset_num_params_pinned(name):
    config = PRESETS[name]
    assert config.num_params == PINNED_PRESET_PARAMS[name]
    assert config.d_ff == PINNED_PRESET_D_FF[name]
    assert config.num_non_embedding_params == config.num_params - 2 * 32000 * config.d_model


def test_tiny_config_counts_pinned():
    config = PRESETS["tiny"]
    assert config.num_params == 43_168
    assert config.num_non_embedding_params == 26_784
    assert config.flops_per_token == 233_472.0
    assert config.flops_per_token_6n == 6.0 * 43_168


@pytest.mark.parametrize(
    "config",
    [
        PRESETS["tiny"],
        PRESETS["small"],
        ModelConfig(d_model=64, n_layers=3, n_heads=4, n_kv_heads=2, d_ff=160, vocab_size=300, seq_len=32),
        ModelConfig(d_model=48, n_layers=1, n_heads=3, n_kv_heads=1, vocab_size=100, seq_len=16),
    ],
    ids=["tiny", "small", "gqa", "gqa-one-kv-head"],
)
def test_num_params_matches_module(config):
    model = Llama(config)
    assert sum(p.numel() for p in model.parameters()) == config.num_params
    embedding = model.tok_embeddings.weight.numel() + model.output.weight.numel()
    assert sum(p.numel() for p in model.parameters()) - embedding == config.num_non_embedding_params


@pytest.mark.parametrize(
    "config",
    [
        PRESETS["small"],
        ModelConfig(d_model=64, n_layers=3, n_heads=4, n_kv_heads=2, d_ff=160, vocab_size=300, seq_len=32),
    ],
    ids=["small", "gqa"],
)
def test_flops_per_token_matches_flop_counter(config):
    # FlopCounterMode counts matmuls (mm, bmm) only, which is exactly what the analytic count
    # covers, so the tolerance is 1e-9 relative. The math attention kernel is forced because the
    # fused CPU kernel has no FLOP formula registered.
    model = Llama(config)
    batch_size = 2
    token_ids = torch.randint(0, config.vocab_size, (batch_size, config.seq_len))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(token_ids).float().sum().backward()
    expected = config.flops_per_token * batch_size * config.seq_len
    assert math.isclose(counter.get_total_flops(), expected, rel_tol=1e-9)


def test_flops_per_token_7b_on_meta_device():
    # The 7B preset on the meta device: shapes only, no memory, the same count as the formula.
    config = PRESETS["7B"].replace(seq_len=128)
    with torch.device("meta"):
        model = Llama(config)
        token_ids = torch.zeros((1, config.seq_len), dtype=torch.long)
    with FlopCounterMode(display=False) as counter:
        model(token_ids).sum().backward()
    assert math.isclose(counter.get_total_flops(), config.flops_per_token * config.seq_len, rel_tol=1e-9)


def test_flops_attention_term():
    config = PRESETS["small"]
    without_attention = 6 * config.num_matmul_params
    attention = 12 * config.n_layers * config.n_heads * config.head_dim * config.seq_len
    assert config.flops_per_token == float(without_attention + attention)
    assert isinstance(config.flops_per_token, float)


def test_swiglu_d_ff_rule():
    assert swiglu_d_ff(4096) == 11008
    assert swiglu_d_ff(64, 16) == 176
    assert ModelConfig(d_model=4096, n_layers=1, n_heads=32).d_ff == 11008


def test_config_round_trip():
    config = ModelConfig(d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=100, seq_len=16)
    data = config.to_dict()
    assert data["n_kv_heads"] == 2
    assert data["d_ff"] == 256
    assert ModelConfig.from_dict(data) == config


def test_config_from_dict_unknown_key():
    data = PRESETS["tiny"].to_dict() | {"dim": 3}
    with pytest.raises(ValueError, match=r"unknown model config keys \['dim'\]"):
        ModelConfig.from_dict(data)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_heads": 3}, "d_model=32 is not divisible by n_heads=3"),
        ({"n_heads": 32}, "head_dim=1 .* is odd"),
        ({"n_kv_heads": 3, "n_heads": 4, "d_model": 32}, "n_heads=4 is not divisible by n_kv_heads=3"),
        ({"n_layers": 0}, "n_layers=0 is invalid"),
        ({"vocab_size": 2.5}, "vocab_size=2.5 is invalid"),
        ({"norm_eps": 0.0}, "norm_eps=0.0 is invalid"),
    ],
)
def test_config_rejects_bad_shape(changes, message):
    with pytest.raises(ValueError, match=message):
        PRESETS["tiny"].replace(**changes)
