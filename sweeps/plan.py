"""Expand a sweep spec into its IsoFLOP grid of runs, with costs, checks and time estimates.

For each budget C and target size, the model shape comes from the size-family rule
(`model.sizes.config_for_num_params`), and D = C / (6·N) with N the parameter count of that
shape, rounded to a whole number of optimizer steps. Each run's id is a hash of its resolved
config, so the same spec always yields the same ids.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sweeps.spec import SweepSpec

logger = logging.getLogger(__name__)

__all__ = [
    "ESTIMATED_FLOPS_PER_S",
    "Plan",
    "PlanError",
    "PlannedRun",
    "compute_run_id",
    "measure_flops_per_s",
    "plan_sweep",
]

# Training throughput assumed when none is measured: 1.5e11 FLOP/s, the middle of 1e12 FLOPs in
# 5-10 s that small LLaMA models reach on two cores of a 2024 x86 CPU with torch 2.13 in fp32.
ESTIMATED_FLOPS_PER_S = 1.5e11


class PlanError(ValueError):
    """A sweep that cannot run as specified; the message names the budget, size and fix."""


@dataclass(frozen=True)
class PlannedRun:
    """One grid point: a model size trained on D tokens for one budget and seed."""

    run_id: str
    sweep: str
    budget_flops: float
    seed: int
    target_num_params: float
    model: dict[str, Any]
    num_params: int
    num_non_embedding_params: int
    num_tokens: int
    steps: int
    batch_size: int
    seq_len: int
    lr: float
    compute_flops: float
    compute_flops_6nd: float
    tokens_per_param: float
    epochs: float | None
    est_time_s: float
    checkpoint_url: str
    train_config: dict[str, Any]

    @property
    def flops_per_token(self) -> float:
        return self.compute_flops / self.num_tokens

    def store_row(self, data: str) -> dict[str, Any]:
        """Build the row written by `Store.upsert_run`: `config` is exactly the `TrainConfig` dict."""
        return {
            "id": self.run_id,
            "sweep": self.sweep,
            "config": self.train_config,
            **{name: self.model[name] for name in ("d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "vocab_size", "seq_len")},
            "budget_flops": self.budget_flops,
            "seed": self.seed,
            "num_params": self.num_params,
            "num_non_embedding_params": self.num_non_embedding_params,
            "flops_per_token": self.flops_per_token,
            "flops_per_token_6n": 6.0 * self.num_params,
            "num_tokens": self.num_tokens,
            "compute_flops": self.compute_flops,
            "compute_flops_6nd": self.compute_flops_6nd,
            "conventions": {
                "num_tokens": "budget_flops / (6 num_params), rounded to whole optimizer steps",
                "num_params": "size-family shape nearest target_num_params",
                "target_num_params": self.target_num_params,
                "tokens_per_param": self.tokens_per_param,
                "steps": self.steps,
                "epochs": self.epochs,
                "data": data,
                "checkpoint_url": self.checkpoint_url,
            },
        }


@dataclass
class Plan:
    """The expanded grid of a sweep."""

    spec: SweepSpec
    runs: list[PlannedRun]
    warnings: list[str] = field(default_factory=list)
    corpus_num_tokens: int | None = None
    vocab_size: int = 0
    flops_per_s: float = ESTIMATED_FLOPS_PER_S
    throughput_source: str = "estimate"

    @property
    def total_compute_flops(self) -> float:
        return sum(run.compute_flops for run in self.runs)

    @property
    def total_est_time_s(self) -> float:
        """Serial time of all runs at the plan's throughput, in seconds."""
        return sum(run.est_time_s for run in self.runs)

    def budgets(self) -> list[float]:
        return sorted({run.budget_flops for run in self.runs})

    def to_dict(self) -> dict[str, Any]:
        """Build a JSON-serialisable summary of the plan."""
        return {
            "sweep": self.spec.name,
            "data": self.spec.data,
            "vocab_size": self.vocab_size,
            "corpus_num_tokens": self.corpus_num_tokens,
            "flops_per_s": self.flops_per_s,
            "throughput_source": self.throughput_source,
            "total_compute_flops": self.total_compute_flops,
            "total_est_time_s": self.total_est_time_s,
            "warnings": self.warnings,
            "runs": [
                {
                    "run_id": run.run_id,
                    "budget_flops": run.budget_flops,
                    "seed": run.seed,
                    "d_model": run.model["d_model"],
                    "n_layers": run.model["n_layers"],
                    "n_heads": run.model["n_heads"],
                    "num_params": run.num_params,
                    "num_non_embedding_params": run.num_non_embedding_params,
                    "num_tokens": run.num_tokens,
                    "tokens_per_param": run.tokens_per_param,
                    "steps": run.steps,
                    "batch_size": run.batch_size,
                    "lr": run.lr,
                    "compute_flops": run.compute_flops,
                    "compute_flops_6nd": run.compute_flops_6nd,
                    "epochs": run.epochs,
                    "est_time_s": run.est_time_s,
                    "checkpoint_url": run.checkpoint_url,
                }
                for run in self.runs
            ],
        }


