"""Export trained weights as a Hugging Face `LlamaForCausalLM` folder.

The folder contains config.json, model.safetensors (fp32) and, when a sentencepiece model is given,
tokenizer.model with tokenizer_config.json and special_tokens_map.json for `LlamaTokenizer`.

Rotary layout: our attention rotates channel pairs (2i, 2i+1) of each head, as Meta's reference
code does; Hugging Face's Llama rotates (i, i + head_dim/2). Permuting the output rows of wq and
wk within each head (even channels first, then odd ones) makes the two compute the same logits.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from model.checkpoint import load_checkpoint
from model.config import ModelConfig

logger = logging.getLogger(__name__)


def interleaved_to_half_split(weight: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder the rows of a q or k projection (n_heads·K, D) from pair-interleaved to half-split."""
    rows, columns = weight.shape
    head_dim = rows // n_heads
    # Per head: rows (0, 1, 2, 3, ...) viewed as (K/2 pairs, 2) become (2, K/2): evens, then odds.
    return weight.view(n_heads, head_dim // 2, 2, columns).transpose(1, 2).reshape(rows, columns)


def hf_state_dict(state: Mapping[str, torch.Tensor], config: ModelConfig) -> dict[str, torch.Tensor]:
    """Rename and permute our state dict into `LlamaForCausalLM` parameter names, as fp32 tensors."""
    out = {
        "model.embed_tokens.weight": state["tok_embeddings.weight"],
        "model.norm.weight": state["norm.weight"],
        "lm_head.weight": state["output.weight"],
    }
    for layer in range(config.n_layers):
        ours, theirs = f"layers.{layer}.", f"model.layers.{layer}."
        out[theirs + "self_attn.q_proj.weight"] = interleaved_to_half_split(
            state[ours + "attention.wq.weight"], config.n_heads
        )
        out[theirs + "self_attn.k_proj.weight"] = interleaved_to_half_split(
            state[ours + "attention.wk.weight"], config.n_kv_heads
        )
        out[theirs + "self_attn.v_proj.weight"] = state[ours + "attention.wv.weight"]
        out[theirs + "self_attn.o_proj.weight"] = state[ours + "attention.wo.weight"]
        out[theirs + "mlp.gate_proj.weight"] = state[ours + "feed_forward.w1.weight"]
        out[theirs + "mlp.up_proj.weight"] = state[ours + "feed_forward.w3.weight"]
        out[theirs + "mlp.down_proj.weight"] = state[ours + "feed_forward.w2.weight"]
        out[theirs + "input_layernorm.weight"] = state[ours + "attention_norm.weight"]
        out[theirs + "post_attention_layernorm.weight"] = state[ours + "ffn_norm.weight"]
    # safetensors refuses shared or strided storage, so every tensor gets its own contiguous copy.
    return {name: tensor.detach().to("cpu", torch.float32).contiguous().clone() for name, tensor in out.items()}


def hf_config(config: ModelConfig, bos_token_id: int | None, eos_token_id: int | None) -> dict[str, Any]:
    """Build the `LlamaConfig` fields of a model shape as a JSON-serialisable dict."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.n_layers,
        "num_attention_heads": config.n_heads,
        "num_key_value_heads": config.n_kv_heads,
        "head_dim": config.head_dim,
        "vocab_size": config.vocab_size,
        "max_position_embeddings": config.seq_len,
        "rms_norm_eps": config.norm_eps,
        # transformers 4.x reads rope_theta; 5.x reads rope_parameters.
        "rope_theta": config.rope_theta,
        "rope_parameters": {"rope_type": "default", "rope_theta": config.rope_theta},
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
        "torch_dtype": "float32",
    }


def _tokenizer_files(tokenizer_path: Path, out_dir: Path) -> tuple[int | None, int | None]:
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(tokenizer_path))

    def piece(token_id: int) -> str | None:
        return processor.id_to_piece(token_id) if token_id >= 0 else None

    bos_id, eos_id, unk_id, pad_id = processor.bos_id(), processor.eos_id(), processor.unk_id(), processor.pad_id()
    special = {
        "bos_token": piece(bos_id),
        "eos_token": piece(eos_id),
        "unk_token": piece(unk_id),
        "pad_token": piece(pad_id),
    }
    special = {key: value for key, value in special.items() if value is not None}
    shutil.copyfile(tokenizer_path, out_dir / "tokenizer.model")
    tokenizer_config = {
        "tokenizer_class": "LlamaTokenizer",
        "add_bos_token": bos_id >= 0,
        "add_eos_token": False,
        "legacy": False,
        "model_max_length": None,
        **special,
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    (out_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    return (bos_id if bos_id >= 0 else None), (eos_id if eos_id >= 0 else None)


def export_hf(
    checkpoint_url_or_state: str | Path | Mapping[str, Any],
    model_config: ModelConfig | None,
    tokenizer_path: str | Path | None,
    out_dir: str | Path,
) -> Path:
    """Write a `LlamaForCausalLM` folder from a checkpoint URL, a checkpoint payload or a state dict.

    `model_config` may be None when a checkpoint is given: its stored config is used.
    `tokenizer_path` is the corpus's sentencepiece model, or None to write weights only.
    Returns the output folder.
    """
    if isinstance(checkpoint_url_or_state, str | Path):
        payload = load_checkpoint(str(checkpoint_url_or_state))
        if payload is None:
            raise ValueError(
                f"no checkpoint at {checkpoint_url_or_state}: export needs a run that wrote one."
            )
    else:
        payload = checkpoint_url_or_state
    if "model" in payload and isinstance(payload["model"], Mapping):
        state = payload["model"]
        if model_config is None:
            model_config = ModelConfig.from_dict(payload["config"]["model"])
    else:
        state = payload
    if model_config is None:
        raise ValueError("model_config is None and the state has no stored config: pass the ModelConfig.")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    bos_id = eos_id = None
    if tokenizer_path is not None:
        tokenizer = Path(tokenizer_path)
        if not tokenizer.is_file():
            raise ValueError(f"tokenizer {tokenizer} not found: pass the corpus's sentencepiece .model file.")
        bos_id, eos_id = _tokenizer_files(tokenizer, out)

    from safetensors.torch import save_file

    save_file(hf_state_dict(state, model_config), str(out / "model.safetensors"), metadata={"format": "pt"})
    config_json = hf_config(model_config, bos_id, eos_id)
    (out / "config.json").write_text(json.dumps(config_json, indent=2) + "\n")
    logger.info("exported LlamaForCausalLM with %d parameters to %s", model_config.num_params, out)
    return out
