"""Named model sizes and the size-family rule that turns a target N into a shape.

Size-family rule (`config_for_num_params`):

1. head_dim depends on d_model: 16 below 128, 32 below 512, 64 below 2048 (the Chinchilla
   tables, Hoffmann et al. 2022, table A9, use 64 and 128) and 128 from 2048 up (LLaMA).
   Small heads keep at least two heads in the smallest models.
2. The aspect ratio d_model / n_layers targets 32 up to d_model 256 (tiny models keep a few
   layers), 64 at d_model 1024 (most of Chinchilla's small models) and 128 from d_model 4096 up
   (LLaMA 7B and 13B), log-linear in between.
3. d_ff is LLaMA's 2/3·4·d_model rounded up to a multiple of 16 below d_model 512, 64 below 4096
   and 256 above, so that rounding does not dominate the MLP of tiny models.
4. d_model runs over multiples of its head_dim, each with the n_layers of its aspect-ratio
   target. The d_model whose N is nearest the target (in log) is kept. Then n_layers alone is
   moved to bring N nearest the target. Neighbouring d_model values are tried too: among the
   shapes whose N is within 10% of the target (or within 2% of the best error |log(N/target)|
   when none is), the one nearest its target aspect ratio (in log) wins. Shapes more than 4x away from their target aspect ratio are
   dropped unless no other shape is left.

When the embedding dominates (tiny N with a large vocabulary, such as below about 1M
parameters with 8k tokens), N is close to 2·vocab_size·d_model, so the target sets d_model almost
alone and n_layers falls to 1 or 2: the shape then departs from the aspect-ratio target, and
most of N sits in the embedding and output head. A target below the smallest shape (d_model 32,
one layer) raises ValueError naming that minimum.
"""

from __future__ import annotations

import math
import re

from model.config import ModelConfig, swiglu_d_ff

LLAMA_VOCAB_SIZE = 32000
LLAMA_SEQ_LEN = 2048

# LLaMA (Touvron et al. 2023), table 2: d_model, n_heads and n_layers; d_ff follows the 256 rule.
PRESETS: dict[str, ModelConfig] = {
    "7B": ModelConfig(d_model=4096, n_layers=32, n_heads=32, vocab_size=LLAMA_VOCAB_SIZE, seq_len=LLAMA_SEQ_LEN),
    "13B": ModelConfig(d_model=5120, n_layers=40, n_heads=40, vocab_size=LLAMA_VOCAB_SIZE, seq_len=LLAMA_SEQ_LEN),
    "33B": ModelConfig(d_model=6656, n_layers=60, n_heads=52, vocab_size=LLAMA_VOCAB_SIZE, seq_len=LLAMA_SEQ_LEN),
    "65B": ModelConfig(d_model=8192, n_layers=80, n_heads=64, vocab_size=LLAMA_VOCAB_SIZE, seq_len=LLAMA_SEQ_LEN),
    # Debug sizes for CPU tests; pass vocab_size and seq_len of the corpus with `.replace(...)`.
    "tiny": ModelConfig(d_model=32, n_layers=2, n_heads=2, d_ff=96, vocab_size=256, seq_len=32),
    "small": ModelConfig(d_model=64, n_layers=2, n_heads=4, d_ff=176, vocab_size=512, seq_len=64),
}

# LLaMA's token budgets (Touvron et al. 2023, table 2), for comparison with predictions.
LLAMA_NUM_TOKENS: dict[str, float] = {"7B": 1.0e12, "13B": 1.0e12, "33B": 1.4e12, "65B": 1.4e12}

_MIN_D_MODEL = 32
SIZE_TOLERANCE = math.log(1.10)
_MAX_D_MODEL = 32768
_SUFFIXES = {"": 1.0, "K": 1e3, "M": 1e6, "B": 1e9, "G": 1e9, "T": 1e12}
_COUNT_PATTERN = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*$")


def parse_count(text: str | float | int) -> float:
    """Parse a count such as `150M`, `1.5B`, `2e9` or `20_000` into a float.

    Suffixes are decimal: K = 1e3, M = 1e6, B or G = 1e9, T = 1e12.
    """
    if isinstance(text, bool):
        raise ValueError(f"count {text!r} is invalid: give a number such as 150M, 1.5B or 2e9.")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _COUNT_PATTERN.match(text)
        if match is None:
            raise ValueError(
                f"count {text!r} is invalid: give a number with an optional suffix K, M, B or T, "
                "such as 150M, 1.5B or 2e9."
            )
        value = float(match.group(1).replace("_", "")) * _SUFFIXES[match.group(2).upper()]
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"count {text!r} is invalid: it must be a positive finite number.")
    return value


def family_head_dim(d_model: int) -> int:
    """Head width of the size family at this d_model."""
    if d_model < 128:
        return 16
    if d_model < 512:
        return 32
    if d_model < 2048:
        return 64
    return 128


def family_aspect_ratio(d_model: int) -> float:
    """Target d_model / n_layers of the size family at this d_model."""
    # Anchors (d_model, aspect ratio), log-linear in between: 32 for tiny models (d_model 128 with
    # 4 layers), 64 for most of Chinchilla's small models, 128 for LLaMA 7B and 13B.
    anchors = ((256, 32.0), (1024, 64.0), (4096, 128.0))
    if d_model <= anchors[0][0]:
        return anchors[0][1]
    for (low, low_ratio), (high, high_ratio) in zip(anchors, anchors[1:]):
        if d_model <= high:
            fraction = math.log(d_model / low) / math.log(high / low)
            return low_ratio * (high_ratio / low_ratio) ** fraction
    return anchors[-1][1]