def compute_run_id(sweep: str, data: str, train_config: dict[str, Any]) -> str:
    """Hash the resolved run config into a 16-hex-digit id, identical in every process.

    The data path enters as written in the spec, so moving the working folder keeps the ids.
    """
    canonical = json.dumps({"sweep": sweep, "data": data, "train": train_config}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def resolve_path(location: str) -> str:
    """Make a local path absolute so that Ray workers in other folders find it; keep URLs as they are."""
    if "://" in location:
        return location.rstrip("/")
    return str(Path(location).expanduser().resolve())


def _checkpoint_url(root: str, sweep: str, run_id: str) -> str:
    return f"{resolve_path(root)}/{sweep}/{run_id}.ckpt"


def _corpus_facts(spec: SweepSpec) -> tuple[int | None, int | None]:
    """Return (vocab_size, num_tokens_train) of the spec's corpus, or (None, None) when it is absent."""
    path = Path(spec.data).expanduser()
    if not path.exists():
        return None, None
    from model.corpus import Corpus

    corpus = Corpus.open(path)
    return int(corpus.info.vocab_size), int(corpus.info.num_tokens_train)


def _learning_rate(spec: SweepSpec, model_config: Any) -> float:
    rule = spec.lr
    if rule.rule == "constant":
        assert rule.value is not None
        return float(rule.value)
    if rule.rule == "power_law":
        assert rule.value is not None
        return float(rule.value * (model_config.num_params / rule.ref_params) ** (-rule.exponent))
    from model.train_config import kaplan_lr

    return float(kaplan_lr(model_config.num_non_embedding_params))


def _train_config(spec: SweepSpec, model_config: Any, num_tokens: int, steps: int, seed: int, lr: float) -> dict[str, Any]:
    """Build the resolved training config of one run, in the fields of `model.train.TrainConfig`."""
    if spec.eval_interval_tokens is not None:
        eval_interval_tokens = int(spec.eval_interval_tokens)
    else:
        eval_steps = max(1, round(steps / spec.evals_per_run))
        eval_interval_tokens = eval_steps * spec.tokens_per_step
    if spec.storage.checkpoint_interval_steps is not None:
        checkpoint_interval_steps = spec.storage.checkpoint_interval_steps
    else:
        checkpoint_interval_steps = max(1, math.ceil(steps / spec.storage.checkpoints_per_run))
    config: dict[str, Any] = {
        "model": model_config.to_dict(),
        "num_tokens": num_tokens,
        "batch_size": spec.batch_size,
        "seq_len": spec.seq_len,
        "lr": lr,
        "warmup_tokens": max(spec.tokens_per_step, int(round(spec.train.warmup_fraction * num_tokens))),
        "seed": seed,
        "eval_interval_tokens": eval_interval_tokens,
        "precision": spec.precision,
        "compile": spec.train.compile,
        "checkpoint_interval_steps": checkpoint_interval_steps,
    }
    for name in ("min_lr_ratio", "weight_decay", "grad_clip", "eval_batches", "divergence_factor"):
        value = getattr(spec.train, name)
        if value is not None:
            config[name] = value
    return config


def _format_count(value: float) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.3g}"


