import math

import pytest

from model.sizes import PRESETS, config_for_num_params, family_aspect_ratio, parse_count, resolve_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [("150M", 150e6), ("1.5B", 1.5e9), ("2e9", 2e9), ("20_000", 2e4), ("7k", 7e3), ("1T", 1e12), (3, 3.0)],
)
def test_parse_count(text, expected):
    assert parse_count(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "10X", "-5M", "0", "nan"])
def test_parse_count_rejects(text):
    with pytest.raises(ValueError, match=f"count {text!r} is invalid"):
        parse_count(text)


@pytest.mark.parametrize("target", ["50k", "300k", "1M", "3M", "20M", "100M", "1B", "7B"])
@pytest.mark.parametrize("vocab_size", [256, 8192, 32000])
def test_family_hits_target(target, vocab_size):
    try:
        config = config_for_num_params(target, vocab_size, 256)
    except ValueError as error:
        # Only targets below the one-layer, 32-wide model may be rejected.
        assert "below the smallest model" in str(error)
        assert parse_count(target) < 2 * vocab_size * 32 + 20_000
        return
    n = parse_count(target)
    # Shapes within 10% of the target count as a match; the aspect ratio picks among them.
    assert abs(config.num_params / n - 1) < 0.11
    assert config.head_dim in (16, 32, 64, 128)
    aspect = config.d_model / config.n_layers
    # The aspect ratio stays within 4x of its target unless the model is a single layer.
    assert config.n_layers == 1 or abs(math.log(aspect / family_aspect_ratio(config.d_model))) <= math.log(4)


def test_family_uses_small_heads_for_tiny_models():
    config = config_for_num_params("1M", 256, 256)
    assert config.head_dim <= 32
    assert config.n_heads >= 2


def test_family_embedding_dominated():
    # 3M parameters with a 32k vocabulary: the embedding and head take most of N.
    config = config_for_num_params("3M", 32000, 256)
    assert config.num_embedding_params > 0.9 * config.num_params
    assert config.n_layers == 1


def test_family_is_monotone_in_target():
    sizes = [config_for_num_params(n, 8192, 256).num_params for n in (1e6, 3e6, 1e7, 3e7, 1e8, 3e8)]
    assert sizes == sorted(sizes)


def test_family_keeps_depth_for_small_vocab():
    # With a small vocabulary the embedding does not dominate, so models of 300k parameters
    # and more get several layers rather than one wide layer.
    for target in (3e5, 5e5, 1e6, 2e6, 5e6, 2e7):
        config = config_for_num_params(target, 512, 128)
        assert config.n_layers >= 3, (target, config)


def test_family_rejects_too_small():
    with pytest.raises(ValueError, match=r"num_params=1e\+05 is below the smallest model .* vocab_size=32000"):
        config_for_num_params("100k", 32000, 256)


def test_resolve_size():
    assert resolve_size("7B") == PRESETS["7B"]
    assert resolve_size("tiny", vocab_size=1000).vocab_size == 1000
    assert resolve_size("20M", vocab_size=8192, seq_len=256).seq_len == 256
    with pytest.raises(ValueError, match="size '20M' is a parameter count, so vocab_size and seq_len are needed"):
        resolve_size("20M")
    with pytest.raises(ValueError, match="size 'huge' is neither a preset"):
        resolve_size("huge")
