"""Loss weighting and gradient balancing across tasks: the baselines of the multi-task trainer.

Every balancer turns the per-task losses of one step into gradients on the parameters
(``backward``) and may keep state between steps. The trainer calls the same interface for every
method, so one flag changes the method and nothing else.

* :class:`EqualWeights`: ``sum_t L_t`` (also the base of async-KD).
* :class:`UncertaintyWeighting` (Kendall et al. 2018): ``exp(-s_t) L_t + s_t / 2`` for
  classification and ``exp(-s_t) L_t / 2 + s_t / 2`` for regression, ``s_t = log sigma_t^2``
  learned with the model.
* :class:`DynamicWeightAverage` (Liu et al. 2019): ``w_t = K softmax_t(r_t / T)`` with
  ``r_t = L_t(k-1) / L_t(k-2)`` the ratio of the task's mean training loss over the last two
  intervals (an interval is the span between two evaluations); ``w = 1`` for the first two.
* :class:`GradNorm` (Chen et al. 2018): learned weights; ``G_t = w_t ||grad_W L_t||`` on the
  last shared layer ``W``; the weights minimise ``sum_t |G_t - mean(G) r_t^alpha|`` with
  ``r_t = (L_t/L_t(0)) / mean_j(L_j/L_j(0))`` and are renormalised to sum to ``K``.
* :class:`PCGrad` (Yu et al. 2020): per-task gradients on the shared parameters; each is
  projected onto the normal plane of every other task's gradient it conflicts with
  (negative dot product; other tasks in random order), then summed. Heads get their own gradients.

Example:
    >>> balancer = make_balancer("dwa", ["a", "b"], {"a": "classification", "b": "regression"})
    >>> balancer.name
    'dwa'
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from selectsearch.errors import SelectSearchError

__all__ = [
    "METHODS",
    "Balancer",
    "DynamicWeightAverage",
    "EqualWeights",
    "GradNorm",
    "PCGrad",
    "ParamGroups",
    "UncertaintyWeighting",
    "make_balancer",
]

#: Methods the trainer accepts. ``async-kd`` = equal weights + the per-task KD switch.
METHODS = ("async-kd", "equal", "uncertainty", "dwa", "gradnorm", "pcgrad")


@dataclass
class ParamGroups:
    """Who owns which parameters.

    Attributes:
        shared: trainable parameters shared by all tasks (the encoder).
        last_shared: the last shared layer's parameters (GradNorm's ``W``).
        tasks: each task's own parameters (its head).
    """

    shared: list[nn.Parameter]
    last_shared: list[nn.Parameter]
    tasks: dict[str, list[nn.Parameter]]


class Balancer:
    """Equal-weight base class; subclasses override :meth:`weights` or :meth:`backward`."""

    name = "equal"

    def __init__(self, tasks: Sequence[str], kinds: Mapping[str, str], *, seed: int = 0) -> None:
        self.tasks = list(tasks)
        self.kinds = dict(kinds)
        self.seed = seed

    def parameters(self) -> list[nn.Parameter]:
        """Extra parameters trained by the main optimizer (none by default)."""
        return []

    def weights(self) -> dict[str, float]:
        """Current loss weights (for the log)."""
        return {t: 1.0 for t in self.tasks}

    def backward(self, losses: Mapping[str, torch.Tensor], groups: ParamGroups) -> dict[str, float]:
        """Accumulate gradients for one step's ``losses``; return the weights used."""
        w = self.weights()
        total = sum((w[t] * loss for t, loss in losses.items()), torch.zeros(()))
        total.backward()
        return {t: w[t] for t in losses}

    def end_interval(self, mean_losses: Mapping[str, float]) -> None:
        """Called at each evaluation with every task's mean training loss since the last one."""

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""


class EqualWeights(Balancer):
    """``sum_t L_t``."""

    name = "equal"


