"""The rotary embedding: both code paths, and the rotation it stands for."""

import math

import pytest
import torch

from model.llama import apply_rotary, rotary_table


def rotate_by_hand(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate each channel pair (2i, 2i+1) at position t by t · theta^(-2i/K), one pair at a time."""
    batch, seq_len, heads, head_dim = x.shape
    out = torch.empty_like(x, dtype=torch.float64)
    for t in range(seq_len):
        for i in range(head_dim // 2):
            angle = t * theta ** (-2 * i / head_dim)
            even, odd = x[:, t, :, 2 * i].double(), x[:, t, :, 2 * i + 1].double()
            out[:, t, :, 2 * i] = even * math.cos(angle) - odd * math.sin(angle)
            out[:, t, :, 2 * i + 1] = even * math.sin(angle) + odd * math.cos(angle)
    return out


@pytest.mark.parametrize("compiling", [False, True])
def test_rotary_paths_match_the_rotation(monkeypatch, compiling):
    # The eager path multiplies complex numbers; the path taken under torch.compile uses real
    # products. Both must give the same rotation.
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: compiling)
    torch.manual_seed(0)
    x = torch.randn(2, 7, 3, 8)
    rotated = apply_rotary(x, rotary_table(8, 7, 500.0))
    assert rotated.shape == x.shape
    assert rotated.dtype == x.dtype
    torch.testing.assert_close(rotated.double(), rotate_by_hand(x, 500.0), rtol=1e-6, atol=1e-6)


def test_rotary_gradients_of_both_paths_agree(monkeypatch):
    torch.manual_seed(1)
    cos_sin = rotary_table(16, 5, 10000.0)
    grads = []
    for compiling in (False, True):
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda value=compiling: value)
        x = torch.randn(2, 5, 2, 16, generator=torch.Generator().manual_seed(2), requires_grad=True)
        (apply_rotary(x, cos_sin) * torch.arange(x.numel()).view_as(x)).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-6, atol=1e-5)


def test_rotary_keeps_bf16_inputs_in_bf16():
    x = torch.randn(1, 4, 2, 8, dtype=torch.bfloat16)
    assert apply_rotary(x, rotary_table(8, 4, 10000.0)).dtype == torch.bfloat16
