"""How many examples of each task go into one training step, and which ones.

Every step draws one mixed batch: ``batch_size`` examples split over the tasks by a sampling
distribution, so all tasks share one encoder pass and every task has a loss in every step (which
the gradient-balancing baselines need). Shares are allocated deterministically by largest
remainder with at least one example per task.

* ``proportional``: ``p_t ~ n_t`` (dataset sizes).
* ``temperature``: ``p_t ~ n_t^(1/T)`` (``T=1`` proportional, ``T -> inf`` uniform).
* ``round-robin``: equal shares (every task the same number of examples per step).

Each task walks through its training set in a seeded random order, epoch after epoch; the
order of epoch ``e`` depends only on ``(seed, task index, e)``, so the state is two integers.

Example:
    >>> sampler = TaskSampler({"a": 1000, "b": 100}, batch_size=11, scheme="proportional")
    >>> sampler.counts
    {'a': 9, 'b': 2}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from selectsearch.errors import SelectSearchError

__all__ = ["SCHEMES", "TaskSampler", "allocate", "sampling_probabilities"]

SCHEMES = ("proportional", "temperature", "round-robin")


def sampling_probabilities(sizes: Mapping[str, int], scheme: str,
                           temperature: float = 2.0) -> dict[str, float]:
    """Task sampling probabilities for ``scheme``.

    Raises:
        SelectSearchError: unknown scheme or non-positive temperature.
    """
    if scheme not in SCHEMES:
        raise SelectSearchError(f"unknown sampling {scheme!r}; choose one of {SCHEMES}")
    if scheme == "round-robin":
        raw = {t: 1.0 for t in sizes}
    elif scheme == "proportional":
        raw = {t: float(n) for t, n in sizes.items()}
    else:
        if temperature <= 0:
            raise SelectSearchError(f"temperature must be > 0, got {temperature}")
        raw = {t: float(n) ** (1.0 / temperature) for t, n in sizes.items()}
    total = sum(raw.values())
    return {t: v / total for t, v in raw.items()}


def allocate(probs: Mapping[str, float], batch_size: int) -> dict[str, int]:
    """Split ``batch_size`` by largest remainder, at least one per task."""
    k = len(probs)
    if batch_size < k:
        raise SelectSearchError(f"batch_size {batch_size} < number of tasks {k}")
    free = batch_size - k
    exact = {t: p * free for t, p in probs.items()}
    counts = {t: 1 + int(np.floor(v)) for t, v in exact.items()}
    left = batch_size - sum(counts.values())
    order = sorted(probs, key=lambda t: (-(exact[t] - np.floor(exact[t])), list(probs).index(t)))
    for t in order[:left]:
        counts[t] += 1
    return counts


class TaskSampler:
    """Per-step example indices of every task (see module docstring)."""

    def __init__(self, sizes: Mapping[str, int], *, batch_size: int, scheme: str = "proportional",
                 temperature: float = 2.0, seed: int = 0) -> None:
        self.sizes = dict(sizes)
        self.seed = seed
        self.probabilities = sampling_probabilities(self.sizes, scheme, temperature)
        self.counts = allocate(self.probabilities, batch_size)
        self.position = {t: [0, 0] for t in self.sizes}  # task -> [epoch, offset]
        self._orders: dict[tuple[str, int], np.ndarray] = {}

    def _order(self, task: str, epoch: int) -> np.ndarray:
        key = (task, epoch)
        if key not in self._orders:
            k = list(self.sizes).index(task)
            rng = np.random.default_rng([self.seed, k, epoch])
            self._orders = {kk: v for kk, v in self._orders.items() if kk[0] != task}
            self._orders[key] = rng.permutation(self.sizes[task])
        return self._orders[key]

    def next_batch(self) -> dict[str, list[int]]:
        """Indices into each task's training set for the next step."""
        out: dict[str, list[int]] = {}
        for t, n in self.counts.items():
            idx: list[int] = []
            while len(idx) < n:
                epoch, off = self.position[t]
                order = self._order(t, epoch)
                take = order[off : off + n - len(idx)]
                idx.extend(int(i) for i in take)
                off += len(take)
                self.position[t] = [epoch + 1, 0] if off >= len(order) else [epoch, off]
            out[t] = idx
        return out

    def epochs(self) -> dict[str, float]:
        """Epochs completed per task (fractional)."""
        return {t: e + o / self.sizes[t] for t, (e, o) in self.position.items()}

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable position of every task."""
        return {"position": {t: list(v) for t, v in self.position.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.position = {t: [int(v[0]), int(v[1])] for t, v in state["position"].items()}