class UncertaintyWeighting(Balancer):
    """Homoscedastic uncertainty weighting (Kendall, Gal and Cipolla, CVPR 2018)."""

    name = "uncertainty"

    def __init__(self, tasks: Sequence[str], kinds: Mapping[str, str], *, seed: int = 0) -> None:
        super().__init__(tasks, kinds, seed=seed)
        self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))

    def parameters(self) -> list[nn.Parameter]:
        """The log-variances ``s_t``."""
        return [self.log_vars]

    def _scale(self, task: str) -> float:
        return 0.5 if self.kinds[task] == "regression" else 1.0

    def weights(self) -> dict[str, float]:
        """Effective weights ``c_t exp(-s_t)``."""
        return {t: self._scale(t) * math.exp(-float(self.log_vars[i].detach()))
                for i, t in enumerate(self.tasks)}

    def backward(self, losses: Mapping[str, torch.Tensor], groups: ParamGroups) -> dict[str, float]:
        """``sum_t c_t exp(-s_t) L_t + s_t / 2`` (``c_t`` = 1, or 1/2 for regression)."""
        total = torch.zeros(())
        for t, loss in losses.items():
            s = self.log_vars[self.tasks.index(t)]
            total = total + self._scale(t) * torch.exp(-s) * loss + 0.5 * s
        total.backward()
        w = self.weights()
        return {t: w[t] for t in losses}

    def state_dict(self) -> dict[str, Any]:
        """The log-variances (also in the optimizer; kept here for clarity)."""
        return {"log_vars": self.log_vars.detach().clone()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the log-variances in place (the optimizer keeps its reference)."""
        with torch.no_grad():
            self.log_vars.copy_(state["log_vars"])


class DynamicWeightAverage(Balancer):
    """Dynamic weight average (Liu, Johns and Davison, CVPR 2019)."""

    name = "dwa"

    def __init__(self, tasks: Sequence[str], kinds: Mapping[str, str], *, seed: int = 0,
                 temperature: float = 2.0) -> None:
        super().__init__(tasks, kinds, seed=seed)
        self.temperature = temperature
        self.history: list[dict[str, float]] = []
        self._w = {t: 1.0 for t in self.tasks}

    def weights(self) -> dict[str, float]:
        """Weights from the last two intervals (1 until two intervals have passed)."""
        return dict(self._w)

    def end_interval(self, mean_losses: Mapping[str, float]) -> None:
        """Append the interval's mean losses and recompute the weights."""
        self.history.append({t: float(mean_losses[t]) for t in self.tasks})
        self.history = self.history[-2:]
        if len(self.history) < 2:
            return
        prev, last = self.history
        ratios = [last[t] / max(prev[t], 1e-12) for t in self.tasks]
        exps = [math.exp(r / self.temperature) for r in ratios]
        k = len(self.tasks)
        self._w = {t: k * e / sum(exps) for t, e in zip(self.tasks, exps, strict=True)}

    def state_dict(self) -> dict[str, Any]:
        """Loss history and current weights."""
        return {"history": self.history, "w": self._w}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore history and weights."""
        self.history = [dict(h) for h in state["history"]]
        self._w = dict(state["w"])


def _flat(grads: Sequence[torch.Tensor | None], params: Sequence[nn.Parameter]) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(grads, params, strict=True)])


class GradNorm(Balancer):
    """GradNorm (Chen et al., ICML 2018) with its own Adam optimizer for the weights."""

    name = "gradnorm"

    def __init__(self, tasks: Sequence[str], kinds: Mapping[str, str], *, seed: int = 0,
                 alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__(tasks, kinds, seed=seed)
        self.alpha = alpha
        self.w = nn.Parameter(torch.ones(len(self.tasks)))
        self.optimizer = torch.optim.Adam([self.w], lr=lr)
        self.initial_losses: dict[str, float] | None = None

    def weights(self) -> dict[str, float]:
        """Current learned weights."""
        return {t: float(self.w[i].detach()) for i, t in enumerate(self.tasks)}

    def backward(self, losses: Mapping[str, torch.Tensor], groups: ParamGroups) -> dict[str, float]:
        """Weighted loss backward for the model; one GradNorm step for the weights."""
        names = [t for t in self.tasks if t in losses]
        if self.initial_losses is None:
            self.initial_losses = {t: max(float(losses[t].detach()), 1e-12) for t in self.tasks
                                   if t in losses}
        idx = [self.tasks.index(t) for t in names]
        used = self.weights()
        norms = []
        for t in names:
            g = torch.autograd.grad(losses[t], groups.last_shared, retain_graph=True,
                                    allow_unused=True)
            norms.append(_flat(g, groups.last_shared).norm())
        w = self.w[idx]
        gnorm = w * torch.stack(norms).detach()
        ratio = torch.tensor([float(losses[t].detach()) / self.initial_losses.get(t, 1.0) for t in names])
        rel = ratio / ratio.mean()
        target = (gnorm.mean() * rel.pow(self.alpha)).detach()
        grad_loss = (gnorm - target).abs().sum()
        self.optimizer.zero_grad()
        self.w.grad = torch.autograd.grad(grad_loss, self.w)[0]
        total = sum((used[t] * losses[t] for t in names), torch.zeros(()))
        total.backward()
        self.optimizer.step()
        with torch.no_grad():
            self.w.clamp_(min=1e-3)
            self.w.mul_(len(self.tasks) / self.w.sum())
        return {t: used[t] for t in names}

    def state_dict(self) -> dict[str, Any]:
        """Weights, their optimizer and the initial losses."""
        return {"w": self.w.detach().clone(), "optimizer": self.optimizer.state_dict(),
                "initial_losses": self.initial_losses}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore weights, optimizer and initial losses."""
        with torch.no_grad():
            self.w.copy_(state["w"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.initial_losses = state["initial_losses"]


def pcgrad_combine(grads: Sequence[torch.Tensor], rng: random.Random) -> torch.Tensor:
    """PCGrad's projection of flat per-task gradients, summed.

    Each ``g_i`` is projected, for every other task ``j`` in random order with
    ``g_i . g_j < 0``, onto the normal plane of the ORIGINAL ``g_j``.
    """
    out = torch.zeros_like(grads[0])
    for i, g in enumerate(grads):
        gi = g.clone()
        others = [j for j in range(len(grads)) if j != i]
        rng.shuffle(others)
        for j in others:
            dot = torch.dot(gi, grads[j])
            if dot < 0:
                gi = gi - dot / grads[j].pow(2).sum().clamp(min=1e-20) * grads[j]
        out += gi
    return out


class PCGrad(Balancer):
    """Projecting conflicting gradients (Yu et al., NeurIPS 2020)."""

    name = "pcgrad"

    def __init__(self, tasks: Sequence[str], kinds: Mapping[str, str], *, seed: int = 0) -> None:
        super().__init__(tasks, kinds, seed=seed)
        self.rng = random.Random(seed)

    def backward(self, losses: Mapping[str, torch.Tensor], groups: ParamGroups) -> dict[str, float]:
        """One backward per task; projected sum on shared parameters, own gradient on heads."""
        names = list(losses)
        flat = []
        for t in names:
            own = groups.tasks.get(t, [])
            g = torch.autograd.grad(losses[t], groups.shared + own, retain_graph=True,
                                    allow_unused=True)
            flat.append(_flat(g[: len(groups.shared)], groups.shared))
            for p, gp in zip(own, g[len(groups.shared):], strict=True):
                if gp is not None:
                    p.grad = gp if p.grad is None else p.grad + gp
        combined = pcgrad_combine(flat, self.rng)
        offset = 0
        for p in groups.shared:
            n = p.numel()
            piece = combined[offset : offset + n].view_as(p)
            p.grad = piece.clone() if p.grad is None else p.grad + piece
            offset += n
        return {t: 1.0 for t in names}

    def state_dict(self) -> dict[str, Any]:
        """The random generator's state (task order of the projections)."""
        return {"rng": self.rng.getstate()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the random generator."""
        self.rng.setstate(state["rng"])


def make_balancer(method: str, tasks: Sequence[str], kinds: Mapping[str, str], *,
                  seed: int = 0, **options: Any) -> Balancer:
    """The balancer of ``method`` (one of :data:`METHODS`; ``async-kd`` uses equal weights).

    Raises:
        SelectSearchError: unknown method.
    """
    classes: dict[str, type[Balancer]] = {
        "async-kd": EqualWeights, "equal": EqualWeights, "uncertainty": UncertaintyWeighting,
        "dwa": DynamicWeightAverage, "gradnorm": GradNorm, "pcgrad": PCGrad,
    }
    if method not in classes:
        raise SelectSearchError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    return classes[method](tasks, kinds, seed=seed, **options)
