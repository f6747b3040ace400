"""The optimiser of an encoder with a fresh head: AdamW, three parameter groups.

Encoder weights train at ``learning_rate`` with ``weight_decay`` (biases and LayerNorm weights
without), the head at ``head_learning_rate`` without decay — the usual BERT fine-tuning recipe,
shared by the text classifiers and the ReAugKD student.
"""

from __future__ import annotations

from typing import Any

from selectsearch.train.arguments import TrainingArguments

__all__ = ["encoder_head_adamw"]


def encoder_head_adamw(model: Any, head: Any, args: TrainingArguments) -> Any:
    """AdamW over ``model``'s parameters, with ``head``'s (a submodule) in their own group."""
    import torch

    head_params = list(head.parameters())
    head_ids = {id(p) for p in head_params}
    decay: list[Any] = []
    no_decay: list[Any] = []
    for name, p in model.named_parameters():
        if id(p) not in head_ids:
            (no_decay if p.ndim < 2 or "LayerNorm" in name else decay).append(p)
    return torch.optim.AdamW(
        [
            {"params": decay, "lr": args.learning_rate, "weight_decay": args.weight_decay},
            {"params": no_decay, "lr": args.learning_rate, "weight_decay": 0.0},
            {"params": head_params, "lr": args.head_learning_rate, "weight_decay": 0.0},
        ]
    )
