"""LLaMA decoder (Touvron et al. 2023) for training from scratch.

Architecture: pre-norm RMSNorm (Zhang and Sennrich 2019), SwiGLU MLP (Shazeer 2020), rotary
position embeddings (Su et al. 2021) in Meta's interleaved channel-pair layout, no biases, an
untied output head, causal attention through `F.scaled_dot_product_attention`, and optional
grouped-query attention (Ainslie et al. 2023) when `n_kv_heads < n_heads`.

Shape legend:
    B  batch size (sequences)
    T  positions in the sequence (at most seq_len)
    D  d_model
    H  n_heads, G n_kv_heads
    K  head_dim = D / H
    F  d_ff
    V  vocab_size
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from model.config import ModelConfig

# Initialisation: normal with std 0.02 (GPT-2, Radford et al. 2019), and the projections that
# write into the residual stream (wo, w2) scaled by 1/sqrt(2·n_layers) so the residual variance
# does not grow with depth. The LLaMA paper does not state its initialisation.
INIT_STD = 0.02


class RMSNorm(nn.Module):
    """Root-mean-square layer norm with a learned gain and no bias or mean subtraction."""

    def __init__(self, d_model: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 under bf16 autocast too: the mean of squares loses precision in bf16.
        x_float = x.float()
        normed = x_float * torch.rsqrt(x_float.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * normed.type_as(x)


def rotary_table(head_dim: int, seq_len: int, theta: float) -> torch.Tensor:
    """Compute cos and sin of the rotation angles as one fp32 tensor (T, K/2, 2).

    Channel pair i of a head at position t is rotated by the angle t · theta^(-2i/K).
    """
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    positions = torch.arange(seq_len, dtype=torch.float32)
    angles = torch.outer(positions, inv_freq)  # (T, K/2)
    return torch.stack((angles.cos(), angles.sin()), dim=-1)


def apply_rotary(x: torch.Tensor, cos_sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2i, 2i+1) of x (B, T, H, K) by the angles in cos_sin (T, K/2, 2), in fp32.

    This is Meta's interleaved layout. Hugging Face rotates (i, i + K/2) instead, which is the
    same function after permuting the rows of wq and wk (see `model.export`).
    In eager mode each pair is one complex number times e^(i·angle): one complex multiply
    forward and one backward take about a third of the time of the same rotation written with
    real products and a stack (fp32, 2 CPU threads, d_model 512). Inductor generates no code for
    complex operators, so under `torch.compile` the real form runs, which it fuses.
    """
    pairs = x.float().unflatten(-1, (-1, 2))  # (B, T, H, K/2, 2)
    if not torch.compiler.is_compiling():
        rotation = torch.view_as_complex(cos_sin)[None, :, None, :]  # (1, T, 1, K/2)
        return torch.view_as_real(torch.view_as_complex(pairs) * rotation).flatten(-2).type_as(x)
    cos, sin = cos_sin[None, :, None, :, 0], cos_sin[None, :, None, :, 1]  # (1, T, 1, K/2)
    x_even, x_odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((x_even * cos - x_odd * sin, x_even * sin + x_odd * cos), dim=-1)
    return rotated.flatten(-2).type_as(x)  # (B, T, H, K)


class Attention(nn.Module):
    """Causal multi-head self-attention with rotary embeddings and optional grouped keys and values."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads = config.n_heads
        self.n_kv_heads = config.n_kv_heads
        self.head_dim = config.head_dim
        self.wq = nn.Linear(config.d_model, config.n_heads * config.head_dim, bias=False)
        self.wk = nn.Linear(config.d_model, config.n_kv_heads * config.head_dim, bias=False)
        self.wv = nn.Linear(config.d_model, config.n_kv_heads * config.head_dim, bias=False)
        self.wo = nn.Linear(config.n_heads * config.head_dim, config.d_model, bias=False)

    def forward(self, x: torch.Tensor, cos_sin: torch.Tensor) -> torch.Tensor:
        batch_size, seq_len, _ = x.shape
        q = self.wq(x).view(batch_size, seq_len, self.n_heads, self.head_dim)  # (B, T, H, K)
        k = self.wk(x).view(batch_size, seq_len, self.n_kv_heads, self.head_dim)  # (B, T, G, K)
        v = self.wv(x).view(batch_size, seq_len, self.n_kv_heads, self.head_dim)  # (B, T, G, K)
        q = apply_rotary(q, cos_sin)
        k = apply_rotary(k, cos_sin)

        q, k, v = (tensor.transpose(1, 2) for tensor in (q, k, v))  # (B, H or G, T, K)
        if self.n_kv_heads != self.n_heads:
            # Each key/value head serves n_heads / n_kv_heads consecutive query heads.
            repeats = self.n_heads // self.n_kv_heads
            k = k.repeat_interleave(repeats, dim=1)  # (B, H, T, K)
            v = v.repeat_interleave(repeats, dim=1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, T, K)
        y = y.transpose(1, 2).reshape(batch_size, seq_len, self.n_heads * self.head_dim)  # (B, T, D)
        return self.wo(y)


class FeedForward(nn.Module):
    """SwiGLU MLP: w2(silu(w1 x) * w3 x)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.w1 = nn.Linear(config.d_model, config.d_ff, bias=False)  # gate
        self.w3 = nn.Linear(config.d_model, config.d_ff, bias=False)  # up
        self.w2 = nn.Linear(config.d_ff, config.d_model, bias=False)  # down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))  # (B, T, F) -> (B, T, D)


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then + feed_forward(norm(·))."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attention = Attention(config)
        self.ffn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.feed_forward = FeedForward(config)

    def forward(self, x: torch.Tensor, cos_sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.attention_norm(x), cos_sin)
        return x + self.feed_forward(self.ffn_norm(x))


class Llama(nn.Module):
    """LLaMA decoder: token ids (B, T) to next-token logits (B, T, V)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.output = nn.Linear(config.d_model, config.vocab_size, bias=False)

        # The rotary tables are derived from the config, so they stay out of the state dict.
        self.register_buffer(
            "rope_cos_sin", rotary_table(config.head_dim, config.seq_len, config.rope_theta), persistent=False
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise weights from torch's global RNG (seed it first for a reproducible model)."""
        residual_std = INIT_STD / math.sqrt(2 * self.config.n_layers)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear):
                is_residual_output = name.endswith(".wo") or name.endswith(".w2")
                nn.init.normal_(module.weight, mean=0.0, std=residual_std if is_residual_output else INIT_STD)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
            elif isinstance(module, RMSNorm):
                nn.init.ones_(module.weight)

    def forward(self, token_ids: torch.Tensor) -> torch.Tensor:
        seq_len = token_ids.shape[1]
        if seq_len > self.config.seq_len:
            raise ValueError(
                f"input has {seq_len} positions but the model's seq_len is {self.config.seq_len}: "
                "pass shorter sequences or build the model with a larger seq_len."
            )
        cos_sin = self.rope_cos_sin[:seq_len]  # (T, K/2, 2)
        x = self.tok_embeddings(token_ids)  # (B, T, D)
        for layer in self.layers:
            x = layer(x, cos_sin)
        return self.output(self.norm(x))  # (B, T, V)
