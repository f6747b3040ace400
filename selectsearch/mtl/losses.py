"""Task losses: supervised (CE / MSE) and the self-distillation loss after the switch.

Example:
    >>> import torch
    >>> logits = torch.tensor([[2.0, 0.0]])
    >>> soft = torch.tensor([[0.5, 0.5]])
    >>> round(float(distillation_loss("classification", logits, soft)), 4)
    0.4338
"""

from __future__ import annotations

import torch
from torch.nn import functional

__all__ = ["distillation_loss", "soft_targets", "supervised_loss"]


def supervised_loss(kind: str, output: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on class indices, or MSE on float targets for regression."""
    if kind == "classification":
        return functional.cross_entropy(output, labels.long())
    return functional.mse_loss(output, labels.float())


def distillation_loss(kind: str, output: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """KL(soft || softmax(output)) averaged over the batch; MSE to the stored values for regression.

    Args:
        kind: ``"classification"`` or ``"regression"``.
        output: logits ``[N, C]`` or predictions ``[N]``.
        soft: stored teacher probabilities ``[N, C]`` or teacher predictions ``[N]``.
    """
    if kind == "classification":
        if soft.shape != output.shape:
            raise ValueError(f"soft labels {tuple(soft.shape)} != logits {tuple(output.shape)}")
        return functional.kl_div(functional.log_softmax(output, dim=-1), soft, reduction="batchmean")
    return functional.mse_loss(output, soft.float())


def soft_targets(kind: str, output: torch.Tensor) -> torch.Tensor:
    """What the teacher stores: softmax probabilities, or the regression values themselves."""
    return torch.softmax(output, dim=-1) if kind == "classification" else output