def family_ffn_multiple(d_model: int) -> int:
    """Rounding multiple of d_ff in the size family at this d_model."""
    if d_model < 512:
        return 16
    if d_model < 4096:
        return 64
    return 256


def family_config(d_model: int, n_layers: int, vocab_size: int, seq_len: int) -> ModelConfig:
    """Build the size family's shape for a given d_model and n_layers."""
    return ModelConfig(
        d_model=d_model,
        n_layers=n_layers,
        n_heads=d_model // family_head_dim(d_model),
        d_ff=swiglu_d_ff(d_model, family_ffn_multiple(d_model)),
        vocab_size=vocab_size,
        seq_len=seq_len,
    )


def _d_model_grid() -> list[int]:
    grid = []
    d_model = _MIN_D_MODEL
    while d_model <= _MAX_D_MODEL:
        grid.append(d_model)
        d_model += family_head_dim(d_model)
    return grid


def _best_n_layers(d_model: int, target: float, vocab_size: int, seq_len: int) -> int:
    # N is linear in n_layers for a fixed d_model, so the nearest integer is solved directly and
    # its neighbours compared in log space.
    one = family_config(d_model, 1, vocab_size, seq_len)
    per_layer = one.num_layer_params
    base = one.num_params - per_layer
    estimate = max(1, round((target - base) / per_layer))
    candidates = {max(1, estimate - 1), estimate, estimate + 1}
    return min(candidates, key=lambda n: abs(math.log((base + n * per_layer) / target)))


def config_for_num_params(num_params: float | str, vocab_size: int, seq_len: int) -> ModelConfig:
    """Choose d_model, n_layers and n_heads whose N is nearest `num_params`, by the size-family rule.

    The rule is in this module's docstring. The returned N differs from the target by the
    granularity of the shapes: up to about 10% below 1M parameters, a few percent above.
    """
    target = parse_count(num_params)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size={vocab_size!r} is invalid: it must be a positive integer.")
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ValueError(f"seq_len={seq_len!r} is invalid: it must be a positive integer.")

    smallest = family_config(_MIN_D_MODEL, 1, vocab_size, seq_len)
    if target < smallest.num_params * 0.9:
        raise ValueError(
            f"num_params={target:.4g} is below the smallest model of the size family for "
            f"vocab_size={vocab_size}: d_model {_MIN_D_MODEL} with one layer has {smallest.num_params} "
            "parameters. Ask for a larger N or use a smaller vocabulary."
        )

    grid = _d_model_grid()

    def aspect_shape(d_model: int) -> ModelConfig:
        n_layers = max(1, round(d_model / family_aspect_ratio(d_model)))
        return family_config(d_model, n_layers, vocab_size, seq_len)

    errors = [abs(math.log(aspect_shape(d).num_params / target)) for d in grid]
    center = min(range(len(grid)), key=errors.__getitem__)
    if center == len(grid) - 1 and aspect_shape(grid[-1]).num_params < target:
        raise ValueError(
            f"num_params={target:.4g} is above the largest model of the size family "
            f"(d_model {_MAX_D_MODEL}): ask for a smaller N."
        )

    def size_error(shape: ModelConfig) -> float:
        return abs(math.log(shape.num_params / target))

    def aspect_error(shape: ModelConfig) -> float:
        return abs(math.log(shape.d_model / shape.n_layers / family_aspect_ratio(shape.d_model)))

    candidates = []
    for index in range(max(0, center - 4), min(len(grid), center + 5)):
        d_model = grid[index]
        n_layers = _best_n_layers(d_model, target, vocab_size, seq_len)
        candidates.append(family_config(d_model, n_layers, vocab_size, seq_len))
    # A shape more than 4x away from its target aspect ratio is kept only when nothing else is
    # left, so that tiny targets do not turn into deep, 32-wide stacks.
    in_band = [shape for shape in candidates if aspect_error(shape) <= math.log(4.0)]
    candidates = in_band or candidates
    # Any shape within 10% of the target N is close enough, because the run stores its exact N.
    # The aspect ratio decides among those shapes, so depth grows smoothly along a sweep.
    best_error = min(size_error(shape) for shape in candidates)
    close = [shape for shape in candidates if size_error(shape) <= max(best_error + 0.02, SIZE_TOLERANCE)]
    return min(close, key=aspect_error)


def resolve_size(size: str, vocab_size: int | None = None, seq_len: int | None = None) -> ModelConfig:
    """Turn a preset name (`7B`, `tiny`) or a count (`20M`) into a config.

    A preset keeps its own vocabulary and context length unless `vocab_size` or `seq_len` is given.
    A count needs both, because the embedding share of N depends on them.
    """
    if size in PRESETS:
        config = PRESETS[size]
        changes = {}
        if vocab_size is not None:
            changes["vocab_size"] = vocab_size
        if seq_len is not None:
            changes["seq_len"] = seq_len
        return config.replace(**changes) if changes else config
    try:
        target = parse_count(size)
    except ValueError:
        raise ValueError(
            f"size {size!r} is neither a preset ({', '.join(PRESETS)}) nor a count such as 20M."
        ) from None
    if vocab_size is None or seq_len is None:
        raise ValueError(
            f"size {size!r} is a parameter count, so vocab_size and seq_len are needed to choose its shape."
        )
    return config_for_num_params(target, vocab_size, seq_len)