def plan_sweep(
    spec: SweepSpec,
    *,
    max_total_flops: float | None = None,
    flops_per_s: float | None = None,
    measure: bool = False,
) -> Plan:
    """Expand `spec` into runs, raising PlanError for a grid that cannot inform the fit.

    Raises when a run would take fewer than one optimizer step, when a budget keeps fewer than
    `spec.min_sizes_per_budget` distinct sizes, or when the total cost exceeds `max_total_flops`.
    Time estimates use `flops_per_s` when given, a measurement of a few training steps when
    `measure` is set, and `ESTIMATED_FLOPS_PER_S` otherwise. `Plan.throughput_source` records which.
    """
    from model.config import ModelConfig
    from model.sizes import config_for_num_params

    vocab_size, corpus_tokens = _corpus_facts(spec)
    warnings: list[str] = []
    if vocab_size is None:
        if spec.vocab_size is None:
            raise PlanError(
                f"corpus {spec.data!r} not found: prepare it with `scalelab data prepare --out {spec.data}`, "
                "or set vocab_size in the spec to plan without it"
            )
        vocab_size = spec.vocab_size
        warnings.append(f"corpus {spec.data!r} not found: planned with vocab_size {vocab_size} and no epoch counts")
    elif spec.vocab_size is not None and spec.vocab_size != vocab_size:
        raise PlanError(
            f"vocab_size {spec.vocab_size} in the spec differs from the corpus {spec.data!r} ({vocab_size}); "
            "remove vocab_size from the spec or point data at the matching corpus"
        )

    runs: list[PlannedRun] = []
    for budget in spec.budget_values():
        shapes: list[tuple[float, ModelConfig]] = []
        seen: set[tuple[int, int, int]] = set()
        for target in spec.models.targets(budget):
            try:
                shape = config_for_num_params(target, vocab_size, spec.seq_len)
            except ValueError as error:
                if spec.models.num_sizes is not None:
                    # A spread around N_opt may reach below the smallest shape; those points drop out
                    # and the minimum-sizes check below decides whether the budget still works.
                    warnings.append(f"budget {budget:.3g}: target {_format_count(target)} is below the smallest model; dropped")
                    continue
                raise PlanError(
                    f"budget {budget:.3g} FLOPs: size {_format_count(target)} does not fit: {error} "
                    "Raise the budget or choose larger sizes."
                ) from None
            key = (shape.d_model, shape.n_layers, shape.d_ff)
            if key in seen:
                warnings.append(
                    f"budget {budget:.3g}: target {_format_count(target)} maps to the same shape as a smaller "
                    f"target (d_model {shape.d_model}, n_layers {shape.n_layers}); kept once"
                )
                continue
            seen.add(key)
            shapes.append((target, shape))

        for target, shape in shapes:
            ideal_tokens = budget / (6.0 * shape.num_params)
            exact_steps = ideal_tokens / spec.tokens_per_step
            if exact_steps < 1:
                min_budget = 6.0 * shape.num_params * spec.tokens_per_step
                raise PlanError(
                    f"budget {budget:.3g} FLOPs with size {_format_count(shape.num_params)} "
                    f"(target {_format_count(target)}) gives {exact_steps:.2f} optimizer steps of "
                    f"{spec.tokens_per_step} tokens, fewer than one: raise the budget to at least "
                    f"{min_budget:.3g} FLOPs, drop this size, or lower tokens_per_step"
                )

        if len(shapes) < spec.min_sizes_per_budget:
            sizes = ", ".join(_format_count(shape.num_params) for _, shape in shapes)
            raise PlanError(
                f"budget {budget:.3g} FLOPs has {len(shapes)} distinct model sizes ({sizes}), fewer than "
                f"{spec.min_sizes_per_budget} needed to fit a parabola in log N: widen models.ratio_range, "
                "lower models.tokens_per_param, list more sizes, or raise the budget so that more "
                "sizes are above the smallest model and get distinct shapes"
            )

        for seed in spec.seeds:
            for target, shape in shapes:
                steps = max(1, round(budget / (6.0 * shape.num_params) / spec.tokens_per_step))
                num_tokens = steps * spec.tokens_per_step
                lr = _learning_rate(spec, shape)
                train_config = _train_config(spec, shape, num_tokens, steps, seed, lr)
                run_id = compute_run_id(spec.name, spec.data, train_config)
                epochs = num_tokens / corpus_tokens if corpus_tokens else None
                if epochs is not None and epochs > 1:
                    warnings.append(
                        f"run {run_id} (budget {budget:.3g}, N {_format_count(shape.num_params)}) repeats the corpus: "
                        f"{epochs:.2f} epochs of {corpus_tokens} training tokens"
                    )
                compute_flops = float(shape.flops_per_token) * num_tokens
                runs.append(
                    PlannedRun(
                        run_id=run_id,
                        sweep=spec.name,
                        budget_flops=float(budget),
                        seed=seed,
                        target_num_params=float(target),
                        model=shape.to_dict(),
                        num_params=int(shape.num_params),
                        num_non_embedding_params=int(shape.num_non_embedding_params),
                        num_tokens=num_tokens,
                        steps=steps,
                        batch_size=spec.batch_size,
                        seq_len=spec.seq_len,
                        lr=lr,
                        compute_flops=compute_flops,
                        compute_flops_6nd=6.0 * shape.num_params * num_tokens,
                        tokens_per_param=num_tokens / shape.num_params,
                        epochs=epochs,
                        est_time_s=0.0,
                        checkpoint_url=_checkpoint_url(spec.storage.checkpoint_root, spec.name, run_id),
                        train_config=train_config,
                    )
                )

    plan = Plan(spec=spec, runs=runs, warnings=warnings, corpus_num_tokens=corpus_tokens, vocab_size=vocab_size)
    if max_total_flops is not None and plan.total_compute_flops > max_total_flops:
        raise PlanError(
            f"sweep {spec.name!r} costs {plan.total_compute_flops:.3g} FLOPs (with attention), above "
            f"--max-total-flops {max_total_flops:.3g}: drop budgets, sizes or seeds, or raise the limit"
        )

    if flops_per_s is not None:
        plan.flops_per_s, plan.throughput_source = float(flops_per_s), "given"
    elif measure and runs:
        plan.flops_per_s = measure_flops_per_s(spec, runs)
        plan.throughput_source = "measured"
    plan.runs = [_with_estimate(run, plan.flops_per_s) for run in runs]
    return plan


