"""The two cluster heads and the learnable marginal.

A :class:`ClusterHead` maps an embedding to K logits (``softmax`` gives ``p(z|y)`` or
``q(z|x)``). A :class:`Marginal` holds ``theta`` (``r = softmax(theta)``) with its own Adam
optimiser: :meth:`Marginal.fit_step` takes one step on ``CE(stopgrad(pbar), r)``.

Example:
    >>> import torch
    >>> head = ClusterHead(4, 3)
    >>> head(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from selectsearch.mico.loss import cross_entropy

__all__ = ["ClusterHead", "Marginal", "auto_scale"]


class ClusterHead(nn.Module):
    """``logits = W f + b`` over K clusters (a linear layer, as the reference's default)."""

    def __init__(self, dim: int, n_clusters: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, n_clusters)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, K)`` logits."""
        out: torch.Tensor = self.linear(features)
        return out

    def init_from_centroids(self, centroids: np.ndarray, scale: float) -> None:
        """Start at nearest-centroid routing: ``W = scale * centroids``, ``b = 0``."""
        weight = torch.as_tensor(np.asarray(centroids, dtype=np.float32) * scale)
        if weight.shape != self.linear.weight.shape:
            raise ValueError(f"centroids {tuple(weight.shape)} do not fit head {tuple(self.linear.weight.shape)}")
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.zero_()


class Marginal(nn.Module):
    """``r(z) = softmax(theta)``, fitted to the batch marginal by its own inner Adam step.

    Args:
        n_clusters: K.
        lr: learning rate of the inner Adam optimiser (reference 0.1).
    """

    def __init__(self, n_clusters: int, lr: float = 0.1) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.zeros(n_clusters))
        self.optimizer = torch.optim.Adam([self.theta], lr=lr)

    def log_r(self) -> torch.Tensor:
        """``log r``, shape ``(K,)``."""
        return torch.log_softmax(self.theta, dim=-1)

    def fit_step(self, pbar: torch.Tensor) -> float:
        """One Adam step on ``CE(stopgrad(pbar), r)``; returns that cross-entropy before the step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = cross_entropy(pbar.detach()[None, :], self.log_r()[None, :])
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())

    def optimizer_state(self) -> dict[str, Any]:
        """State of the inner optimiser (for checkpoints)."""
        state: dict[str, Any] = self.optimizer.state_dict()
        return state


def auto_scale(vectors: np.ndarray, centroids: np.ndarray, *, target_gap: float = 3.0) -> float:
    """Logit scale that puts the median top-1/top-2 logit gap of ``vectors`` at ``target_gap``.

    Cosines to centroids can be bunched (e.g. a random encoder) or spread (a trained one); a fixed
    scale would make the initial heads either uniform or saturated. ``exp(3) = 20``: the nearest
    centroid is about 20 times likelier than the runner-up for the median document.
    """
    sims = np.asarray(vectors, dtype=np.float32) @ np.asarray(centroids, dtype=np.float32).T
    top2 = -np.sort(-sims, axis=1)[:, :2]
    gap = float(np.median(top2[:, 0] - top2[:, 1]))
    return target_gap / max(gap, 1e-6)
