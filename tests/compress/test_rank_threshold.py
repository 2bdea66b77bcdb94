"""Low-rank STR's operator: the singular-value soft threshold by hand, its factors, and the
controller's cost-weighted shift."""

import math

import pytest
import torch

from kiloml.compress.rank_threshold import (
    low_rank_factors,
    numerical_rank,
    project_to_rank,
    rank_keys,
    singular_value_threshold,
)
from kiloml.compress.soft_threshold import shift_for_keys


def test_singular_value_threshold_forward_and_gradient_by_hand():
    # W = 3 e1 e2^T + 1 e2 e1^T: singular values 3 and 1; threshold 4 sigmoid(0) = 2
    w = torch.tensor([[0.0, 3.0], [1.0, 0.0]], requires_grad=True)
    s = torch.tensor(0.0, requires_grad=True)
    out = singular_value_threshold(w, s, scale=4.0)
    assert torch.allclose(out, torch.tensor([[0.0, 1.0], [0.0, 0.0]]), atol=1e-6)
    (out * torch.tensor([[1.0, 2.0], [3.0, 4.0]])).sum().backward()
    # dL/dW = G - (I - p p^T) G (I - q q^T) with p = e1, q = e2: only G[1, 0] is removed
    assert torch.allclose(w.grad, torch.tensor([[1.0, 2.0], [0.0, 4.0]]), atol=1e-6)
    # dL/ds = -(p^T G q) * 4 * sigmoid'(0) = -2 * 4 * 0.25
    assert s.grad.item() == pytest.approx(-2.0, abs=1e-6)


def test_threshold_above_every_singular_value_gives_zero_and_below_shrinks_all():
    torch.manual_seed(0)
    w = torch.randn(5, 3)
    sigma = torch.linalg.svdvals(w)
    assert torch.count_nonzero(singular_value_threshold(w, torch.tensor(5.0), 2 * sigma[0])) == 0
    tau = 0.5 * float(sigma[-1])
    s = torch.tensor(math.log(tau / (1 - tau)))
    shrunk = singular_value_threshold(w, s)
    assert torch.allclose(torch.linalg.svdvals(shrunk), sigma - tau, atol=1e-5)


def test_factors_multiply_to_the_truncation():
    torch.manual_seed(1)
    w = torch.randn(7, 4, dtype=torch.float64)
    first, second = low_rank_factors(w, 2)
    assert first.shape == (2, 4) and second.shape == (7, 2)
    assert torch.allclose(second @ first, project_to_rank(w, 2), atol=1e-12)
    assert numerical_rank(second @ first) == 2
    # balanced: both factors carry sqrt(sigma)
    assert torch.allclose(first.norm(dim=1), second.norm(dim=0), atol=1e-12)


def test_rank_keys_and_cost_weighted_shift():
    w = torch.diag(torch.tensor([0.8, 0.4, 0.1]))
    keys = rank_keys(w, torch.tensor(0.0), scale=1.0)
    assert torch.allclose(keys, torch.logit(torch.tensor([0.8, 0.4, 0.1], dtype=torch.float64)))
    costs = torch.tensor([6.0, 6.0, 6.0])
    delta = shift_for_keys(keys, costs, removed=7)  # one component (6) is not enough: two go
    assert float(keys[1]) < delta < float(keys[0])
    assert shift_for_keys(keys, costs, removed=6) == pytest.approx(0.5 * float(keys[1] + keys[2]))
    assert shift_for_keys(keys, costs, removed=0) is None
    assert shift_for_keys(keys, costs, removed=18) is None  # everything: not a threshold
