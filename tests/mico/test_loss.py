"""The MICO loss against a hand computation, and the marginal's inner step."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from selectsearch.mico.heads import Marginal  # noqa: E402
from selectsearch.mico.loss import batch_marginal, mico_loss  # noqa: E402


def test_loss_matches_hand_computation() -> None:
    p = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3]])
    q = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.4, 0.4]])
    r = torch.tensor([0.5, 0.3, 0.2])
    beta = 5.0
    h_cond = -(
        0.7 * math.log(0.5) + 0.2 * math.log(0.25) + 0.1 * math.log(0.25)
        + 0.1 * math.log(0.2) + 0.6 * math.log(0.4) + 0.3 * math.log(0.4)
    ) / 2
    pbar = [0.4, 0.4, 0.2]
    h_marg = -(pbar[0] * math.log(0.5) + pbar[1] * math.log(0.3) + pbar[2] * math.log(0.2))
    out = mico_loss(p, q.log(), r.log(), beta=beta)
    assert float(out.h_cond) == pytest.approx(h_cond, rel=1e-6)
    assert float(out.h_marginal) == pytest.approx(h_marg, rel=1e-6)
    assert float(out.loss) == pytest.approx(h_cond - beta * h_marg, rel=1e-6)


def test_loss_gradient_does_not_reach_the_marginal() -> None:
    theta = torch.zeros(3, requires_grad=True)
    p = torch.softmax(torch.randn(4, 3, requires_grad=True), -1)
    out = mico_loss(p, torch.log_softmax(torch.randn(4, 3), -1), torch.log_softmax(theta, -1), beta=5.0)
    out.loss.backward()
    assert theta.grad is None


def test_batch_marginal_is_the_row_mean() -> None:
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    assert batch_marginal(p).tolist() == [0.75, 0.25]


def test_marginal_tracks_the_batch_marginal() -> None:
    marginal = Marginal(4, lr=0.1)
    target = torch.tensor([0.55, 0.25, 0.15, 0.05])
    for _ in range(300):
        marginal.fit_step(target)
    r = torch.softmax(marginal.theta.detach(), -1)
    assert torch.allclose(r, target, atol=0.02)
    # and follows when the batch marginal moves
    moved = torch.tensor([0.1, 0.2, 0.3, 0.4])
    for _ in range(300):
        marginal.fit_step(moved)
    assert torch.allclose(torch.softmax(marginal.theta.detach(), -1), moved, atol=0.02)


def test_marginal_is_not_in_the_main_parameters_of_a_head_optimiser() -> None:
    from selectsearch.mico.heads import ClusterHead

    head, marginal = ClusterHead(4, 3), Marginal(3)
    before = marginal.theta.detach().clone()
    opt = torch.optim.Adam(head.parameters(), lr=0.1)
    p = torch.softmax(head(torch.randn(8, 4)), -1)
    loss = mico_loss(p, p.log(), marginal.log_r(), beta=5.0).loss
    loss.backward()
    opt.step()
    assert torch.equal(marginal.theta.detach(), before)
