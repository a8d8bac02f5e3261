"""Shape of a LLaMA-architecture decoder and its exact parameter and FLOP accounting.

Accounting conventions (used by every package through `num_params` and `flops_per_token`):

- `num_params` (N) counts every unique parameter: token embedding, attention and SwiGLU
  matrices, RMSNorm gains and the untied output head.
- `num_non_embedding_params` is N without the token embedding and the output head
  (RMSNorm gains stay in), as Kaplan et al. (2020) count non-embedding parameters.
- `flops_per_token` follows PaLM (Chowdhery et al. 2022, appendix B): 6·N_matmul plus
  12·n_layers·n_heads·head_dim·seq_len for the attention scores and their weighted sum.
  N_matmul counts the weights that multiply activations: attention and SwiGLU projections
  and the output head. The embedding is a table lookup and the RMSNorm gains are elementwise,
  so neither is in N_matmul. The attention term counts the full T×T score matrix, as PaLM does,
  although a causal kernel may skip the masked half.
- `flops_per_token_6n` is Chinchilla's approximation 6·N with N = `num_params`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any


def swiglu_d_ff(d_model: int, multiple_of: int = 256) -> int:
    """Compute LLaMA's SwiGLU hidden width: 2/3 · 4 · d_model rounded up to `multiple_of`.

    The 2/3 keeps the three SwiGLU matrices at the parameter count of a 4·d_model two-matrix MLP
    (Shazeer 2020); LLaMA rounds up to a multiple of 256 for efficient matmul tiles.
    """
    if multiple_of < 1:
        raise ValueError(f"multiple_of={multiple_of} is invalid: it must be a positive integer.")
    hidden = int(2 * 4 * d_model / 3)
    return multiple_of * math.ceil(hidden / multiple_of)


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Shape of one LLaMA-architecture decoder."""

    d_model: int
    """Width of the residual stream."""
    n_layers: int
    """Number of transformer blocks."""
    n_heads: int
    """Number of query heads; `head_dim = d_model // n_heads`."""
    n_kv_heads: int | None = None
    """Number of key and value heads for grouped-query attention; None means `n_heads` (no grouping)
    and is replaced by that value at construction."""
    d_ff: int | None = None
    """SwiGLU hidden width; None means LLaMA's rule `swiglu_d_ff(d_model, 256)`, replaced by its
    value at construction so that the stored config always contains the final width."""
    vocab_size: int = 32000
    """Number of token ids of the tokenizer."""
    seq_len: int = 2048
    """Context length in tokens: the training window and the rotary table length."""
    norm_eps: float = 1e-6
    """RMSNorm epsilon (LLaMA uses 1e-6)."""
    rope_theta: float = 10000.0
    """Rotary embedding base (LLaMA uses 10000)."""

    def __post_init__(self) -> None:
        # The dataclass is frozen, so defaults resolved here are written with object.__setattr__.
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.d_ff is None:
            object.__setattr__(self, "d_ff", swiglu_d_ff(self.d_model))
        for name in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "vocab_size", "seq_len"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is invalid: it must be a positive integer.")
        if self.d_model % self.n_heads != 0:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}: "
                "choose n_heads that divides d_model."
            )
        if self.head_dim % 2 != 0:
            raise ValueError(
                f"head_dim={self.head_dim} (d_model={self.d_model} / n_heads={self.n_heads}) is odd: "
                "rotary embeddings rotate pairs of channels, so choose n_heads that gives an even head_dim."
            )
        if self.n_heads % self.n_kv_heads != 0:
            raise ValueError(
                f"n_heads={self.n_heads} is not divisible by n_kv_heads={self.n_kv_heads}: "
                "each key/value head must serve the same number of query heads."
            )
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps={self.norm_eps!r} is invalid: it must be positive.")
        if not self.rope_theta > 0:
            raise ValueError(f"rope_theta={self.rope_theta!r} is invalid: it must be positive.")

    @property
    def head_dim(self) -> int:
        """Channels per attention head."""
        return self.d_model // self.n_heads

    @property
    def num_layer_params(self) -> int:
        """Parameters of one transformer block: attention, SwiGLU and two RMSNorm gains."""
        kv_width = self.n_kv_heads * self.head_dim
        attention = 2 * self.d_model * self.d_model + 2 * self.d_model * kv_width  # wq, wo, wk, wv
        mlp = 3 * self.d_model * self.d_ff  # w1 (gate), w3 (up), w2 (down)
        return attention + mlp + 2 * self.d_model

    @property
    def num_embedding_params(self) -> int:
        """Parameters of the token embedding and the untied output head together."""
        return 2 * self.vocab_size * self.d_model

    @property
    def num_non_embedding_params(self) -> int:
        """N without token embedding and output head; RMSNorm gains included."""
        return self.n_layers * self.num_layer_params + self.d_model  # + final RMSNorm

    @property
    def num_params(self) -> int:
        """N: all unique parameters, embedding and output head included."""
        return self.num_non_embedding_params + self.num_embedding_params

    @property
    def num_matmul_params(self) -> int:
        """Weights used in a matmul per token: projections of every block and the output head."""
        norm_gains = (2 * self.n_layers + 1) * self.d_model
        return self.num_non_embedding_params - norm_gains + self.vocab_size * self.d_model

    @property
    def flops_per_token(self) -> float:
        """Training FLOPs per token with attention: 6·N_matmul + 12·n_layers·n_heads·head_dim·seq_len.

        Forward: 2 FLOPs per weight per token, plus 2·T·K for Q·Kᵀ and 2·T·K for the weighted sum of
        V, per head and layer. Backward costs twice the forward, hence the factors 6 and 12.
        """
        attention = 12 * self.n_layers * self.n_heads * self.head_dim * self.seq_len
        return float(6 * self.num_matmul_params + attention)

    @property
    def flops_per_token_6n(self) -> float:
        """Chinchilla's approximation of training FLOPs per token: 6·N with N = `num_params`."""
        return float(6 * self.num_params)

    def replace(self, **changes: Any) -> ModelConfig:
        """Return a copy with some fields changed and validated again."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields, with `n_kv_heads` and `d_ff` resolved."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Build a config from `to_dict()` output; unknown keys raise ValueError."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown model config keys {unknown}: the valid keys are {sorted(known)}."
            )
        return cls(**data)
