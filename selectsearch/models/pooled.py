"""Standard fine-tuning: a head on the pooled encoder output of the plain input.

:class:`PooledModel` is the ``method="finetune"`` counterpart of DynaMaR's mask-token model
(:mod:`selectsearch.models.dynamar`); :class:`PlainBatcher` tokenises its inputs. The ReAugKD
student (:mod:`selectsearch.distill.student`) uses the same batcher.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from selectsearch.data.classification import Row
from selectsearch.models.encoder import mean_pool

__all__ = ["PlainBatcher", "PooledModel"]


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

    @property
    def hidden_size(self) -> int:
        """Size of the pooled vector."""
        return int(self.encoder.config.hidden_size)

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The mean-pooled (or [CLS]) encoder output ``(batch, hidden_size)``."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        vec: torch.Tensor = mean_pool(hidden, attention_mask) if self.pooling == "mean" else hidden[:, 0]
        return vec

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Head outputs ``(batch, num_outputs)``."""
        out: torch.Tensor = self.head(self.dropout(self.pooled(input_ids, attention_mask)))
        return out


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
