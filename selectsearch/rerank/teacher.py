"""The cross-encoder teacher: all-MiniLM-L6-v2 with a relevance head over (query, document) pairs.

The model is a :class:`~selectsearch.models.text_classifier.TextClassifier` (``method="finetune"``,
``slots=("query", "doc")``, mean pooling) trained pointwise by
:func:`~selectsearch.models.classifier_training.train_classifier`: one class per relevance grade
(``0`` = not relevant, then the graded levels of the qrels), cross-entropy. A document's score
at reranking time is its expected grade ``sum_g g * P(g | query, doc)``
(:class:`~selectsearch.rerank.rerankers.CrossEncoderReranker`). Training pairs come from
:func:`~selectsearch.rerank.candidates.training_pairs` (training qrels + BM25 negatives from our
own index).

With ``method="dynamar"`` the same trainer builds the DynaMaR relevance model instead (issue 7):
the encoder's hidden state at the ``[MASK]`` of a (query, document) template feeds a regression
head trained on the graded qrels (MSE on the standardised grade); a template is sampled per pair
per step from a pool of ``pool_size``, and reranking reads the first template of the pool (one
forward pass per pair, the cross-encoder's cost). The score is the predicted grade.

Example:
    >>> pairs = training_pairs("indexes/homedepot-mico16", queries, qrels,  # doctest: +SKIP
    ...                        PairConfig(max_queries=2500))
    >>> model = train_cross_encoder(pairs, CrossEncoderConfig(max_steps=360))  # doctest: +SKIP
    >>> model.save("/work/models/hd-rerank-teacher")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from selectsearch.errors import SelectSearchError
from selectsearch.models.encoder import DEFAULT_ENCODER
from selectsearch.rerank.candidates import TrainingPair
from selectsearch.train.arguments import TrainingArguments, accepts_old_names

__all__ = ["RERANKER_KEY", "CrossEncoderConfig", "train_cross_encoder"]

#: key of the reranker description inside a TextClassifier's ``extra`` / a student's ``reranker.json``
RERANKER_KEY = "reranker"


@accepts_old_names
@dataclass(frozen=True)
class CrossEncoderConfig(TrainingArguments):
    """The cross-encoder and how it is trained (recorded in the model folder).

    Attributes:
        method: ``"finetune"`` (the cross-encoder: mean-pooled head, one class per grade) or
            ``"dynamar"`` (prompt + ``[MASK]`` regression head on the grade).
        pool_size: DynaMaR only: templates in the pool (M).
        encoder: starting weights (the packaged all-MiniLM-L6-v2 or a local folder).
        max_length: tokens of query + document together (documents are truncated first).
        max_steps: optimiser steps.
        batch_size: pairs per step.
        learning_rate: encoder learning rate (AdamW, linear warm-up and decay).
        head_learning_rate: learning rate of the new relevance head.
        warmup_ratio: fraction of steps for warm-up.
        seed: seeds batches, dropout and head initialisation.

    The other training settings are those of :class:`~selectsearch.train.arguments.TrainingArguments`.
    """

    method: str = "finetune"
    pool_size: int = 4
    encoder: str = DEFAULT_ENCODER
    max_length: int = 64
    max_steps: int = 360


def train_cross_encoder(pairs: Sequence[TrainingPair], config: CrossEncoderConfig = CrossEncoderConfig(), *,
                        encoder: tuple[Any, Any] | None = None, callbacks: Sequence[Any] = (),
                        extra: dict[str, Any] | None = None) -> Any:
    """Fine-tune a cross-encoder on labelled pairs; returns the trained ``TextClassifier``.

    Args:
        pairs: training pairs (``grade`` 0 = not relevant).
        config: model and optimisation settings.
        encoder: optional ``(tokenizer, model)`` to start from (tests pass a tiny one).
        callbacks: :class:`~selectsearch.train.callbacks.TrainerCallback` objects.
        extra: more fields for the reranker description saved with the model.

    Raises:
        SelectSearchError: no pairs, or only one grade among them.
    """
    from selectsearch.data.classification import TextExample
    from selectsearch.models.classifier_config import ModelConfig, TrainConfig
    from selectsearch.models.classifier_training import train_classifier

    if not pairs:
        raise SelectSearchError("no training pairs; check the qrels split and the index")
    top = max(p.grade for p in pairs)
    if top < 1 or all(p.grade > 0 for p in pairs):
        raise SelectSearchError("training pairs need both relevant (grade > 0) and non-relevant (grade 0) examples")
    grades = list(range(top + 1))
    if config.method == "dynamar":
        # reranking reads one template ("single"): the pool mean would cost pool_size forward passes per pair
        model_config = ModelConfig(method="dynamar", kind="regression", label_names=("grade",), slots=("query", "doc"),
                                   encoder=config.encoder, max_length=config.max_length, pool_size=config.pool_size,
                                   inference="single")
    elif config.method == "finetune":
        model_config = ModelConfig(method="finetune", kind="classification",
                                   label_names=tuple(str(g) for g in grades), slots=("query", "doc"),
                                   encoder=config.encoder, max_length=config.max_length, pooling="mean")
    else:
        raise SelectSearchError(f"unknown reranker method {config.method!r}; use finetune or dynamar")
    train_config = TrainConfig(**config.shared())
    regression = model_config.kind == "regression"
    examples = [TextExample(p.query, float(max(0, p.grade)) if regression else max(0, p.grade), p.doc) for p in pairs]
    model = train_classifier(examples, model_config, train_config, encoder=encoder, callbacks=callbacks)
    kind = "dynamar" if config.method == "dynamar" else "cross-encoder"
    model.extra[RERANKER_KEY] = {"kind": kind, "grades": grades, "n_pairs": len(pairs),
                                 "config": config.to_dict(), **(extra or {})}
    return model
