"""Training throughput of `model.llama.Llama` against transformers' `LlamaForCausalLM`.

Both models get the same shapes, batch, threads and precision, in one process. A timed step is
forward, cross-entropy, backward and an AdamW update. Steps of the two models alternate, so a
machine that slows down mid-run slows both; each figure is the median step time.

Run: python -m benchmarks.train_throughput [--quick] [--threads N] [--precision fp32|bf16] [--compile]
With --compile our model runs through `torch.compile` (as `TrainConfig(compile=True)` trains) while
the reference stays eager, so that figure compares our trainer's fastest mode, not equal code paths.
The last line of output is one JSON object with every figure; `speedup` is our tokens/s over the
reference's at the largest d_model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from model.config import ModelConfig
from model.llama import Llama

SHAPES = [
    {"d_model": 256, "n_layers": 4, "n_heads": 4},
    {"d_model": 512, "n_layers": 8, "n_heads": 8},
]
VOCAB_SIZE = 8192
SEQ_LEN = 256
BATCH_SIZE = 8


def measure_matmul_peak(dtype: torch.dtype, device: torch.device, seconds: float = 1.0) -> float:
    """Return the best FLOP/s of square matmuls in `dtype`, over a few sizes."""
    best = 0.0
    for size in (1024, 2048):
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        torch.mm(a, b)
        deadline = time.perf_counter() + seconds / 2
        while time.perf_counter() < deadline:
            _synchronize(device)
            start = time.perf_counter()
            torch.mm(a, b)
            _synchronize(device)
            best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def reference_model(config: ModelConfig) -> torch.nn.Module:
    import transformers

    hf_config = transformers.LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.d_model,
        intermediate_size=config.d_ff,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_kv_heads,
        max_position_embeddings=config.seq_len,
        rms_norm_eps=config.norm_eps,
        rope_theta=config.rope_theta,
        tie_word_embeddings=False,
        use_cache=False,
        attn_implementation="sdpa",
    )
    return transformers.LlamaForCausalLM(hf_config)


def make_step(model: torch.nn.Module, is_reference: bool, precision: str, device: torch.device):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1, foreach=True)
    autocast = (
        (lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16))
        if precision == "bf16"
        else nullcontext
    )

    def step(inputs: torch.Tensor, targets: torch.Tensor) -> float:
        start = time.perf_counter()
        with autocast():
            logits = model(inputs).logits if is_reference else model(inputs)
        loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _synchronize(device)
        return time.perf_counter() - start

    return step


def benchmark_shape(
    shape: dict, steps: int, warmup: int, precision: str, device: torch.device, compile_ours: bool
) -> dict:
    config = ModelConfig(**shape, vocab_size=VOCAB_SIZE, seq_len=SEQ_LEN)
    torch.manual_seed(0)
    ours = Llama(config).to(device).train()
    reference = reference_model(config).to(device).train()
    step_ours = make_step(torch.compile(ours) if compile_ours else ours, False, precision, device)
    step_reference = make_step(reference, True, precision, device)

    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(0, VOCAB_SIZE, (BATCH_SIZE, SEQ_LEN + 1), generator=generator).to(device)
    inputs, targets = rows[:, :-1], rows[:, 1:]

    times_ours, times_reference = [], []
    for index in range(warmup + steps):
        seconds_ours = step_ours(inputs, targets)
        seconds_reference = step_reference(inputs, targets)
        if index >= warmup:
            times_ours.append(seconds_ours)
            times_reference.append(seconds_reference)

    tokens_per_step = BATCH_SIZE * SEQ_LEN
    ours_tokens_per_s = tokens_per_step / statistics.median(times_ours)
    reference_tokens_per_s = tokens_per_step / statistics.median(times_reference)
    return {
        **shape,
        "num_params": config.num_params,
        "flops_per_token": config.flops_per_token,
        "ours_tokens_per_s": ours_tokens_per_s,
        "reference_tokens_per_s": reference_tokens_per_s,
        "ratio": ours_tokens_per_s / reference_tokens_per_s,
        "ours_flops_per_s": ours_tokens_per_s * config.flops_per_token,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="Time 3 steps per model instead of 10.")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads (default: all CPUs).")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="fp32, or bf16 autocast.")
    parser.add_argument("--compile", action="store_true", help="Run our model through torch.compile.")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="torch device.")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    steps, warmup = (3, 1) if args.quick else (10, 2)
    if args.compile:
        warmup += 1  # the first compiled step compiles, the second may recompile for the backward
    peak_dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32
    peak = measure_matmul_peak(peak_dtype, device)
    print(f"device {device}, {args.threads} threads, {args.precision}, compile {args.compile}; matmul peak {peak / 1e9:.1f} GFLOP/s", flush=True)
    print(f"batch {BATCH_SIZE} x seq {SEQ_LEN}, vocab {VOCAB_SIZE}, {steps} timed steps after {warmup} warmup", flush=True)

    results = []
    for shape in SHAPES:
        result = benchmark_shape(shape, steps, warmup, args.precision, device, args.compile)
        result["mfu"] = result["ours_flops_per_s"] / peak
        results.append(result)
        print(
            f"d_model {result['d_model']:4d} n_layers {result['n_layers']:2d}: "
            f"ours {result['ours_tokens_per_s']:8.0f} tokens/s, "
            f"transformers {result['reference_tokens_per_s']:8.0f} tokens/s, "
            f"ratio {result['ratio']:.2f}, ours {result['ours_flops_per_s'] / 1e9:.1f} GFLOP/s "
            f"= {result['mfu']:.0%} of matmul peak",
            flush=True,
        )

    summary = {
        "benchmark": "train_throughput",
        "device": str(device),
        "threads": args.threads,
        "precision": args.precision,
        "compile": args.compile,
        "steps": steps,
        "matmul_peak_flops_per_s": peak,
        "results": results,
        "speedup": results[-1]["ratio"],
        "mfu": results[-1]["mfu"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
