"""A trained text classifier or regressor: DynaMaR or standard fine-tuning.

``method="dynamar"`` wraps inputs in prompt templates and reads the mask token
(:mod:`selectsearch.models.dynamar`); ``method="finetune"`` puts the same head (dropout +
linear) on the mean-pooled (or [CLS]) encoder output of the plain input
(:mod:`selectsearch.models.pooled`). Training is :func:`selectsearch.models.classifier_training.train_classifier`;
the configs are in :mod:`selectsearch.models.classifier_config`.

A trained :class:`TextClassifier` is saved as a self-describing folder::

    model/encoder/      the fine-tuned encoder and its tokenizer (transformers format)
    model/head.pt       the head's state dict
    model/pool.json     the template pool (DynaMaR; empty list for fine-tuning)
    model/config.json   format, version, model/train config, labels, command (written last)

Example:
    >>> clf = TextClassifier.load("models/sst2-dynamar")  # doctest: +SKIP
    >>> clf.predict(["a gripping film"])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from selectsearch.data.classification import TextExample, as_rows
from selectsearch.encode import inference_autocast
from selectsearch.errors import ModelError
from selectsearch.models.classifier_config import FORMAT, FORMAT_VERSION, INFERENCE, ModelConfig, TrainConfig
from selectsearch.models.dynamar import MaskTokenModel, PromptBatcher, build_pool
from selectsearch.models.encoder import load_encoder
from selectsearch.models.folder import config_from_json, model_folder, read_model_manifest, write_model_manifest
from selectsearch.models.pooled import PlainBatcher, PooledModel
from selectsearch.prompting import Template

__all__ = ["FORMAT", "FORMAT_VERSION", "TextClassifier"]


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
        pool: list[Template] = []
        if config.method == "dynamar":
            pool = build_pool(config.slots, config.pool_size, config.templates, variants=config.variants)
        model = _head_model(config, enc)
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
        with model_folder(path, overwrite=overwrite) as partial:
            encoder = self.model.encoder
            encoder.save_pretrained(str(partial / "encoder"))
            self.tokenizer.save_pretrained(str(partial / "encoder"))
            head = {f"head.{k}": v for k, v in self.model.head.state_dict().items()}
            torch.save(head, partial / "head.pt")
            (partial / "pool.json").write_text(json.dumps([t.source for t in self.pool], indent=1) + "\n")
            manifest = {
                "model_config": asdict(self.config),
                "train_config": asdict(self.train_config) if self.train_config else None,
                "target_mean": self.target_mean,
                "target_std": self.target_std,
                "extra": self.extra,
            }
            write_model_manifest(partial, manifest, format=FORMAT, version=FORMAT_VERSION, command=command)
        return Path(path)

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
        train_config = config_from_json(TrainConfig, tc) if tc else None
        tokenizer, enc = load_encoder(folder / "encoder")
        pool = [Template.parse(s) for s in json.loads((folder / "pool.json").read_text())]
        model: Any = _head_model(config, enc)
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


def _head_model(config: ModelConfig, encoder: Any) -> nn.Module:
    """The method's model around ``encoder``: DynaMaR's mask-token head or the pooled head."""
    if config.method == "dynamar":
        return MaskTokenModel(encoder, config.num_outputs, dropout=config.dropout)
    return PooledModel(encoder, config.num_outputs, dropout=config.dropout, pooling=config.pooling)
