"""One trainer for text classifiers and regressors: DynaMaR or standard fine-tuning.

``method="dynamar"`` wraps inputs in prompt templates and reads the mask token
(:mod:`selectsearch.models.dynamar`); ``method="finetune"`` puts the same head (dropout +
linear) on the mean-pooled (or [CLS]) encoder output of the plain input. Everything else —
encoder, optimiser, schedule, steps, batches, seeds — is shared, so only the method differs.

A trained :class:`TextClassifier` is saved as a self-describing folder::

    model/encoder/      the fine-tuned encoder and its tokenizer (transformers format)
    model/head.pt       the head's state dict
    model/pool.json     the template pool (DynaMaR; empty list for fine-tuning)
    model/config.json   format, version, model/train config, labels, command (written last)

Example:
    >>> from selectsearch.data.classification import load_task
    >>> task = load_task("sst2")  # doctest: +SKIP
    >>> train = sample_few_shot(task.train, k=16, kind=task.kind, seed=13)  # doctest: +SKIP
    >>> cfg = ModelConfig(method="dynamar", kind=task.kind, label_names=tuple(task.label_names))
    >>> clf = train_classifier(train, cfg, TrainConfig(steps=40, seed=13))  # doctest: +SKIP
    >>> clf.predict([e.text_a for e in task.test[:4]])  # doctest: +SKIP
    >>> clf.save("models/sst2-dynamar")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from selectsearch.data.classification import Row, TextExample, as_rows
from selectsearch.encode import inference_autocast
from selectsearch.errors import ModelError, SelectSearchError
from selectsearch.models.dynamar import MaskTokenModel, PromptBatcher, build_pool
from selectsearch.models.encoder import DEFAULT_ENCODER, load_encoder, mean_pool
from selectsearch.models.folder import config_from_json, new_model_folder, publish_model_folder, read_model_manifest
from selectsearch.prompting import Template

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METHODS",
    "Callback",
    "JsonLogCallback",
    "ModelConfig",
    "ProgressCallback",
    "QueryClassifier",
    "TextClassifier",
    "TrainConfig",
    "TrainState",
    "as_rows",
    "sample_few_shot",
    "train_classifier",
]

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class TrainConfig:
    """How to train. Identical for both methods in every comparison. Recorded in ``config.json``.

    Attributes:
        steps: optimiser steps (the budget).
        batch_size: examples per step.
        learning_rate: encoder learning rate (AdamW, linear warm-up then linear decay).
        head_learning_rate: learning rate of the freshly initialised head.
        weight_decay: AdamW weight decay (not on biases and LayerNorm).
        warmup_ratio: fraction of ``steps`` for linear warm-up.
        max_grad_norm: gradient clipping.
        seed: seeds torch, numpy and Python's RNG (batches, templates, dropout, head init).
        eval_batch_size: batch size at prediction.
    """

    steps: int = 100
    batch_size: int = 8
    learning_rate: float = 5e-5
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    eval_batch_size: int = 64


@dataclass
class TrainState:
    """JSON-serialisable training state handed to callbacks."""

    step: int = 0
    max_steps: int = 0
    epoch: float = 0.0
    loss: float = float("nan")
    learning_rate: float = 0.0
    elapsed_s: float = 0.0
    seed: int = 0
    method: str = ""
    history: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The state without the history (one log line)."""
        d = asdict(self)
        d.pop("history")
        return d


class Callback:
    """Training callback; override what you need (transformers ``TrainerCallback`` style)."""

    def on_train_begin(self, state: TrainState) -> None:
        """Called once before the first step."""

    def on_step_end(self, state: TrainState) -> None:
        """Called after every optimiser step."""

    def on_train_end(self, state: TrainState) -> None:
        """Called once after the last step."""


class JsonLogCallback(Callback):
    """Append one JSON line per step (every ``every`` steps) and a final summary to ``path``."""

    def __init__(self, path: str | os.PathLike[str], *, every: int = 1) -> None:
        self.path = Path(path)
        self.every = max(1, every)

    def _write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_begin(self, state: TrainState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write({"event": "train_begin", **state.to_json()})

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0 or state.step == state.max_steps:
            self._write({"event": "step", **state.to_json()})

    def on_train_end(self, state: TrainState) -> None:
        self._write({"event": "train_end", **state.to_json()})


class ProgressCallback(Callback):
    """A tqdm bar over the steps; off when ``disable`` or when stderr is not a TTY."""

    def __init__(self, *, disable: bool | None = None, desc: str = "train") -> None:
        self.disable = (not sys.stderr.isatty()) if disable is None else disable
        self.desc = desc
        self._bar: Any = None

    def on_train_begin(self, state: TrainState) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.max_steps, desc=self.desc, disable=self.disable)

    def on_step_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(loss=f"{state.loss:.4f}")

    def on_train_end(self, state: TrainState) -> None:
        if self._bar is not None:
            self._bar.close()


