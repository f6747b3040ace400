"""The three ReAugKD losses: supervised contrastive, relational and distillation.

All functions take torch tensors and return a scalar tensor.

Example:
    >>> import torch
    >>> z = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]]), dim=1)
    >>> round(float(supcon_loss(z, torch.tensor([0, 0, 1]), tau=1.0)), 4)
    0.4846
"""

from __future__ import annotations

import torch
from torch.nn import functional as nnf

__all__ = ["kd_loss", "relational_loss", "soften", "supcon_loss"]


def supcon_loss(z: torch.Tensor, labels: torch.Tensor, *, tau: float, reduction: str = "mean") -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. 2020, "L_out").

    ``L_i = -1/|P(i)| sum_{p in P(i)} log( exp(z_i.z_p/tau) / sum_{a != i} exp(z_i.z_a/tau) )``
    with ``P(i)`` the other rows sharing ``i``'s label. Anchors without positives are skipped.

    Args:
        z: ``(n, d)`` L2-normalised embeddings.
        labels: ``(n,)`` integer labels.
        tau: temperature.
        reduction: ``"mean"`` over anchors with positives, or ``"sum"``.
    """
    n = z.shape[0]
    sim = z @ z.T / tau
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(eye, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (labels.view(-1, 1) == labels.view(1, -1)) & ~eye
    n_pos = pos.sum(1)
    has = n_pos > 0
    if not bool(has.any()):
        return z.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(1)[has]) / n_pos[has]
    return per_anchor.mean() if reduction == "mean" else per_anchor.sum()


def relational_loss(
    z_student: torch.Tensor,
    z_teacher_rows: torch.Tensor,
    z_teacher_cols: torch.Tensor,
    *,
    tau_t: float,
    tau_s: float,
    reduction: str = "mean",
) -> torch.Tensor:
    """``sum_i KL(q_i || p_i)`` with ``q_ij = softmax_j(zT_i.zT_j/tau_t)``, ``p_ij = softmax_j(zS_i.zT_j/tau_s)``.

    Args:
        z_student: ``(b, d)`` normalised student embeddings of the batch rows.
        z_teacher_rows: ``(b, d)`` normalised teacher (projected) embeddings of the same rows.
        z_teacher_cols: ``(m, d)`` the teacher entries compared against: the batch (usually
            ``z_teacher_rows`` itself) plus any sampled KB entries.
        tau_t, tau_s: teacher and student temperatures.
        reduction: ``"mean"`` over the rows (default) or ``"sum"``.
    """
    log_q = nnf.log_softmax(z_teacher_rows @ z_teacher_cols.T / tau_t, dim=1)
    log_p = nnf.log_softmax(z_student @ z_teacher_cols.T / tau_s, dim=1)
    kl = (log_q.exp() * (log_q - log_p)).sum(1)
    return kl.mean() if reduction == "mean" else kl.sum()


def soften(probs: torch.Tensor, temperature: float, eps: float = 1e-8) -> torch.Tensor:
    """Teacher probabilities at temperature ``T``: ``softmax(log p / T)`` (= ``softmax(logits / T)``)."""
    return nnf.softmax(torch.log(probs.clamp_min(eps)) / temperature, dim=1)


def kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """Hinton distillation: ``T^2 * mean_i KL(soften(p_T, T) || softmax(s / T))``.

    ``teacher_probs`` may be any soft distributions (rows summing to 1).
    """
    target = soften(teacher_probs, temperature)
    log_p = nnf.log_softmax(student_logits / temperature, dim=1)
    kl = (target * (torch.log(target.clamp_min(1e-12)) - log_p)).sum(1)
    return kl.mean() * temperature**2
