"""The ReAugKD losses against values computed by hand on fixed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from selectsearch.distill.losses import kd_loss, relational_loss, soften, supcon_loss


def _softmax(xs: list[float]) -> list[float]:
    e = [math.exp(x) for x in xs]
    return [v / sum(e) for v in e]


def test_supcon_matches_hand_computation() -> None:
    # z0=(1,0), z1=(.8,.6), z2=(0,1): dot products .8 (0-1), 0 (0-2), .6 (1-2); labels 0,0,1
    z = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    tau = 0.5
    # anchor 0: positive 1 against {1, 2}; anchor 1: positive 0 against {0, 2}; anchor 2: no positive
    l0 = -math.log(math.exp(0.8 / tau) / (math.exp(0.8 / tau) + math.exp(0.0 / tau)))
    l1 = -math.log(math.exp(0.8 / tau) / (math.exp(0.8 / tau) + math.exp(0.6 / tau)))
    assert float(supcon_loss(z, labels, tau=tau)) == pytest.approx((l0 + l1) / 2, abs=1e-6)
    assert float(supcon_loss(z, labels, tau=tau, reduction="sum")) == pytest.approx(l0 + l1, abs=1e-6)


def test_supcon_averages_over_several_positives() -> None:
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([7, 7, 7])
    # anchor 0: positives 1 (dot 0) and 2 (dot -1), denominator exp(0) + exp(-1) (tau = 1)
    den0 = math.exp(0) + math.exp(-1)
    l0 = -0.5 * (math.log(math.exp(0) / den0) + math.log(math.exp(-1) / den0))
    den1 = math.exp(0) + math.exp(0)  # anchor 1: dots 0 and 0
    l1 = -0.5 * (2 * math.log(1 / den1))
    l2 = l0  # symmetric to anchor 0
    assert float(supcon_loss(z, labels, tau=1.0)) == pytest.approx((l0 + l1 + l2) / 3, abs=1e-6)


def test_supcon_without_positives_is_zero_and_differentiable() -> None:
    z = torch.nn.functional.normalize(torch.randn(4, 3), dim=1).requires_grad_()
    loss = supcon_loss(z, torch.arange(4), tau=0.1)
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_relational_loss_matches_hand_computation() -> None:
    zt = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    zs = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    kls = []
    for i in range(2):
        q = _softmax([float(zt[i] @ zt[j]) / 0.5 for j in range(2)])  # tau_t = 0.5
        p = _softmax([float(zs[i] @ zt[j]) / 0.25 for j in range(2)])  # tau_s = 0.25
        kls.append(sum(qj * math.log(qj / pj) for qj, pj in zip(q, p, strict=True)))
    got = relational_loss(zs, zt, zt, tau_t=0.5, tau_s=0.25)
    assert float(got) == pytest.approx(sum(kls) / 2, abs=1e-6)
    assert float(relational_loss(zs, zt, zt, tau_t=0.5, tau_s=0.25, reduction="sum")) == pytest.approx(
        sum(kls), abs=1e-6
    )


def test_relational_loss_with_extra_columns_and_zero_when_aligned() -> None:
    zt = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2], [0.1, 1.0]]), dim=1)
    extra = torch.nn.functional.normalize(torch.tensor([[1.0, 1.0]]), dim=1)
    cols = torch.cat([zt, extra])
    # a student equal to the teacher with equal temperatures has KL 0
    assert float(relational_loss(zt, zt, cols, tau_t=0.2, tau_s=0.2)) == pytest.approx(0.0, abs=1e-6)
    # hand value, row 0 only, three columns (tau 1)
    zs = torch.tensor([[0.0, 1.0]])
    q = _softmax([float(zt[0] @ c) for c in cols])
    p = _softmax([float(zs[0] @ c) for c in cols])
    want = sum(a * math.log(a / b) for a, b in zip(q, p, strict=True))
    assert float(relational_loss(zs, zt[:1], cols, tau_t=1.0, tau_s=1.0)) == pytest.approx(want, abs=1e-6)


def test_kd_loss_matches_hand_computation() -> None:
    logits = torch.tensor([[0.0, 0.0]])
    teacher = torch.tensor([[0.8, 0.2]])
    t1 = 0.8 * math.log(0.8 / 0.5) + 0.2 * math.log(0.2 / 0.5)
    assert float(kd_loss(logits, teacher, temperature=1.0)) == pytest.approx(t1, abs=1e-6)
    # T = 2: teacher softened to sqrt-normalised (2/3, 1/3), loss scaled by T^2
    a, b = math.sqrt(0.8), math.sqrt(0.2)
    s = [a / (a + b), b / (a + b)]
    t2 = 4 * sum(x * math.log(x / 0.5) for x in s)
    assert float(soften(teacher, 2.0)[0, 0]) == pytest.approx(s[0], abs=1e-6)
    assert float(kd_loss(logits, teacher, temperature=2.0)) == pytest.approx(t2, abs=1e-5)
