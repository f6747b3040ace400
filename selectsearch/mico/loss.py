"""The MICO objective (``shared/docs/methods.md`` section 1).

For a batch of B clicked pairs ``(x_i, y_i)`` with document assignments ``p_i = p(z|y_i)`` and
query routings ``q_i = q(z|x_i)``:

* ``H_cond = (1/B) sum_i -sum_z p_i(z) log q_i(z)``;
* ``pbar = (1/B) sum_i p_i`` (the batch cluster marginal);
* inner step: the marginal ``r = softmax(theta)`` takes one Adam step on ``CE(stopgrad(pbar), r)``
  with its own optimiser (theta is never in the main optimiser);
* main loss: ``L = H_cond - beta * CE(pbar, r)`` with ``r`` held fixed.

Example:
    >>> import torch
    >>> p = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> out = mico_loss(p, p.clamp(1e-6, 1.0).log(), torch.log(torch.tensor([0.5, 0.5])), beta=1.0)
    >>> round(float(out.h_marginal), 4)
    0.6931
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["MicoLoss", "batch_marginal", "cross_entropy", "mico_loss"]


class MicoLoss(NamedTuple):
    """The loss and its two terms (scalars)."""

    loss: torch.Tensor
    h_cond: torch.Tensor
    h_marginal: torch.Tensor


def cross_entropy(p: torch.Tensor, log_q: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-sum_z p(z) log q(z)``; ``log_q`` broadcasts against ``p``."""
    return -(p * log_q).sum(-1).mean()


def batch_marginal(p: torch.Tensor) -> torch.Tensor:
    """``pbar(z) = (1/B) sum_i p(z|y_i)`` for ``p`` of shape ``(B, K)``."""
    if p.dim() != 2:
        raise ValueError(f"expected (B, K) assignment probabilities, got shape {tuple(p.shape)}")
    return p.mean(0)


def mico_loss(p: torch.Tensor, log_q: torch.Tensor, log_r: torch.Tensor, *, beta: float) -> MicoLoss:
    """``L = H(p, q) - beta * CE(pbar, r)``.

    Args:
        p: ``(B, K)`` document-assignment probabilities (with gradient).
        log_q: ``(B, K)`` log query-routing probabilities (with gradient).
        log_r: ``(K,)`` log marginal; detached here (theta is fitted by its own step).
        beta: entropy weight.
    """
    if p.shape != log_q.shape:
        raise ValueError(f"p {tuple(p.shape)} and log_q {tuple(log_q.shape)} must have the same shape")
    h_cond = cross_entropy(p, log_q)
    h_marginal = cross_entropy(batch_marginal(p)[None, :], log_r.detach()[None, :])
    return MicoLoss(loss=h_cond - beta * h_marginal, h_cond=h_cond, h_marginal=h_marginal)
