"""Seeded epochs over rows held in memory, for training methods without a validation set.

:class:`PermutationEpochs` is the part of a :class:`~selectsearch.train.loop.TrainingMethod` that
such methods share: each epoch is a seeded permutation of the rows cut into batches of row
indices, the kernel validates at each epoch's end, and the validation record is the epoch's mean
training loss. ReAugKD's projection step and the shard ranker of ``hybrid@m`` use it.

Example:
    >>> class Mean(PermutationEpochs):  # doctest: +SKIP
    ...     def __init__(self, x):
    ...         self.x = x
    ...         self.init_epochs(len(x), batch_size=32, seed=0)
    ...     def compute_loss(self, batch):
    ...         loss = self.x[batch].pow(2).mean()
    ...         return loss, self.track(loss)
"""

from __future__ import annotations

from typing import Any

from selectsearch.train.callbacks import TrainState
from selectsearch.train.loop import TrainingMethod

__all__ = ["PermutationEpochs"]


class PermutationEpochs(TrainingMethod):
    """Batches of row indices from seeded permutations, and the mean loss of each epoch as its
    validation record. Subclasses call :meth:`init_epochs` and :meth:`track` (in ``compute_loss``)."""

    def init_epochs(self, n_rows: int, batch_size: int, seed: int, *, min_batch: int = 1) -> None:
        """Set up the batches: ``batch_size`` rows each; a last batch smaller than ``min_batch`` is
        left out of every epoch (a contrastive loss needs pairs)."""
        import torch

        self.n_rows = n_rows
        self.gen = torch.Generator().manual_seed(seed)
        self.batch_size = batch_size
        self.starts = [s for s in range(0, n_rows, batch_size) if n_rows - s >= min_batch]
        self.queue: list[Any] = []
        self.total, self.count = 0.0, 0

    def next_batch(self) -> Any:
        import torch

        if not self.queue:
            perm = torch.randperm(self.n_rows, generator=self.gen)
            self.queue = [perm[s : s + self.batch_size] for s in self.starts]
        return self.queue.pop(0)

    def track(self, loss: Any) -> dict[str, Any]:
        """The metrics of one batch's ``loss`` (a scalar tensor), counted into the epoch's mean."""
        value = float(loss.detach())
        self.total, self.count = self.total + value, self.count + 1
        return {"loss": value}

    def clip_groups(self) -> list[list[Any]]:
        return []

    def epoch_ended(self) -> bool:
        return not self.queue

    def evaluate(self, state: TrainState) -> dict[str, Any]:
        record = {"step": state.step, "loss": self.total / max(self.count, 1)}
        self.total, self.count = 0.0, 0
        return record
