"""Train one model on one corpus for one token budget, resumably.

`train_run` is the whole life of a run. It resumes from the checkpoint at `checkpoint_url` when
one is there and trains with AdamW and a warmup-cosine schedule that ends exactly at the run's own
token budget. It validates on fixed windows, stops on divergence or cancellation, and checkpoints.
On the CPU a run killed and resumed ends with the same weights and losses, bit for bit, as the
same run uninterrupted, because batches depend only on (seed, step) and the checkpoint contains every
other piece of state (weights, AdamW moments, scheduler, RNG states, loss points, running minimum).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from model.batches import TokenCorpus, check_corpus, eval_windows, open_corpus, train_batch
from model.checkpoint import load_checkpoint, save_checkpoint
from model.llama import Llama
from model.schedule import lr_multiplier
from model.train_config import TrainConfig, kaplan_lr

__all__ = ["RunResult", "TrainConfig", "kaplan_lr", "train_run"]

logger = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_S = 10.0
CHECKPOINT_FORMAT = 1


@dataclass
class RunResult:
    status: Literal["completed", "diverged", "cancelled"]
    final_train_loss: float | None
    """Train loss of the last step; None when the run diverged or was cancelled before any step."""
    final_val_loss: float | None
    """Validation loss at the last step; None unless the run completed."""
    steps: int
    """Optimizer steps taken, including those before a resume."""
    diverged_at_step: int | None
    loss_points: list[dict[str, Any]] = field(default_factory=list)
    """Every emitted point since step 0, in the layout of a loss event without `kind`."""
    wall_s: float = 0.0
    """Training wall time summed over every segment of the run, resumes included."""
    tokens_per_s: float = 0.0
    """Training throughput of this call, validation excluded."""


@dataclass
class _State:
    step: int = 0
    loss_points: list[dict[str, Any]] = field(default_factory=list)
    running_min: float = math.inf
    wall_s: float = 0.0


def _build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    # Weight decay on matrices only: RMSNorm gains (1-D) are not decayed.
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=(config.adam_beta1, config.adam_beta2), eps=config.adam_eps,
        # The fused CPU kernel differs from the for-each one in rounding; pin one for exact resume.
        foreach=True,
    )


def _autocast(config: TrainConfig, device: torch.device):
    if config.precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


@torch.no_grad()
def _evaluate(model: nn.Module, batches: list, config: TrainConfig, device: torch.device) -> float:
    model.eval()
    total = 0.0
    count = 0
    for inputs, targets in batches:
        with _autocast(config, device):
            logits = model(inputs.to(device))
        loss_sum = F.cross_entropy(logits.float().flatten(0, 1), targets.to(device).flatten(), reduction="sum")
        total += loss_sum.item()
        count += targets.numel()
    model.train()
    return total / count


def _forward_backward(
    forward: nn.Module,
    params: list[torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    config: TrainConfig,
    step: int,
    device: torch.device,
) -> tuple[float, float]:
    """Compute the loss and gradients of one batch and clip them; return the loss and the pre-clip norm."""
    with _autocast(config, device):
        logits = forward(inputs)  # (B, T, V)
    loss = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten())
    if config.inject_nan_at_step == step:
        loss = loss * float("nan")
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip).item()
    return loss.item(), grad_norm


def _comparable(config_dict: dict[str, Any]) -> dict[str, Any]:
    # Fields that change speed or bookkeeping but not the losses may differ on resume.
    ignored = {"compile", "checkpoint_interval_steps", "log_interval_steps"}
    return {key: value for key, value in config_dict.items() if key not in ignored}


def train_run(
    config: TrainConfig,
    corpus_path: str | Path | TokenCorpus,
    checkpoint_url: str | None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    num_threads: int | None = None,
    device: str | None = None,
) -> RunResult:
    """Train (or resume) one run and return its result.

    `corpus_path` is a prepared corpus folder (opened with `model.corpus.Corpus.open`) or any object
    with `.train`, `.val` token arrays and `.info.vocab_size`. `checkpoint_url` is a local path or
    fsspec URL of the run's checkpoint file, or None to train without checkpoints.
    `num_threads` sets torch's intra-op threads (a Ray task passes its CPU count).
    `device` defaults to CUDA when available, else the CPU.
    """
    on_event = on_event or (lambda event: None)
    should_stop = should_stop or (lambda: False)
    if num_threads is not None:
        if num_threads < 1:
            raise ValueError(f"num_threads={num_threads} is invalid: it must be at least 1.")
        torch.set_num_threads(num_threads)
    torch_device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))

    corpus = open_corpus(corpus_path)
    check_corpus(corpus, config.model.vocab_size, config.seq_len)
    checkpoint = load_checkpoint(checkpoint_url) if checkpoint_url else None
    if checkpoint is not None and _comparable(checkpoint["config"]) != _comparable(config.to_dict()):
        raise ValueError(
            f"checkpoint {checkpoint_url} belongs to a run with another config: "
            "use a new checkpoint URL for this config, or delete the old checkpoint."
        )

    torch.manual_seed(config.seed)
    model = Llama(config.model).to(torch_device)
    optimizer = _build_optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: lr_multiplier(step, config.warmup_steps, config.total_steps, config.min_lr_ratio),
    )
    state = _State()
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scheduler.load_state_dict(checkpoint["scheduler"])
        torch.set_rng_state(checkpoint["rng"]["torch"])
        state = _State(**checkpoint["state"])
        logger.info("resumed from %s at step %d of %d", checkpoint_url, state.step, config.total_steps)

    def write_checkpoint() -> None:
        if checkpoint_url is None:
            return
        payload = {
            "format": CHECKPOINT_FORMAT,
            "config": config.to_dict(),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state()},
            "state": {
                "step": state.step,
                "loss_points": state.loss_points,
                "running_min": state.running_min,
                "wall_s": state.wall_s,
            },
        }
        save_checkpoint(checkpoint_url, payload)

    forward = torch.compile(model) if config.compile else model
    val_batches = eval_windows(corpus.val, eval_batches=config.eval_batches, seq_len=config.seq_len)
    params = list(model.parameters())

    call_start = time.perf_counter()
    train_s = 0.0
    tokens_this_call = 0
    tokens_since_log = 0
    time_since_log = 0.0
    last_heartbeat = call_start
    status: Literal["completed", "diverged", "cancelled"] = "completed"
    diverged_at_step = None

    while state.step < config.total_steps:
        if should_stop():
            status = "cancelled"
            break
        step_start = time.perf_counter()
        step = state.step + 1  # 1-based number of the step being taken
        inputs, targets = train_batch(
            corpus.train, seed=config.seed, step=state.step, batch_size=config.batch_size, seq_len=config.seq_len
        )
        inputs, targets = inputs.to(torch_device), targets.to(torch_device)

        loss_value, grad_norm = _forward_backward(forward, params, inputs, targets, config, step, torch_device)
        lr = scheduler.get_last_lr()[0]

        diverged = (
            not math.isfinite(loss_value)
            or not math.isfinite(grad_norm)
            or loss_value > config.divergence_factor * state.running_min
        )
        if diverged:
            optimizer.zero_grad(set_to_none=True)
            status, diverged_at_step = "diverged", step
            logger.warning("run diverged at step %d: loss %s, grad_norm %s", step, loss_value, grad_norm)
            # The bad value is never reported as a loss: the point carries NaN and a flag.
            point = {
                "step": step, "tokens_seen": step * config.tokens_per_step, "train_loss": float("nan"),
                "val_loss": None, "lr": lr, "grad_norm": grad_norm if math.isfinite(grad_norm) else float("nan"),
                "tokens_per_s": None, "diverged": True,
            }
            state.loss_points.append(point)
            on_event({"kind": "loss", **point})
            break

        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step = step
        state.running_min = min(state.running_min, loss_value)

        elapsed = time.perf_counter() - step_start
        train_s += elapsed
        time_since_log += elapsed
        tokens_this_call += config.tokens_per_step
        tokens_since_log += config.tokens_per_step

        tokens_seen = step * config.tokens_per_step
        is_last = step == config.total_steps
        crossed_eval = tokens_seen // config.eval_interval_tokens > (tokens_seen - config.tokens_per_step) // config.eval_interval_tokens
        val_loss = _evaluate(forward, val_batches, config, torch_device) if (is_last or crossed_eval) else None
        if val_loss is not None or is_last or step % config.log_interval_steps == 0:
            point = {
                "step": step, "tokens_seen": tokens_seen, "train_loss": loss_value, "val_loss": val_loss,
                "lr": lr, "grad_norm": grad_norm, "tokens_per_s": tokens_since_log / max(time_since_log, 1e-9),
                "diverged": False,
            }
            state.loss_points.append(point)
            on_event({"kind": "loss", **point})
            tokens_since_log, time_since_log = 0, 0.0

        now = time.perf_counter()
        if now - last_heartbeat >= HEARTBEAT_INTERVAL_S:
            on_event({"kind": "heartbeat", "step": step})
            last_heartbeat = now
        if step % config.checkpoint_interval_steps == 0 or is_last:
            state.wall_s += now - call_start
            call_start = now
            write_checkpoint()

    state.wall_s += time.perf_counter() - call_start
    if status == "cancelled":
        write_checkpoint()
        logger.info("run cancelled at step %d (checkpoint: %s)", state.step, checkpoint_url)

    completed_points = [p for p in state.loss_points if not p["diverged"]]
    final_val = [p["val_loss"] for p in completed_points if p["val_loss"] is not None]
    return RunResult(
        status=status,
        final_train_loss=completed_points[-1]["train_loss"] if completed_points and status != "diverged" else None,
        final_val_loss=final_val[-1] if status == "completed" and final_val else None,
        steps=state.step,
        diverged_at_step=diverged_at_step,
        loss_points=state.loss_points,
        wall_s=state.wall_s,
        tokens_per_s=tokens_this_call / train_s if train_s > 0 else 0.0,
    )
