"""What a text classifier is and how it is trained: :class:`ModelConfig` and :class:`TrainConfig`.

Both are recorded in the model folder's ``config.json`` (see
:mod:`selectsearch.models.text_classifier`).
"""

from __future__ import annotations

from dataclasses import dataclass

from selectsearch.errors import ModelError
from selectsearch.models.encoder import DEFAULT_ENCODER
from selectsearch.train.arguments import TrainingArguments, accepts_old_names

__all__ = ["FORMAT", "FORMAT_VERSION", "INFERENCE", "METHODS", "ModelConfig", "TrainConfig"]

FORMAT = "selectsearch.text_classifier"
FORMAT_VERSION = 1
METHODS = ("dynamar", "finetune")
INFERENCE = ("pool", "single")


@dataclass(frozen=True)
class ModelConfig:
    """What the model is. Recorded in ``config.json``.

    Attributes:
        method: ``"dynamar"`` (mask-token head over a template pool) or ``"finetune"``.
        kind: ``"classification"`` or ``"regression"``.
        label_names: class names (``("score",)`` for regression).
        slots: template slots the input fields fill, in order: ``("text",)``,
            ``("text_a", "text_b")`` or ``("query", "doc")``.
        encoder: local model folder or ``"all-MiniLM-L6-v2"`` (the packaged default).
        max_length: maximum tokens per input, special tokens included.
        dropout: dropout before the linear head.
        pooling: fine-tuning only: ``"mean"`` or ``"cls"``.
        pool_size: DynaMaR only: number of templates M.
        templates: DynaMaR only: seed templates (empty: built-in seeds for ``slots``).
        variants: DynaMaR only: add generated variants of the seeds to the candidates.
        inference: DynaMaR default at prediction: ``"pool"`` (mean over the pool) or
            ``"single"`` (the first template of the pool).
    """

    method: str
    kind: str
    label_names: tuple[str, ...]
    slots: tuple[str, ...] = ("text",)
    encoder: str = DEFAULT_ENCODER
    max_length: int = 128
    dropout: float = 0.1
    pooling: str = "mean"
    pool_size: int = 4
    templates: tuple[str, ...] = ()
    variants: bool = True
    inference: str = "pool"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ModelError(f"unknown method {self.method!r}; use one of {METHODS}")
        if self.kind not in ("classification", "regression"):
            raise ModelError(f"unknown kind {self.kind!r}; use classification or regression")
        if self.kind == "classification" and len(self.label_names) < 2:
            raise ModelError("classification needs at least two label names")
        if self.pooling not in ("mean", "cls"):
            raise ModelError(f"unknown pooling {self.pooling!r}; use mean or cls")
        if self.inference not in INFERENCE:
            raise ModelError(f"unknown inference {self.inference!r}; use pool or single")
        if not 1 <= len(self.slots) <= 2:
            raise ModelError(f"slots must name one or two text slots, got {self.slots}")

    @property
    def num_outputs(self) -> int:
        """Head width: number of classes, or 1 for regression."""
        return 1 if self.kind == "regression" else len(self.label_names)




@accepts_old_names
@dataclass(frozen=True)
class TrainConfig(TrainingArguments):
    """How to train. Identical for both methods in every comparison. Recorded in ``config.json``.

    The run is ``max_steps`` optimiser steps (the budget) of ``batch_size`` examples; the
    encoder trains at ``learning_rate`` and the fresh head at ``head_learning_rate`` (AdamW,
    linear warm-up over ``warmup_ratio`` of the steps, then linear decay); ``seed`` seeds
    batches, templates, dropout and the head. See
    :class:`~selectsearch.train.arguments.TrainingArguments` for every field.
    """

    max_steps: int = 100
    batch_size: int = 8
