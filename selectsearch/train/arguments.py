"""One vocabulary for training settings: :class:`TrainingArguments` and the names it replaced.

Every trainer's configuration (the text classifiers', ReAugKD's, MICO's, the multi-task
trainer's, the rerankers') is a subclass of :class:`TrainingArguments`, so a setting has the
same name everywhere — the names of Hugging Face / sentence-transformers training arguments
(``learning_rate``, ``warmup_ratio``, ``max_grad_norm``, ``max_steps``, ``eval_steps``,
``save_steps`` ...). Subclasses add what only their method has (MICO's ``beta``, ReAugKD's
``lambda_rel`` ...) and override defaults.

Configs saved before the names were unified (``lr``, ``head_lr``, ``clip``, ``warmup``,
``steps``, ``eval_every`` ...) still load: :func:`accepts_old_names` lets the constructor take the
old names, and :func:`arguments_from_dict` reads them from JSON. New files are written with the
new names only.

Example:
    >>> args = TrainingArguments(lr=1e-3, steps=10)  # the old names still work
    >>> args.learning_rate, args.max_steps
    (0.001, 10)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from selectsearch.errors import ModelError

__all__ = ["OLD_NAMES", "TrainingArguments", "accepts_old_names", "arguments_from_dict", "new_names"]

T = TypeVar("T")

#: names used by earlier releases -> the one name used now
OLD_NAMES: dict[str, str] = {
    "lr": "learning_rate",
    "encoder_lr": "learning_rate",
    "head_lr": "head_learning_rate",
    "clip": "max_grad_norm",
    "warmup": "warmup_ratio",
    "steps": "max_steps",
    "eval_every": "eval_steps",
    "checkpoint_every": "save_steps",
    "keep_checkpoints": "save_total_limit",
    "proj_lr": "projection_learning_rate",
    "proj_epochs": "projection_epochs",
    "proj_batch_size": "projection_batch_size",
    "marginal_lr": "marginal_learning_rate",
    "gradnorm_lr": "gradnorm_learning_rate",
}


def new_names(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with old setting names replaced by the current ones.

    Raises:
        ModelError: an old and a new name of the same setting are both given.
    """
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = OLD_NAMES.get(key, key)
        if name in out:
            raise ModelError(f"{key!r} and {name!r} name the same setting; give it once (as {name!r})")
        out[name] = value
    return out


def accepts_old_names(cls: type[T]) -> type[T]:
    """Let a dataclass constructor also take the old setting names (see :data:`OLD_NAMES`)."""
    init = cls.__init__

    @functools.wraps(init)
    def init_with_old_names(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **new_names(kwargs))

    cls.__init__ = init_with_old_names  # type: ignore[method-assign]
    return cls


def arguments_from_dict(cls: Callable[..., T], data: dict[str, Any]) -> T:
    """A config dataclass from its JSON: old names translated, lists back to tuples, unknown keys
    ignored (written by an older or newer release), missing ones left at their defaults."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = new_names(data)
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names})


@accepts_old_names
@dataclass(frozen=True)
class TrainingArguments:
    """Settings every training run has (the loop's; a method's own settings live in its subclass).

    Attributes:
        max_steps: optimiser steps; 0: ``epochs`` decides. With both, the first reached ends the run.
        epochs: passes over the training data; 0: ``max_steps`` decides.
        batch_size: training examples per optimiser step.
        learning_rate: learning rate of the pretrained encoder.
        head_learning_rate: learning rate of the freshly initialised heads.
        weight_decay: AdamW weight decay (not on biases and LayerNorm weights).
        warmup_ratio: fraction of the steps spent warming the learning rate up.
        warmup_steps: warm-up steps; overrides ``warmup_ratio`` when > 0.
        max_grad_norm: clip the gradient norm to this (0: no clipping).
        eval_steps: validate every N steps (0: at the end of each epoch); methods without a
            validation set ignore it.
        eval_batch_size: batch size when predicting.
        patience: validations without improvement before stopping (0: never stop early).
        save_steps: checkpoint every N steps (0: after every validation, when checkpointing).
        save_total_limit: newest checkpoints kept when ``save_steps`` writes one folder per step.
        seed: seeds Python's, numpy's and torch's generators, batches and initialisation.
    """

    max_steps: int = 0
    epochs: float = 0.0
    batch_size: int = 32
    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    eval_steps: int = 0
    eval_batch_size: int = 64
    patience: int = 0
    save_steps: int = 0
    save_total_limit: int = 1
    seed: int = 0

    # the names of earlier releases, still readable (new code reads the names above)
    steps = property(lambda self: self.max_steps, doc="Old name of ``max_steps``.")
    lr = property(lambda self: self.learning_rate, doc="Old name of ``learning_rate``.")
    head_lr = property(lambda self: self.head_learning_rate, doc="Old name of ``head_learning_rate``.")
    clip = property(lambda self: self.max_grad_norm, doc="Old name of ``max_grad_norm``.")
    warmup = property(lambda self: self.warmup_ratio, doc="Old name of ``warmup_ratio``.")
    eval_every = property(lambda self: self.eval_steps, doc="Old name of ``eval_steps``.")
    checkpoint_every = property(lambda self: self.save_steps, doc="Old name of ``save_steps``.")
    keep_checkpoints = property(lambda self: self.save_total_limit, doc="Old name of ``save_total_limit``.")

    def total_steps(self, steps_per_epoch: int) -> int:
        """Optimiser steps of the run: ``max_steps``, ``epochs`` passes, or the fewer of the two."""
        by_epochs = max(1, math.ceil(self.epochs * steps_per_epoch)) if self.epochs else 0
        if self.max_steps and by_epochs:
            return min(self.max_steps, by_epochs)
        if not (self.max_steps or by_epochs):
            raise ModelError("set max_steps or epochs: the run has no length")
        return self.max_steps or by_epochs

    def warmup_before_peak(self, total_steps: int) -> int:
        """Steps before the learning rate peaks (see :func:`selectsearch.train.schedule.warmup_decay`)."""
        return self.warmup_steps if self.warmup_steps > 0 else int(total_steps * self.warmup_ratio)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the current names)."""
        return asdict(self)

    def shared(self) -> dict[str, Any]:
        """Only the :class:`TrainingArguments` fields (to hand a subclass's settings to another method)."""
        return {f.name: getattr(self, f.name) for f in fields(TrainingArguments)}
