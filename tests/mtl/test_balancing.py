"""Each baseline's weighting / gradient rule on a two-task toy problem with known gradients.

Shared parameter ``theta`` (2-vector), one scalar head ``h_t`` per task and
``L_t = h_t * (v_t . theta)``, so ``dL_t/dtheta = h_t v_t`` and ``dL_t/dh_t = v_t . theta``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from selectsearch.mtl.balancing import (
    DynamicWeightAverage,
    GradNorm,
    ParamGroups,
    PCGrad,
    UncertaintyWeighting,
    make_balancer,
    pcgrad_combine,
)

KINDS = {"a": "classification", "b": "regression"}


def grad(p: torch.Tensor) -> torch.Tensor:
    """``p.grad``, asserted to exist."""
    assert p.grad is not None
    return p.grad


def toy(va: tuple[float, float], vb: tuple[float, float], theta: tuple[float, float] = (1.0, 1.0)
        ) -> tuple[dict[str, torch.Tensor], ParamGroups, nn.Parameter, dict[str, nn.Parameter]]:
    th = nn.Parameter(torch.tensor(theta))
    heads = {"a": nn.Parameter(torch.tensor(1.0)), "b": nn.Parameter(torch.tensor(1.0))}
    vec = {"a": torch.tensor(va), "b": torch.tensor(vb)}
    losses = {t: heads[t] * torch.dot(vec[t], th) for t in ("a", "b")}
    groups = ParamGroups(shared=[th], last_shared=[th], tasks={t: [heads[t]] for t in heads})
    return losses, groups, th, heads


def test_equal_weights_sum_gradients() -> None:
    losses, groups, th, heads = toy((1.0, 2.0), (3.0, -1.0))
    weights = make_balancer("equal", ["a", "b"], KINDS).backward(losses, groups)
    assert weights == {"a": 1.0, "b": 1.0}
    assert torch.allclose(grad(th), torch.tensor([4.0, 1.0]))
    assert float(grad(heads["a"])) == 3.0 and float(grad(heads["b"])) == 2.0


def test_async_kd_uses_equal_weights() -> None:
    assert make_balancer("async-kd", ["a", "b"], KINDS).name == "equal"


def test_uncertainty_weighting_rule() -> None:
    losses, groups, th, _ = toy((1.0, 2.0), (3.0, -1.0))
    bal = UncertaintyWeighting(["a", "b"], KINDS)
    with torch.no_grad():
        bal.log_vars.copy_(torch.tensor([0.5, -0.3]))
    bal.backward(losses, groups)
    wa, wb = math.exp(-0.5), 0.5 * math.exp(0.3)  # classification 1, regression 1/2
    assert torch.allclose(grad(th), wa * torch.tensor([1.0, 2.0]) + wb * torch.tensor([3.0, -1.0]))
    # d/ds of c exp(-s) L + s/2 = -c exp(-s) L + 1/2 with L_a = 3, L_b = 2
    expected = torch.tensor([-wa * 3.0 + 0.5, -wb * 2.0 + 0.5])
    assert torch.allclose(grad(bal.log_vars), expected)


def test_dwa_rule() -> None:
    bal = DynamicWeightAverage(["a", "b"], KINDS, temperature=2.0)
    bal.end_interval({"a": 1.0, "b": 1.0})
    assert bal.weights() == {"a": 1.0, "b": 1.0}  # fewer than two intervals
    bal.end_interval({"a": 0.5, "b": 1.0})  # a's loss halved, b's flat
    ea, eb = math.exp(0.5 / 2), math.exp(1.0 / 2)
    expected = {"a": 2 * ea / (ea + eb), "b": 2 * eb / (ea + eb)}
    assert bal.weights() == pytest.approx(expected)
    losses, groups, th, _ = toy((1.0, 0.0), (0.0, 1.0))
    bal.backward(losses, groups)
    assert torch.allclose(grad(th), torch.tensor([expected["a"], expected["b"]]))
    assert sum(bal.weights().values()) == pytest.approx(2.0)


def test_gradnorm_rule() -> None:
    losses, groups, th, _ = toy((3.0, 4.0), (0.0, 1.0))  # ||g_a|| = 5, ||g_b|| = 1
    bal = GradNorm(["a", "b"], KINDS, alpha=1.5, lr=0.1)
    used = bal.backward(losses, groups)
    assert used == {"a": 1.0, "b": 1.0}
    assert torch.allclose(grad(th), torch.tensor([3.0, 5.0]))  # model: weighted by used weights
    # First step: r_t = 1, target = mean(G) = 3; d/dw sum|w_t n_t - 3| = sign(.) n_t
    assert torch.allclose(grad(bal.w), torch.tensor([5.0, -1.0]))
    w = bal.weights()
    assert w["a"] < 1.0 < w["b"] and w["a"] + w["b"] == pytest.approx(2.0)


def test_gradnorm_favours_the_slower_task() -> None:
    bal = GradNorm(["a", "b"], KINDS, alpha=1.5, lr=0.1)
    losses, groups, _, _ = toy((1.0, 0.0), (0.0, 1.0))  # equal gradient norms
    bal.backward(losses, groups)  # records L(0) = 1 and 1
    losses, groups, _, _ = toy((1.0, 0.0), (0.0, 1.0), theta=(0.2, 1.0))  # a learned fast
    before = bal.weights()
    bal.backward(losses, groups)
    after = bal.weights()
    assert after["b"] - before["b"] > 0 > after["a"] - before["a"]


def test_pcgrad_projects_conflicting_gradients() -> None:
    losses, groups, th, heads = toy((1.0, 0.0), (-1.0, 1.0))
    PCGrad(["a", "b"], KINDS).backward(losses, groups)
    # g_a' = g_a - (g_a.g_b)/|g_b|^2 g_b = (0.5, 0.5); g_b' = g_b - (g_b.g_a)/|g_a|^2 g_a = (0, 1)
    assert torch.allclose(grad(th), torch.tensor([0.5, 1.5]))
    assert float(grad(heads["a"])) == 1.0 and float(grad(heads["b"])) == 0.0
    # projected gradients no longer conflict with the other task's original gradient
    g = [torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0])]
    import random

    out = pcgrad_combine(g, random.Random(0))
    assert torch.allclose(out, torch.tensor([0.5, 1.5]))


def test_pcgrad_leaves_agreeing_gradients_alone() -> None:
    losses, groups, th, _ = toy((1.0, 0.0), (1.0, 1.0))
    PCGrad(["a", "b"], KINDS).backward(losses, groups)
    assert torch.allclose(grad(th), torch.tensor([2.0, 1.0]))


def test_unknown_method() -> None:
    from selectsearch.errors import SelectSearchError

    with pytest.raises(SelectSearchError, match="choose one of"):
        make_balancer("magic", ["a"], {"a": "classification"})
