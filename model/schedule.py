"""Learning-rate schedule: linear warmup, then cosine decay that ends at the run's last step.

Chinchilla (Hoffmann et al. 2022, appendix A) found that a cosine cycle longer than the run
overestimates the run's loss, so the cycle length is the run's own number of steps.
"""

from __future__ import annotations

import math


def lr_multiplier(step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Return the fraction of the peak learning rate used by 0-based optimizer step `step`.

    Warmup rises linearly to 1 at step `warmup_steps - 1`; the cosine then falls from 1 to
    `min_lr_ratio`, reached exactly at the last step `total_steps - 1`.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = total_steps - warmup_steps
    if decay_steps <= 0:
        return 1.0
    # progress is 1/decay_steps after the first decay step and 1 at the last step.
    progress = min(1.0, (step + 1 - warmup_steps) / decay_steps)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return min_lr_ratio + (1.0 - min_lr_ratio) * cosine