class PooledModel(nn.Module):
    """Standard fine-tuning: encoder + dropout + linear head on the mean-pooled or [CLS] vector."""

    def __init__(
        self, encoder: Any, num_outputs: int, *, dropout: float = 0.1, pooling: str = "mean"
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(int(encoder.config.hidden_size), num_outputs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Head outputs ``(batch, num_outputs)``."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        vec = mean_pool(hidden, attention_mask) if self.pooling == "mean" else hidden[:, 0]
        return self.head(self.dropout(vec))


class PlainBatcher:
    """Batches of the plain input (one text or a text pair) for :class:`PooledModel`."""

    num_views = 1

    def __init__(self, tokenizer: Any, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length

    def batch(
        self, texts: Sequence[Row], *, view: int | None = None, rng: random.Random | None = None
    ) -> dict[str, torch.Tensor]:
        """Padded batch; ``view``/``rng`` are accepted for symmetry with the prompt batcher."""
        a = [t[0] or "" for t in texts]
        b = [t[1] or "" for t in texts] if len(texts[0]) > 1 and texts[0][1] is not None else None
        enc = self.tokenizer(
            a,
            b,
            truncation="longest_first",
            max_length=self.max_length,
            padding=True,
            return_tensors="pt",
        )
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}



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


def _set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


class TextClassifier:
    """A trained classifier/regressor: encoder + head (+ template pool for DynaMaR).

    Build with :func:`train_classifier` or :meth:`load`; use :meth:`predict`,
    :meth:`view_outputs` and :meth:`save`.
    """

    def __init__(
        self,
        config: ModelConfig,
        tokenizer: Any,
        model: nn.Module,
        pool: Sequence[Template] = (),
        *,
        train_config: TrainConfig | None = None,
        target_mean: float = 0.0,
        target_std: float = 1.0,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.model: Any = model
        self.pool = list(pool)
        self.train_config = train_config
        self.target_mean = target_mean
        self.target_std = target_std
        self.extra = dict(extra or {})
        self.batcher: PromptBatcher | PlainBatcher
        if config.method == "dynamar":
            self.batcher = PromptBatcher(tokenizer, self.pool, config.slots, config.max_length)
        else:
            self.batcher = PlainBatcher(tokenizer, config.max_length)

    @classmethod
    def create(
        cls, config: ModelConfig, *, encoder: tuple[Any, Any] | None = None
    ) -> TextClassifier:
        """A fresh untrained classifier (head initialised from torch's current RNG state).

        ``encoder`` is a ``(tokenizer, model)`` pair; default: :func:`load_encoder` of
        ``config.encoder``.
        """
        tokenizer, enc = encoder if encoder is not None else load_encoder(config.encoder)
        model: nn.Module
        pool: list[Template] = []
        if config.method == "dynamar":
            pool = build_pool(
                config.slots, config.pool_size, config.templates, variants=config.variants
            )
            model = MaskTokenModel(enc, config.num_outputs, dropout=config.dropout)
        else:
            model = PooledModel(
                enc, config.num_outputs, dropout=config.dropout, pooling=config.pooling
            )
        return cls(config, tokenizer, model, pool)

    # -- prediction -------------------------------------------------------------------------
    def view_outputs(
        self,
        inputs: Sequence[TextExample | str | Sequence[str | None]],
        *,
        batch_size: int = 64,
        views: Sequence[int] | None = None,
        progress: bool = False,
    ) -> np.ndarray:
        """Raw head outputs per view: ``(n_views, n, num_outputs)`` float32.

        A view is one template of the pool (DynaMaR) or the plain input (fine-tuning: one
        view). Regression outputs are in label units. Inputs are batched by length.
        """
        rows = as_rows(inputs)
        view_ids = list(range(self.batcher.num_views)) if views is None else list(views)
        out = np.zeros((len(view_ids), len(rows), self.config.num_outputs), dtype=np.float32)
        if not rows:
            return out
        order = sorted(range(len(rows)), key=lambda i: sum(len(t or "") for t in rows[i]))
        self.model.eval()
        from tqdm.auto import tqdm

        total = len(view_ids) * math.ceil(len(rows) / batch_size)
        with (
            torch.inference_mode(),
            inference_autocast(),
            tqdm(
                total=total, desc="predict", disable=not progress or not sys.stderr.isatty()
            ) as bar,
        ):
            for vi, view in enumerate(view_ids):
                for start in range(0, len(rows), batch_size):
                    idx = order[start : start + batch_size]
                    batch = self.batcher.batch([rows[i] for i in idx], view=view)
                    res = self.model(**batch).float().numpy()
                    out[vi, idx] = res
                    bar.update(1)
        if self.config.kind == "regression":
            out = out * self.target_std + self.target_mean
        return out

    def predict(
        self,
        inputs: Sequence[TextExample | str | Sequence[str | None]],
        *,
        inference: str | None = None,
        batch_size: int = 64,
        progress: bool = False,
    ) -> np.ndarray:
        """Class indices (int64) or regression values (float32), one per input.

        ``inference``: ``"pool"`` (mean of head outputs over the template pool) or
        ``"single"`` (first template only); default ``config.inference``. Fine-tuned models
        have one view, so both give the same result.
        """
        mode = inference or self.config.inference
        if mode not in INFERENCE:
            raise ModelError(f"unknown inference {mode!r}; use pool or single")
        views = [0] if mode == "single" else None
        outs = self.view_outputs(inputs, batch_size=batch_size, views=views, progress=progress)
        return self.decide(outs.mean(axis=0))

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """Map head outputs ``(n, num_outputs)`` to predictions (argmax or the scalar)."""
        if self.config.kind == "regression":
            return outputs[:, 0].astype(np.float32)
        return outputs.argmax(axis=1).astype(np.int64)

    # -- persistence ------------------------------------------------------------------------
    def save(
        self, path: str | os.PathLike[str], *, command: str | None = None, overwrite: bool = False
    ) -> Path:
        """Write the model folder (built in ``<path>.partial``, moved into place at the end).

        Raises:
            ModelError: ``path`` exists and ``overwrite`` is false.
        """
        final, partial = new_model_folder(path, overwrite=overwrite)
        encoder = self.model.encoder
        encoder.save_pretrained(str(partial / "encoder"))
        self.tokenizer.save_pretrained(str(partial / "encoder"))
        head = {f"head.{k}": v for k, v in self.model.head.state_dict().items()}
        torch.save(head, partial / "head.pt")
        (partial / "pool.json").write_text(
            json.dumps([t.source for t in self.pool], indent=1) + "\n"
        )
        manifest = {
            "model_config": asdict(self.config),
            "train_config": asdict(self.train_config) if self.train_config else None,
            "target_mean": self.target_mean,
            "target_std": self.target_std,
            "extra": self.extra,
        }
        return publish_model_folder(partial, final, manifest, format=FORMAT, version=FORMAT_VERSION, command=command)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TextClassifier:
        """Load a folder written by :meth:`save`.

        Raises:
            ModelError: not a classifier folder, or written by a newer format version.
        """
        folder = Path(path)
        manifest = read_model_manifest(folder, format=FORMAT, version=FORMAT_VERSION, what="text classifier",
                                       hint="train one with `selectsearch train-classifier`")
        config = config_from_json(ModelConfig, manifest["model_config"])
        tc = manifest.get("train_config")
        train_config = TrainConfig(**tc) if tc else None
        tokenizer, enc = load_encoder(folder / "encoder")
        pool = [Template.parse(s) for s in json.loads((folder / "pool.json").read_text())]
        model: nn.Module
        if config.method == "dynamar":
            model = MaskTokenModel(enc, config.num_outputs, dropout=config.dropout)
        else:
            model = PooledModel(
                enc, config.num_outputs, dropout=config.dropout, pooling=config.pooling
            )
        state = torch.load(folder / "head.pt", map_location="cpu", weights_only=True)
        model.head.load_state_dict({k.removeprefix("head."): v for k, v in state.items()})
        model.eval()
        return cls(
            config,
            tokenizer,
            model,
            pool,
            train_config=train_config,
            target_mean=float(manifest.get("target_mean", 0.0)),
            target_std=float(manifest.get("target_std", 1.0)),
            extra=manifest.get("extra") or {},
        )


def train_classifier(
    examples: Sequence[TextExample],
    config: ModelConfig,
    train: TrainConfig,
    *,
    encoder: tuple[Any, Any] | None = None,
    callbacks: Sequence[Callback] = (),
) -> TextClassifier:
    """Train a DynaMaR or fine-tuned model on ``examples`` for ``train.steps`` steps.

    Seeds torch/numpy/random with ``train.seed`` first, so a run is reproducible. DynaMaR
    draws one template per example per step.

    Args:
        examples: training examples (``label``: class index or float target).
        config: the model (method, task kind, labels, encoder, templates...).
        train: the budget and optimiser settings.
        encoder: optional ``(tokenizer, model)`` (tests pass a tiny encoder).
        callbacks: called at the start, after each step and at the end.

    Raises:
        SelectSearchError: no examples, or labels that do not fit the config.
    """
    if not examples:
        raise SelectSearchError("no training examples")
    if config.kind == "classification":
        bad = {e.label for e in examples} - set(range(config.num_outputs))
        if bad:
            raise SelectSearchError(f"labels {sorted(bad)[:5]} outside 0..{config.num_outputs - 1}")
    _set_seed(train.seed)
    clf = TextClassifier.create(config, encoder=encoder)
    clf.train_config = train
    rows = as_rows(examples)
    labels = np.array([e.label for e in examples], dtype=np.float64)
    if config.kind == "regression":
        clf.target_mean = float(labels.mean())
        clf.target_std = float(labels.std()) or 1.0
    model = clf.model
    head_params = list(model.head.parameters())
    head_ids = {id(p) for p in head_params}
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        if id(p) in head_ids:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "lr": train.learning_rate, "weight_decay": train.weight_decay},
            {"params": no_decay, "lr": train.learning_rate, "weight_decay": 0.0},
            {"params": head_params, "lr": train.head_learning_rate, "weight_decay": 0.0},
        ]
    )
    warmup = int(train.steps * train.warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (train.steps - step) / max(1, train.steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    rng = random.Random(train.seed)
    state = TrainState(max_steps=train.steps, seed=train.seed, method=config.method)
    for cb in callbacks:
        cb.on_train_begin(state)
    start = time.perf_counter()
    order: list[int] = []
    seen = 0
    model.train()
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    loss_fn = nn.functional.mse_loss if config.kind == "regression" else nn.functional.cross_entropy
    for step in range(1, train.steps + 1):
        idx: list[int] = []
        while len(idx) < min(train.batch_size, len(rows)):
            if not order:
                order = list(range(len(rows)))
                rng.shuffle(order)
            idx.append(order.pop())
        seen += len(idx)
        batch = clf.batcher.batch([rows[i] for i in idx], rng=rng)
        out = model(**batch)
        if config.kind == "regression":
            target = torch.tensor((labels[idx] - clf.target_mean) / clf.target_std, dtype=out.dtype)
            loss = loss_fn(out[:, 0], target)
        else:
            loss = loss_fn(out, torch.tensor(labels[idx], dtype=torch.long))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        state.step = step
        state.loss = float(loss.detach())
        state.learning_rate = float(scheduler.get_last_lr()[0])
        state.epoch = seen / len(rows)
        state.elapsed_s = time.perf_counter() - start
        state.history.append({"step": step, "loss": state.loss})
        for cb in callbacks:
            cb.on_step_end(state)
    model.eval()
    for cb in callbacks:
        cb.on_train_end(state)
    log.info(
        "trained %s for %d steps in %.1fs (last loss %.4f)",
        config.method,
        train.steps,
        state.elapsed_s,
        state.loss,
    )
    return clf


class QueryClassifier:
    """Labels queries with a trained classifier and records the label in their traces.

    Example:
        >>> qc = QueryClassifier(TextClassifier.load("models/trec-dynamar"))  # doctest: +SKIP
        >>> qc.annotate(["how far is the moon ?"], [result.trace])  # doctest: +SKIP
        ['NUM']
    """

    def __init__(self, model: TextClassifier, *, key: str = "query_class") -> None:
        if model.config.kind != "classification" or len(model.config.slots) != 1:
            raise ModelError("a query classifier needs a single-text classification model")
        self.model = model
        self.key = key

    def classify(self, queries: Sequence[str]) -> list[str]:
        """Predicted label name of each query."""
        names = self.model.config.label_names
        return [names[int(i)] for i in self.model.predict(list(queries))]

    def annotate(self, queries: Sequence[str], traces: Sequence[Any]) -> list[str]:
        """Classify and store ``trace.extra[key]`` and ``timings_ms[key]`` on each trace."""
        if len(queries) != len(traces):
            raise ModelError(f"{len(queries)} queries but {len(traces)} traces")
        start = time.perf_counter()
        labels = self.classify(queries)
        per_query_ms = (time.perf_counter() - start) * 1000 / max(1, len(queries))
        for label, trace in zip(labels, traces, strict=True):
            trace.extra[self.key] = label
            trace.timings_ms[self.key] = per_query_ms
        return labels

    def keep(self, queries: Sequence[str], allowed: Sequence[str]) -> list[bool]:
        """Filter mask: whether each query's predicted label is in ``allowed``."""
        ok = set(allowed)
        return [label in ok for label in self.classify(queries)]
