"""Training configuration of one run and the rule that sets learning rate and batch size per size.

Hyperparameter rule (`TrainConfig.from_rule`):

- Peak learning rate from Kaplan et al. (2020), equation D.1:
  lr = 0.003239 − 0.0001395·ln(N_non_embedding), clipped to [1e-4, 3e-3]. It falls slowly with
  size, from about 2e-3 at 10k non-embedding parameters to 3.7e-4 at 1B.
- Batch size: the largest power of two (in sequences) that still gives the run at least
  `MIN_STEPS` optimizer steps, between 1 sequence and `MAX_TOKENS_PER_STEP` tokens. Small budgets
  need many small steps more than large batches; LLaMA's 4M-token batches are far above any
  budget that trains on a CPU.
- Warmup over 5% of the run's tokens (at least one step), cosine to 10% of the peak at the last step.
- Validation every 10% of the run's tokens and at the end.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from model.config import ModelConfig

MIN_STEPS = 100
MAX_TOKENS_PER_STEP = 2**20
WARMUP_FRACTION = 0.05
EVAL_FRACTION = 0.1


def kaplan_lr(num_non_embedding_params: int) -> float:
    """Peak learning rate for a model size, from Kaplan et al. (2020), equation D.1, clipped."""
    lr = 0.003239 - 0.0001395 * math.log(num_non_embedding_params)
    return min(3e-3, max(1e-4, lr))


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Everything that determines a training run's result, stored with the run as JSON."""

    model: ModelConfig
    num_tokens: int
    """Token budget D of the run, rounded to an integer when given as a float.
    The run takes `num_tokens // tokens_per_step` steps."""
    batch_size: int
    """Sequences per optimizer step."""
    seq_len: int
    """Tokens per sequence; must equal `model.seq_len`."""
    lr: float
    """Peak learning rate, reached at the end of warmup."""
    warmup_tokens: int
    """Tokens of linear warmup from 0 to `lr`, rounded up to whole steps."""
    min_lr_ratio: float = 0.1
    """Final learning rate over peak: the cosine ends at this fraction at the last step."""
    weight_decay: float = 0.1
    """AdamW decoupled weight decay, applied to matrices (embedding, projections, head) only."""
    grad_clip: float = 1.0
    """Maximum global gradient L2 norm."""
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    seed: int = 0
    """Seeds the initial weights and the training batches."""
    eval_interval_tokens: int
    """Validation runs each time tokens seen crosses a multiple of this, and at the last step."""
    eval_batches: int = 8
    """Number of fixed validation batches of `model.batches.EVAL_BATCH_SIZE` sequences."""
    precision: Literal["fp32", "bf16"] = "fp32"
    """fp32, or bf16 autocast with fp32 weights and optimizer state."""
    compile: bool = False
    """Train through `torch.compile` (the first step pays for compilation)."""
    divergence_factor: float = 2.0
    """A train loss above this multiple of the running minimum ends the run as diverged."""
    checkpoint_interval_steps: int = 100
    """Steps between checkpoints; one is also written at the end and when the run is cancelled."""
    log_interval_steps: int = 1
    """Steps between train-loss events; validation steps and the last step always emit one."""
    inject_nan_at_step: int | None = None
    """Test only: make the loss of this 1-based step NaN, to exercise divergence handling."""

    def __post_init__(self) -> None:
        # D = C / (6N) arrives as a float from sweep planning, so it is rounded to whole tokens.
        if isinstance(self.num_tokens, float) and math.isfinite(self.num_tokens):
            object.__setattr__(self, "num_tokens", int(round(self.num_tokens)))
        for name in ("num_tokens", "batch_size", "seq_len", "warmup_tokens", "eval_interval_tokens",
                     "eval_batches", "checkpoint_interval_steps", "log_interval_steps"):
            value = getattr(self, name)
            if name == "warmup_tokens" and value == 0:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} is invalid: it must be a positive integer.")
        if self.seq_len != self.model.seq_len:
            raise ValueError(
                f"seq_len={self.seq_len} differs from the model's seq_len={self.model.seq_len}: "
                "build the model config with the training seq_len."
            )
        if self.num_tokens < self.tokens_per_step:
            raise ValueError(
                f"num_tokens={self.num_tokens} is less than one optimizer step of batch_size·seq_len = "
                f"{self.tokens_per_step} tokens: raise num_tokens or lower batch_size."
            )
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr={self.lr!r} is invalid: it must be a positive finite number.")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio={self.min_lr_ratio!r} is invalid: it must be in [0, 1].")
        if self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError(
                f"weight_decay={self.weight_decay!r} and grad_clip={self.grad_clip!r} are invalid: "
                "weight_decay must be >= 0 and grad_clip > 0."
            )
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision={self.precision!r} is invalid: use 'fp32' or 'bf16'.")
        if not self.divergence_factor > 1:
            raise ValueError(
                f"divergence_factor={self.divergence_factor!r} is invalid: it must be above 1."
            )

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    @property
    def total_steps(self) -> int:
        """Optimizer steps of the run; the remainder of num_tokens below one step is not trained."""
        return self.num_tokens // self.tokens_per_step

    @property
    def warmup_steps(self) -> int:
        return min(self.total_steps, math.ceil(self.warmup_tokens / self.tokens_per_step))

    @property
    def num_tokens_trained(self) -> int:
        """Tokens the run actually trains on: whole steps only."""
        return self.total_steps * self.tokens_per_step

    def accounting(self) -> dict[str, float | int]:
        """Return N, non-embedding N, FLOPs per token and C both ways, for storing with the run.

        C uses `num_tokens_trained`, the tokens of whole optimizer steps, as floats (1e21 overflows int64).
        """
        return {
            "num_params": self.model.num_params,
            "num_non_embedding_params": self.model.num_non_embedding_params,
            "flops_per_token": self.model.flops_per_token,
            "flops_per_token_6n": self.model.flops_per_token_6n,
            "num_tokens": self.num_tokens_trained,
            "compute_flops": self.model.flops_per_token * self.num_tokens_trained,
            "compute_flops_6nd": 6.0 * self.model.num_params * self.num_tokens_trained,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable fields, the model config nested under `model`."""
        data = dataclasses.asdict(self)
        data["model"] = self.model.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from `to_dict()` output; unknown keys raise ValueError."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown train config keys {unknown}: the valid keys are {sorted(known)}.")
        fields = dict(data)
        if isinstance(fields.get("model"), dict):
            fields["model"] = ModelConfig.from_dict(fields["model"])
        return cls(**fields)

    @classmethod
    def from_rule(cls, model: ModelConfig, num_tokens: float, **overrides: Any) -> TrainConfig:
        """Fill lr, batch_size, warmup and evaluation interval by this module's rule.

        Any field can be overridden by keyword; the result is the resolved config to store.
        """
        num_tokens = int(round(num_tokens))
        seq_len = overrides.get("seq_len", model.seq_len)
        if num_tokens < seq_len:
            raise ValueError(
                f"num_tokens={num_tokens} is less than one sequence of seq_len={seq_len} tokens, "
                "so no optimizer step fits: raise the budget or use a smaller model."
            )
        if "batch_size" in overrides:
            batch_size = overrides["batch_size"]
        else:
            max_batch = max(1, MAX_TOKENS_PER_STEP // seq_len)
            wanted = max(1, num_tokens // (MIN_STEPS * seq_len))
            batch_size = min(max_batch, 2 ** int(math.log2(wanted)))
        tokens_per_step = batch_size * seq_len
        defaults: dict[str, Any] = {
            "batch_size": batch_size,
            "seq_len": seq_len,
            "lr": kaplan_lr(model.num_non_embedding_params),
            "warmup_tokens": max(tokens_per_step, int(WARMUP_FRACTION * num_tokens)),
            "eval_interval_tokens": max(tokens_per_step, int(EVAL_FRACTION * num_tokens)),
        }
        defaults.update(overrides)
        return cls(model=model, num_tokens=num_tokens, **defaults)
