"""DynaMaR: the encoder's hidden state at the prompt's mask token fed to a task head.

Sun et al. 2022 (arXiv 2206.02982), in our formulation (``docs/methods.md`` section 4): each
input is wrapped in a template from a pool of diverse templates (see
:mod:`selectsearch.prompting`); the hidden state at ``[MASK]`` goes through dropout and a
linear head (class logits or one regression scalar). Training draws one template per example
per step; inference uses one fixed template or the mean of head outputs over the pool.

This module holds the DynaMaR-specific parts (the mask-token model and the prompt batcher);
training, saving and prediction are shared with standard fine-tuning in
:mod:`selectsearch.models.classifier_training` and :mod:`selectsearch.models.text_classifier`, so that
only the method differs.

Example:
    >>> from selectsearch.models.classifier_config import ModelConfig, TrainConfig
    >>> from selectsearch.models.classifier_training import train_classifier
    >>> clf = train_classifier(examples, ModelConfig(method="dynamar", kind="classification",
    ...                        label_names=("neg", "pos")), TrainConfig(max_steps=40))  # doctest: +SKIP
    >>> clf.predict(["a gripping film"], inference="pool")  # doctest: +SKIP
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from selectsearch.prompting import (
    PreparedTemplate,
    Template,
    default_seeds,
    generate_candidates,
    prepare_template,
    select_pool,
)
from selectsearch.prompting.fill import tokenize_fields

__all__ = ["MaskTokenModel", "PromptBatcher", "build_pool"]


def build_pool(
    slots: Sequence[str], size: int, seeds: Sequence[str] = (), *, variants: bool = True
) -> list[Template]:
    """Candidates from ``seeds`` (default: the built-in seeds for ``slots``) and their variants,
    then the greedy max-min pool of ``size``.

    Raises:
        TemplateError: a seed does not parse, uses other slots, or ``size`` is too large.
    """
    from selectsearch.prompting import TemplateError

    parsed = [Template.parse(s) for s in seeds] if seeds else default_seeds(slots)
    for t in parsed:
        if set(t.slots) != set(slots):
            raise TemplateError(
                f"template {t.source!r} has slots {t.slots}, but the inputs fill {tuple(slots)}"
            )
    return select_pool(generate_candidates(parsed, variants=variants), size)


class MaskTokenModel(nn.Module):
    """Encoder + dropout + linear head on the hidden state at each row's mask position."""

    def __init__(self, encoder: Any, num_outputs: int, *, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(int(encoder.config.hidden_size), num_outputs)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, mask_positions: torch.Tensor
    ) -> torch.Tensor:
        """Head outputs ``(batch, num_outputs)``; ``mask_positions`` is ``(batch,)`` long."""
        if mask_positions.shape != (input_ids.shape[0],):
            raise ValueError(
                f"mask_positions shape {tuple(mask_positions.shape)} != ({input_ids.shape[0]},)"
            )
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return self.head(self.dropout(hidden[rows, mask_positions]))


class PromptBatcher:
    """Turns examples into padded prompt batches for :class:`MaskTokenModel`.

    Text is tokenized once per example and cached; templates are tokenized once.
    """

    def __init__(
        self, tokenizer: Any, pool: Sequence[Template], slots: Sequence[str], max_length: int
    ) -> None:
        self.tokenizer = tokenizer
        self.pool = list(pool)
        self.slots = tuple(slots)
        self.max_length = max_length
        self.prepared: list[PreparedTemplate] = [prepare_template(t, tokenizer) for t in self.pool]
        for p in self.prepared:  # fail early: the template alone must fit
            p.fill_ids({s: [] for s in self.slots}, max_length)
        self._cache: dict[tuple[str | None, ...], dict[str, list[int]]] = {}

    @property
    def num_views(self) -> int:
        """Number of templates (inference views)."""
        return len(self.pool)

    def _fields(self, texts: tuple[str | None, ...]) -> dict[str, list[int]]:
        hit = self._cache.get(texts)
        if hit is None:
            hit = tokenize_fields(self.tokenizer, dict(zip(self.slots, texts, strict=False)))
            if len(self._cache) < 200_000:
                self._cache[texts] = hit
        return hit

    def batch(
        self,
        texts: Sequence[tuple[str | None, ...]],
        *,
        view: int | None = None,
        rng: random.Random | None = None,
    ) -> Mapping[str, torch.Tensor]:
        """Template ``view`` for every row, or one template per row drawn by ``rng``."""
        if (view is None) == (rng is None):
            raise ValueError("pass exactly one of view= or rng=")
        filled = []
        for t in texts:
            idx = view if view is not None else rng.randrange(len(self.prepared))  # type: ignore[union-attr]
            filled.append(self.prepared[idx].fill_ids(self._fields(tuple(t)), self.max_length))
        width = max(len(f.input_ids) for f in filled)
        pad = int(self.tokenizer.pad_token_id or 0)
        ids = torch.full((len(filled), width), pad, dtype=torch.long)
        att = torch.zeros((len(filled), width), dtype=torch.long)
        for i, f in enumerate(filled):
            ids[i, : len(f.input_ids)] = torch.tensor(f.input_ids)
            att[i, : len(f.input_ids)] = 1
        pos = torch.tensor([f.mask_position for f in filled], dtype=torch.long)
        return {"input_ids": ids, "attention_mask": att, "mask_positions": pos}
