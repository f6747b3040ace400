"""The training kernel: one loop for every trainer (classifiers, ReAugKD, MICO, multi-task).

A :class:`TrainingMethod` supplies what is particular to one model — its optimiser and schedule,
its batches, its loss, its validation, what its checkpoints hold — and :class:`Trainer` does the
rest the same way for all: the optimiser step with gradient clipping, validation every
``eval_steps`` / at each epoch end / at the last step, keeping the best weights and stopping early
after ``patience`` validations without improvement, checkpoints (``save_steps``) that resume to
the same result as an uninterrupted run, and the callbacks
(:mod:`selectsearch.train.callbacks`).

One step is: ``batch = next_batch()``; ``loss, metrics = compute_loss(batch)``;
``backward(loss)``; clip each of ``clip_groups()`` to ``max_grad_norm``; ``optimizer.step()``;
``scheduler.step()``; ``optimizer.zero_grad(set_to_none=True)``. The kernel draws no random
numbers itself, so a method's seeds alone decide its result.

Example:
    >>> trainer = Trainer(method, args, total_steps=100, callbacks=[ProgressCallback()])  # doctest: +SKIP
    >>> state = trainer.train()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from selectsearch.train.arguments import TrainingArguments
from selectsearch.train.callbacks import TrainerCallback, TrainState
from selectsearch.train.checkpoint import CheckpointFiles, prune_checkpoints, read_checkpoint, write_checkpoint

__all__ = ["CheckpointPlan", "Trainer", "TrainingMethod"]

log = logging.getLogger(__name__)


class TrainingMethod(ABC):
    """What one training method plugs into :class:`Trainer`: model, batches, loss, validation.

    Subclasses set ``optimizer`` and ``scheduler`` (usually
    :func:`selectsearch.train.schedule.lr_scheduler`) and implement the three abstract methods;
    the other hooks have working defaults.
    """

    #: the method's name (logs, progress bars)
    name: str = "train"
    #: key of the validation record that selects the best weights (``None``: keep the last ones)
    metric_for_best_model: str | None = None
    optimizer: Any
    scheduler: Any

    @abstractmethod
    def next_batch(self) -> Any:
        """The next training batch (the method keeps its own position and generator)."""

    @abstractmethod
    def compute_loss(self, batch: Any) -> tuple[Any, dict[str, Any]]:
        """``(loss, metrics)`` of one batch; ``metrics["loss"]`` is the scalar shown in logs."""

    @abstractmethod
    def clip_groups(self) -> list[list[Any]]:
        """Parameter groups whose gradient norms are clipped separately to ``max_grad_norm``."""

    def backward(self, loss: Any) -> None:
        """Gradients of ``loss`` (multi-task balancers combine per-task gradients here)."""
        loss.backward()

    def epoch(self) -> float:
        """Passes over the training data done (fractional)."""
        return 0.0

    def epoch_ended(self) -> bool:
        """Whether the last batch closed an epoch (then the kernel validates)."""
        return False

    def on_train_begin(self, state: TrainState) -> None:  # noqa: B027 (an optional hook)
        """Before the first step (and the callbacks' ``on_train_begin``)."""

    def evaluate(self, state: TrainState) -> dict[str, Any] | None:
        """One validation record for ``state.history`` (``None``: the method has no validation)."""
        return None

    def after_evaluate(self, state: TrainState, record: dict[str, Any]) -> None:  # noqa: B027 (an optional hook)
        """After the callbacks saw a validation (e.g. act on convergence)."""

    def on_train_end(self, state: TrainState) -> None:  # noqa: B027 (an optional hook)
        """After the last step and the best weights' return, before the callbacks' ``on_train_end``."""

    def weights(self) -> dict[str, Any]:
        """A copy of the trainable weights (kept for the best validation)."""
        return {}

    def load_weights(self, weights: dict[str, Any]) -> None:  # noqa: B027 (an optional hook)
        """Inverse of :meth:`weights`."""

    def checkpoint_tensors(self) -> dict[str, Any]:
        """Tensors and plain containers a checkpoint needs beyond the optimiser and scheduler."""
        return self.weights()

    def checkpoint_json(self) -> dict[str, Any]:
        """JSON state a checkpoint needs (batch position, trackers...)."""
        return {}

    def restore(self, tensors: dict[str, Any], data: dict[str, Any]) -> None:
        """Inverse of :meth:`checkpoint_tensors` / :meth:`checkpoint_json`; refuse a checkpoint of
        another run here, before anything is changed."""
        self.load_weights(tensors)


@dataclass(frozen=True)
class CheckpointPlan:
    """Where checkpoints go.

    Attributes:
        folder: the checkpoint folder, or the root of ``checkpoint-<step>`` folders.
        per_step: one ``folder/checkpoint-<step>`` per checkpoint (newest ``save_total_limit``
            kept) instead of replacing ``folder`` itself.
    """

    folder: Path
    per_step: bool = False


class Trainer:
    """Runs a :class:`TrainingMethod` for ``total_steps`` optimiser steps.

    Args:
        method: the model, batches and loss.
        args: the run's settings (``max_grad_norm``, ``eval_steps``, ``patience``,
            ``save_steps``, ``save_total_limit``, ``seed`` are read here).
        total_steps: steps of the whole run.
        callbacks: called in order (see :class:`~selectsearch.train.callbacks.TrainerCallback`).
        checkpoints: where checkpoints go (``None``: none). With ``save_steps`` they are written
            every ``save_steps`` steps and at the last one, otherwise after every validation.
        checkpoint_files: the names of a checkpoint's two files (the method's).
    """

    def __init__(self, method: TrainingMethod, args: TrainingArguments, *, total_steps: int,
                 callbacks: Sequence[TrainerCallback] = (), checkpoints: CheckpointPlan | None = None,
                 checkpoint_files: CheckpointFiles | None = None) -> None:
        self.method = method
        self.args = args
        self.callbacks = list(callbacks)
        self.checkpoints = checkpoints
        self.checkpoint_files = checkpoint_files or CheckpointFiles()
        self.state = TrainState(max_steps=total_steps, seed=args.seed, method=method.name)
        self.best_weights: dict[str, Any] | None = None
        self._session_start = time.perf_counter()

    # -- one step ---------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """One optimisation step; returns the method's metrics of it."""
        import torch

        method, state = self.method, self.state
        started = time.perf_counter()
        loss, metrics = method.compute_loss(method.next_batch())
        method.backward(loss)
        if self.args.max_grad_norm > 0:
            for group in method.clip_groups():
                torch.nn.utils.clip_grad_norm_(group, self.args.max_grad_norm)
        method.optimizer.step()
        method.scheduler.step()
        method.optimizer.zero_grad(set_to_none=True)
        state.step += 1
        state.step_seconds += time.perf_counter() - started
        state.loss = float(metrics.get("loss", float("nan")))
        state.learning_rate = float(method.scheduler.get_last_lr()[0])
        state.epoch = method.epoch()
        state.elapsed_s = time.perf_counter() - self._session_start
        return metrics

    # -- validation -------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any] | None:
        """Validate now: record, best weights, early stopping, callbacks. ``None``: no validation."""
        state = self.state
        record = self.method.evaluate(state)
        if record is None:
            return None
        state.history.append(record)
        key = self.method.metric_for_best_model
        if key is not None:
            value = float(record[key])
            if value > state.best_metric:
                state.best_metric, state.best_step, state.evals_since_best = value, state.step, 0
                self.best_weights = self.method.weights()
            else:
                state.evals_since_best += 1
                if self.args.patience and state.evals_since_best >= self.args.patience:
                    state.should_stop = True
            log.info("step %d: %s %.4f (best %.4f at step %d)", state.step, key, value, state.best_metric,
                     state.best_step)
        for cb in self.callbacks:
            cb.on_evaluate(state, record)
        self.method.after_evaluate(state, record)
        return record

    def emit(self, event: dict[str, Any]) -> None:
        """Tell the callbacks about a method's event."""
        for cb in self.callbacks:
            cb.on_event(self.state, event)

    def _evaluation_due(self) -> bool:
        step, every = self.state.step, self.args.eval_steps
        return bool(every and step % every == 0) or step == self.state.max_steps or self.method.epoch_ended()

    # -- the loop ---------------------------------------------------------------------------
    def train(self, *, until: int | None = None, evaluate_first: bool = False) -> TrainState:
        """Train from the current step to ``total_steps`` (or ``until``, to test resuming).

        Args:
            until: stop after this step; the run can be continued from a checkpoint.
            evaluate_first: validate the starting point too (it can be the best model).
        """
        state = self.state
        self._session_start = time.perf_counter()
        state.step_seconds = 0.0
        stop = state.max_steps if until is None else min(state.max_steps, until)
        self.method.on_train_begin(state)
        for cb in self.callbacks:
            cb.on_train_begin(state)
        if evaluate_first and not state.history:
            self.evaluate()
        while state.step < stop and not state.should_stop:
            metrics = self.step()
            for cb in self.callbacks:
                cb.on_step_end(state, metrics)
            evaluated = self._evaluation_due() and self.evaluate() is not None
            self._maybe_checkpoint(evaluated)
        if self.method.metric_for_best_model is not None and self.best_weights is not None:
            self.method.load_weights(self.best_weights)
        state.elapsed_s = time.perf_counter() - self._session_start
        self.method.on_train_end(state)
        for cb in self.callbacks:
            cb.on_train_end(state)
        return state

    # -- checkpoints ------------------------------------------------------------------------
    def _maybe_checkpoint(self, evaluated: bool) -> None:
        plan, every, step = self.checkpoints, self.args.save_steps, self.state.step
        if plan is None:
            return
        if (every and (step % every == 0 or step == self.state.max_steps)) or (not every and evaluated):
            folder = plan.folder / f"checkpoint-{step:06d}" if plan.per_step else plan.folder
            self.save_checkpoint(folder)
            if plan.per_step:
                prune_checkpoints(plan.folder, self.checkpoint_files, self.args.save_total_limit)

    def save_checkpoint(self, folder: str | os.PathLike[str]) -> Path:
        """Write everything needed to continue identically (atomic; see
        :mod:`selectsearch.train.checkpoint`)."""
        import torch

        tensors = {"method": self.method.checkpoint_tensors(), "optimizer": self.method.optimizer.state_dict(),
                   "scheduler": self.method.scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                   "best": self.best_weights}
        state = {**self.state.to_dict(), "method_state": self.method.checkpoint_json()}
        return write_checkpoint(Path(folder), tensors, state, self.checkpoint_files)

    def load_checkpoint(self, folder: str | os.PathLike[str]) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint` (tensors only).

        Raises:
            ModelError: not a checkpoint, a damaged one, or one the method refuses (another run).
        """
        import torch

        tensors, data = read_checkpoint(Path(folder), self.checkpoint_files)
        self.method.restore(tensors["method"], data.get("method_state", {}))
        self.method.optimizer.load_state_dict(tensors["optimizer"])
        self.method.scheduler.load_state_dict(tensors["scheduler"])
        torch.set_rng_state(tensors["torch_rng"])
        self.best_weights = tensors.get("best")
        names = {f.name for f in fields(TrainState)} - {"max_steps"}
        for key, value in data.items():
            if key in names:
                setattr(self.state, key, value)
        self.state.should_stop = bool(data.get("should_stop", False))
