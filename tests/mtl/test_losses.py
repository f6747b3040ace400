"""The switched loss: KL to stored soft labels (MSE for regression) on fixed tensors."""

from __future__ import annotations

import math

import pytest
import torch

from selectsearch.mtl.losses import distillation_loss, soft_targets, supervised_loss


def test_kl_matches_hand_computation() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    soft = torch.tensor([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    q = torch.softmax(logits, -1)
    expected = sum(float(soft[i, j]) * math.log(float(soft[i, j]) / float(q[i, j]))
                   for i in range(2) for j in range(3)) / 2
    assert abs(float(distillation_loss("classification", logits, soft)) - expected) < 1e-6


def test_kl_is_zero_at_the_teacher_and_positive_elsewhere() -> None:
    logits = torch.tensor([[0.3, -0.2, 1.5]])
    teacher = soft_targets("classification", logits)
    assert abs(float(distillation_loss("classification", logits, teacher))) < 1e-6
    assert float(distillation_loss("classification", logits + torch.tensor([1.0, 0, 0]),
                                   teacher)) > 0


def test_regression_switch_is_mse_to_stored_values() -> None:
    pred = torch.tensor([1.0, 2.0, 4.0])
    stored = torch.tensor([1.5, 2.0, 3.0])
    assert float(distillation_loss("regression", pred, stored)) == pytest.approx((0.25 + 1.0) / 3)
    assert torch.equal(soft_targets("regression", pred), pred)


def test_supervised_losses() -> None:
    logits = torch.tensor([[2.0, 0.0]])
    ce = float(supervised_loss("classification", logits, torch.tensor([0])))
    assert abs(ce - math.log(1 + math.exp(-2.0))) < 1e-6
    assert float(supervised_loss("regression", torch.tensor([1.0]), torch.tensor([3.0]))) == 4.0
