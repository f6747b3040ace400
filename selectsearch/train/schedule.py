"""The learning-rate schedule and the seed helper every trainer uses.

One schedule: linear warm-up, then linear decay to zero at the last step (or a constant rate).
It is Hugging Face's ``get_linear_schedule_with_warmup`` shifted by one step, so that the first
step already learns: the factor of step ``s`` (0-based) is ``(s + 1) / (warmup + 1)`` while
``s < warmup``, peaks at 1 on step ``warmup``, then falls as ``(total - s) / (total - warmup)``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

__all__ = ["DECAYS", "lr_scheduler", "seed_everything", "warmup_decay"]

#: what happens after the warm-up
DECAYS = ("linear", "constant")


def warmup_decay(warmup: int, total: int, *, decay: str = "linear",
                 decay_start: int | None = None) -> Callable[[int], float]:
    """The learning-rate factor of each step (a ``LambdaLR`` lambda).

    Args:
        warmup: steps before the peak (0: the first step is at the peak).
        total: steps of the run (the linear decay reaches 0 there).
        decay: ``"linear"`` or ``"constant"`` after the warm-up.
        decay_start: the linear decay is ``(total - step) / (total - decay_start)``; default
            ``warmup`` (the multi-task trainer holds the peak one step longer: ``warmup + 1``).

    Example:
        >>> f = warmup_decay(2, 6)
        >>> [round(f(s), 3) for s in range(6)]
        [0.333, 0.667, 1.0, 0.75, 0.5, 0.25]
    """
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {DECAYS}, got {decay!r}")
    start = warmup if decay_start is None else decay_start

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if decay == "constant":
            return 1.0
        return min(1.0, max(0.0, (total - step) / max(1, total - start)))

    return factor


def lr_scheduler(optimizer: Any, warmup: int, total: int, *, decay: str = "linear",
                 decay_start: int | None = None) -> Any:
    """A torch ``LambdaLR`` over :func:`warmup_decay`."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_decay(warmup, total, decay=decay,
                                                                     decay_start=decay_start))


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators (dropout, head initialisation)."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
