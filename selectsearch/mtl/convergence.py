"""Per-task convergence detection on a validation-metric curve (patience + min_delta).

Example:
    >>> tracker = ConvergenceTracker(patience=2, min_delta=0.5)
    >>> [tracker.update(step, v) for step, v in [(1, 70.0), (2, 80.0), (3, 80.2), (4, 79.0)]]
    [False, False, False, True]
    >>> tracker.best_step, tracker.best_value, tracker.converged_step
    (3, 80.2, 4)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["ConvergenceTracker"]


@dataclass
class ConvergenceTracker:
    """Track one task's validation metric (higher is better).

    * The *best point* is the evaluation with the highest metric so far (ties: the earliest).
    * An evaluation *improves* when it beats the reference value by more than ``min_delta``;
      the reference is the metric at the last improvement.
    * The task has *converged* after ``patience`` consecutive evaluations without improvement
      (and at least ``min_evals`` evaluations in all). Convergence is reported once.

    Attributes:
        patience: evaluations without improvement before the task counts as converged.
        min_delta: the margin an evaluation must beat the reference by to count as improvement.
        min_evals: never declare convergence before this many evaluations.
    """

    patience: int = 3
    min_delta: float = 0.0
    min_evals: int = 0
    best_value: float | None = None
    best_step: int | None = None
    reference: float | None = None
    bad_evals: int = 0
    n_evals: int = 0
    converged_step: int | None = None

    def __post_init__(self) -> None:
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")

    @property
    def converged(self) -> bool:
        """Whether convergence has been declared."""
        return self.converged_step is not None

    def is_new_best(self, value: float) -> bool:
        """Whether ``value`` would become the new best point (without recording it)."""
        return self.best_value is None or value > self.best_value

    def update(self, step: int, value: float) -> bool:
        """Record the metric ``value`` measured at ``step``.

        Returns:
            True exactly once: at the evaluation where the task is declared converged.
        """
        self.n_evals += 1
        if self.is_new_best(value):
            self.best_value = value
            self.best_step = step
        if self.reference is None or value > self.reference + self.min_delta:
            self.reference = value
            self.bad_evals = 0
        else:
            self.bad_evals += 1
        if (self.converged_step is None and self.bad_evals >= self.patience
                and self.n_evals >= self.min_evals):
            self.converged_step = step
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state."""
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ConvergenceTracker:
        """Inverse of :meth:`state_dict`."""
        return cls(**state)