def _with_estimate(run: PlannedRun, flops_per_s: float) -> PlannedRun:
    return replace(run, est_time_s=run.compute_flops / flops_per_s)


def measure_flops_per_s(spec: SweepSpec, runs: list[PlannedRun], *, steps: int = 3) -> float:
    """Time a few training steps of the plan's median-size model and return its FLOP/s.

    Uses random token ids (throughput does not depend on the text), the spec's batch shape and
    precision, and as many threads as `resources.num_cpus`. Tiny models reach lower FLOP/s than
    this median, so the estimate is optimistic for the smallest runs.
    """
    import time

    import torch

    from model.config import ModelConfig
    from model.llama import Llama

    median = sorted(runs, key=lambda run: run.num_params)[len(runs) // 2]
    config = ModelConfig.from_dict(median.model)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(spec.resources.num_cpus)))
    try:
        torch.manual_seed(0)
        model = Llama(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        tokens = torch.randint(0, config.vocab_size, (spec.batch_size, spec.seq_len + 1))
        autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=spec.precision == "bf16")

        def train_step() -> None:
            with autocast:
                logits = model(tokens[:, :-1])
                loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), tokens[:, 1:].flatten())
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        train_step()  # the first step allocates optimizer state and warms kernels
        start = time.perf_counter()
        for _ in range(steps):
            train_step()
        elapsed = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous_threads)
    flops_per_s = median.flops_per_token * spec.tokens_per_step * steps / elapsed
    logger.info("measured %.3g FLOP/s on N=%d over %d steps", flops_per_s, median.num_params, steps)
    return flops_per_s


def local_parallel_slots(spec: SweepSpec) -> int:
    """Runs this machine can hold side by side with the spec's CPUs per run."""
    return max(1, int((os.cpu_count() or 1) // spec.resources.num_cpus))
