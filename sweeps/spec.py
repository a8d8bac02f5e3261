"""The sweep spec: a YAML file validated on load into a typed `SweepSpec`.

A spec names the data, the FLOP budgets, the model grid per budget, seeds, batch shape,
learning-rate rule, evaluation cadence, resources per run, retry policy, storage and precision.
Unknown keys are rejected, and every error names the key path and the value.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

__all__ = [
    "BudgetRange",
    "LrRule",
    "ModelGrid",
    "Resources",
    "RetryPolicy",
    "SpecError",
    "Storage",
    "SweepSpec",
    "TrainOptions",
    "load_spec",
    "parse_number",
    "spec_from_dict",
]


class SpecError(ValueError):
    """Invalid sweep spec; the message names the key path, the value and the fix."""


_SUFFIXES = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([kKmMbBgGtT]?)\s*$")


def parse_number(value: Any) -> Any:
    """Convert `1e18`, `"1e18"`, `"150M"`, `"7B"` or `"2.5k"` to a float; leave other values alone.

    Suffixes are decimal: k = 1e3, M = 1e6, B or G = 1e9, T = 1e12. PyYAML follows YAML 1.1,
    which reads `1e18` (no dot) as a string, so every numeric field passes through here.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = _NUMBER.match(value)
        if match:
            number, suffix = match.groups()
            return float(number) * _SUFFIXES.get(suffix.lower(), 1.0)
    return value


def _parse_count(value: Any) -> Any:
    number = parse_number(value)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return number


Number = Annotated[float, BeforeValidator(parse_number)]
Count = Annotated[int, BeforeValidator(_parse_count)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BudgetRange(_Strict):
    """Log-spaced FLOP budgets from `start` to `stop`, both included."""

    start: Number = Field(gt=0)
    stop: Number = Field(gt=0)
    num: int = Field(ge=1)

    @model_validator(mode="after")
    def _check_order(self) -> BudgetRange:
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop:g} is below start {self.start:g}; swap them")
        if self.num > 1 and self.stop == self.start:
            raise ValueError(f"start equals stop ({self.start:g}) but num is {self.num}; widen the range or set num: 1")
        return self

    def values(self) -> list[float]:
        if self.num == 1:
            return [self.start]
        log_start, log_stop = math.log(self.start), math.log(self.stop)
        step = (log_stop - log_start) / (self.num - 1)
        return [float(f"{math.exp(log_start + i * step):.6g}") for i in range(self.num)]


class ModelGrid(_Strict):
    """Model sizes per budget: explicit `sizes`, or `num_sizes` spread in log N around N_opt.

    The expected optimum follows Chinchilla's rule of thumb D = tokens_per_param · N with C = 6·N·D,
    so N_opt = sqrt(C / (6 · tokens_per_param)). The spread covers N_opt / sqrt(ratio_range) to
    N_opt · sqrt(ratio_range), so `ratio_range` is the ratio of the largest to the smallest target N.
    """

    sizes: list[Count] | None = None
    num_sizes: int | None = Field(default=None, ge=1)
    tokens_per_param: Number = Field(default=20.0, gt=0)
    ratio_range: Number = Field(default=8.0, gt=1)

    @model_validator(mode="after")
    def _check_choice(self) -> ModelGrid:
        if (self.sizes is None) == (self.num_sizes is None):
            raise ValueError("set exactly one of 'sizes' (a list such as [1M, 2M]) or 'num_sizes' (such as 5)")
        if self.sizes is not None:
            for size in self.sizes:
                if size <= 0:
                    raise ValueError(f"size {size} must be a positive parameter count such as 150M")
        return self

    def targets(self, budget_flops: float) -> list[float]:
        """Target parameter counts for one budget, smallest first."""
        if self.sizes is not None:
            return sorted(float(size) for size in self.sizes)
        assert self.num_sizes is not None
        n_opt = math.sqrt(budget_flops / (6.0 * self.tokens_per_param))
        if self.num_sizes == 1:
            return [n_opt]
        half_span = math.log(self.ratio_range) / 2
        step = 2 * half_span / (self.num_sizes - 1)
        return [n_opt * math.exp(-half_span + i * step) for i in range(self.num_sizes)]


class LrRule(_Strict):
    """Peak learning rate per run.

    - `default`: the model package's rule for the run's model size.
    - `constant`: `value` for every run.
    - `power_law`: lr = value · (num_params / ref_params) ^ (-exponent), so larger models train
      with smaller rates; `ref_params` is the size that gets exactly `value`.
    """

    rule: Literal["default", "constant", "power_law"] = "default"
    value: Number | None = Field(default=None, gt=0)
    ref_params: Number = Field(default=1e6, gt=0)
    exponent: Number = 0.5

    @model_validator(mode="after")
    def _check_value(self) -> LrRule:
        if self.rule in ("constant", "power_law") and self.value is None:
            raise ValueError(f"rule '{self.rule}' needs 'value', the peak learning rate such as 3e-3")
        if self.rule == "default" and self.value is not None:
            raise ValueError("rule 'default' takes no 'value'; use rule: constant to fix the rate")
        return self


class Resources(_Strict):
    """Ray resources per run. Fractions such as num_gpus: 0.25 pack several runs on one device."""

    num_cpus: Number = Field(default=1.0, gt=0)
    num_gpus: Number = Field(default=0.0, ge=0)
    custom: dict[str, Number] = Field(default_factory=dict)


