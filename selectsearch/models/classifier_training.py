"""Training a text classifier (DynaMaR or fine-tuning) through the training kernel.

Only what is particular to classifiers lives here — the batches (a seeded stream of example
indices; DynaMaR also draws one template per example per step), the loss (cross-entropy, or MSE
on standardised targets for regression) and the optimiser groups; the loop, schedule, clipping
and callbacks are :mod:`selectsearch.train`'s.

Example:
    >>> from selectsearch.data.classification import load_task
    >>> task = load_task("sst2")  # doctest: +SKIP
    >>> train = sample_few_shot(task.train, k=16, kind=task.kind, seed=13)  # doctest: +SKIP
    >>> cfg = ModelConfig(method="dynamar", kind=task.kind, label_names=tuple(task.label_names))  # doctest: +SKIP
    >>> clf = train_classifier(train, cfg, TrainConfig(max_steps=40, seed=13))  # doctest: +SKIP
    >>> clf.predict([e.text_a for e in task.test[:4]])  # doctest: +SKIP
    >>> clf.save("models/sst2-dynamar")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from selectsearch.data.classification import TextExample, as_rows
from selectsearch.errors import SelectSearchError
from selectsearch.models.classifier_config import ModelConfig, TrainConfig
from selectsearch.models.text_classifier import TextClassifier
from selectsearch.train.callbacks import TrainerCallback, TrainState
from selectsearch.train.loop import Trainer, TrainingMethod
from selectsearch.train.optim import encoder_head_adamw
from selectsearch.train.schedule import lr_scheduler, seed_everything

__all__ = ["ClassifierTraining", "sample_few_shot", "train_classifier"]

log = logging.getLogger(__name__)


def sample_few_shot(
    examples: Sequence[TextExample], *, k: int, kind: str, seed: int
) -> list[TextExample]:
    """``k`` examples per class (classification) or ``k`` examples (regression), seeded.

    Example:
        >>> ex = [TextExample(str(i), i % 2) for i in range(10)]
        >>> sorted(e.label for e in sample_few_shot(ex, k=2, kind="classification", seed=0))
        [0, 0, 1, 1]
    """
    rng = random.Random(seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    if kind == "regression":
        return [examples[i] for i in order[:k]]
    taken: dict[Any, int] = {}
    out = []
    for i in order:
        lab = examples[i].label
        if taken.get(lab, 0) < k:
            taken[lab] = taken.get(lab, 0) + 1
            out.append(examples[i])
    return out


class ClassifierTraining(TrainingMethod):
    """The classifier's batches, loss and optimiser for :class:`~selectsearch.train.loop.Trainer`.

    Batches are drawn from a seeded shuffled order, reshuffled whenever it runs out (a batch
    may span two passes).
    """

    def __init__(self, clf: TextClassifier, examples: Sequence[TextExample], train: TrainConfig) -> None:
        self.clf = clf
        self.name = clf.config.method
        self.train_config = train
        self.rows = as_rows(examples)
        self.labels = np.array([e.label for e in examples], dtype=np.float64)
        self.regression = clf.config.kind == "regression"
        if self.regression:
            clf.target_mean = float(self.labels.mean())
            clf.target_std = float(self.labels.std()) or 1.0
        model = clf.model
        self.optimizer = encoder_head_adamw(model, model.head, train)
        self.scheduler = lr_scheduler(self.optimizer, train.warmup_before_peak(train.max_steps), train.max_steps)
        self.rng = random.Random(train.seed)
        self.order: list[int] = []
        self.seen = 0

    def on_train_begin(self, state: TrainState) -> None:
        self.clf.model.train()

    def next_batch(self) -> list[int]:
        idx: list[int] = []
        while len(idx) < min(self.train_config.batch_size, len(self.rows)):
            if not self.order:
                self.order = list(range(len(self.rows)))
                self.rng.shuffle(self.order)
            idx.append(self.order.pop())
        self.seen += len(idx)
        return idx

    def compute_loss(self, batch: list[int]) -> tuple[torch.Tensor, dict[str, Any]]:
        clf = self.clf
        out = clf.model(**clf.batcher.batch([self.rows[i] for i in batch], rng=self.rng))
        if self.regression:
            target = torch.tensor((self.labels[batch] - clf.target_mean) / clf.target_std, dtype=out.dtype)
            loss = nn.functional.mse_loss(out[:, 0], target)
        else:
            loss = nn.functional.cross_entropy(out, torch.tensor(self.labels[batch], dtype=torch.long))
        return loss, {"loss": float(loss.detach())}

    def clip_groups(self) -> list[list[Any]]:
        return [list(self.clf.model.parameters())]

    def epoch(self) -> float:
        return self.seen / len(self.rows)

    def on_train_end(self, state: TrainState) -> None:
        self.clf.model.eval()


def train_classifier(
    examples: Sequence[TextExample],
    config: ModelConfig,
    train: TrainConfig,
    *,
    encoder: tuple[Any, Any] | None = None,
    callbacks: Sequence[TrainerCallback] = (),
) -> TextClassifier:
    """Train a DynaMaR or fine-tuned model on ``examples`` for ``train.max_steps`` steps.

    Seeds torch/numpy/random with ``train.seed`` first, so a run is reproducible. DynaMaR
    draws one template per example per step.

    Args:
        examples: training examples (``label``: class index or float target).
        config: the model (method, task kind, labels, encoder, templates...).
        train: the budget and optimiser settings.
        encoder: optional ``(tokenizer, model)`` (tests pass a tiny encoder).
        callbacks: :class:`~selectsearch.train.callbacks.TrainerCallback` s.

    Raises:
        SelectSearchError: no examples, or labels that do not fit the config.
    """
    if not examples:
        raise SelectSearchError("no training examples")
    if config.kind == "classification":
        bad = {e.label for e in examples} - set(range(config.num_outputs))
        if bad:
            raise SelectSearchError(f"labels {sorted(bad)[:5]} outside 0..{config.num_outputs - 1}")
    seed_everything(train.seed)
    clf = TextClassifier.create(config, encoder=encoder)
    clf.train_config = train
    method = ClassifierTraining(clf, examples, train)
    state = Trainer(method, train, total_steps=train.max_steps, callbacks=callbacks).train()
    log.info("trained %s for %d steps in %.1fs (last loss %.4f)", config.method, state.step, state.elapsed_s,
             state.loss)
    return clf