class RetryPolicy(_Strict):
    """Retries after a failure (an exception in the run) and, separately, after a preemption.

    A preemption (the run's worker or node died, or its heartbeat stopped for
    `heartbeat_timeout_s`) resumes from the latest checkpoint and uses up `max_preemptions`,
    never `max_retries`.
    """

    max_retries: int = Field(default=1, ge=0)
    max_preemptions: int = Field(default=20, ge=0)
    heartbeat_timeout_s: Number = Field(default=300.0, gt=0)


class Storage(_Strict):
    """Where checkpoints go: a local folder or any fsspec URL such as s3://bucket/prefix."""

    checkpoint_root: str = "checkpoints"
    checkpoint_interval_steps: int | None = Field(default=None, ge=1)
    checkpoints_per_run: int = Field(default=4, ge=1)


class TrainOptions(_Strict):
    """Training settings shared by every run of the sweep; None keeps the model package's default."""

    warmup_fraction: Number = Field(default=0.05, ge=0, lt=1)
    min_lr_ratio: Number | None = Field(default=None, ge=0, le=1)
    weight_decay: Number | None = Field(default=None, ge=0)
    grad_clip: Number | None = Field(default=None, gt=0)
    eval_batches: int | None = Field(default=None, ge=1)
    divergence_factor: Number | None = Field(default=None, gt=1)
    compile: bool = False


def _budget_form(value: Any) -> str:
    # Choosing the branch up front keeps errors to the form the user wrote.
    return "range" if isinstance(value, (dict, BudgetRange)) else "list"


class SweepSpec(_Strict):
    """A whole IsoFLOP sweep."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    data: str = Field(min_length=1)
    budgets: Annotated[
        Annotated[list[Number], Tag("list")] | Annotated[BudgetRange, Tag("range")],
        Discriminator(_budget_form),
    ]
    models: ModelGrid
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    seq_len: int = Field(default=256, ge=1)
    tokens_per_step: Count = Field(default=2048, ge=1)
    vocab_size: int | None = Field(default=None, ge=2)
    lr: LrRule = Field(default_factory=LrRule)
    evals_per_run: int = Field(default=10, ge=1)
    eval_interval_tokens: Count | None = Field(default=None, ge=1)
    resources: Resources = Field(default_factory=Resources)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    storage: Storage = Field(default_factory=Storage)
    precision: Literal["fp32", "bf16"] = "fp32"
    train: TrainOptions = Field(default_factory=TrainOptions)
    min_sizes_per_budget: int = Field(default=4, ge=1)

    @model_validator(mode="after")
    def _check_shape(self) -> SweepSpec:
        if self.tokens_per_step % self.seq_len:
            raise ValueError(
                f"tokens_per_step {self.tokens_per_step} is not a multiple of seq_len {self.seq_len}; "
                f"use a multiple such as {max(1, round(self.tokens_per_step / self.seq_len)) * self.seq_len}"
            )
        budgets = self.budget_values()
        for budget in budgets:
            if budget <= 0:
                raise ValueError(f"budget {budget:g} FLOPs must be positive")
        if len(set(budgets)) != len(budgets):
            raise ValueError(f"budgets {budgets} repeat a value; list each budget once")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds {self.seeds} repeat a value; list each seed once")
        return self

    @property
    def batch_size(self) -> int:
        """Sequences per optimizer step."""
        return self.tokens_per_step // self.seq_len

    def budget_values(self) -> list[float]:
        """FLOP budgets, smallest first."""
        if isinstance(self.budgets, BudgetRange):
            return self.budgets.values()
        return sorted(float(budget) for budget in self.budgets)


def _format_location(location: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in location:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("list", "range"):
            # Tags of the budgets union; the user only needs the key path.
            continue
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts) or "(top level)"


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    seen = set()
    for item in error.errors():
        where = _format_location(item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling against docs/sweeps.md"
        key = (where, message)
        if key in seen:
            continue
        seen.add(key)
        value = item.get("input")
        shown = "" if item["type"] == "missing" else f" (got {value!r})"
        lines.append(f"{where}: {message}{shown}")
    return f"invalid sweep spec {source}: " + "; ".join(lines)


def spec_from_dict(data: dict[str, Any], *, source: str = "<dict>") -> SweepSpec:
    """Validate a spec given as a dict; raise SpecError naming the key path and the value."""
    if not isinstance(data, dict):
        raise SpecError(f"invalid sweep spec {source}: expected a mapping of keys, got {type(data).__name__}")
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(_describe(error, source)) from None


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, also reading YAML 1.2 floats without a dot such as `1e18`."""


_SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789"),
)


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a YAML sweep spec; raise SpecError (a ValueError) on any problem."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"sweep spec {str(path)!r} not found; pass the path of a YAML file such as sweeps/examples/isoflop_quick.yaml")
    try:
        data = yaml.load(path.read_text(), Loader=_SpecLoader)
    except yaml.YAMLError as error:
        raise SpecError(f"sweep spec {str(path)!r} is not valid YAML: {' '.join(str(error).split())}") from None
    return spec_from_dict(data, source=repr(str(path)))
