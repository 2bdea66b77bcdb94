"""Soft threshold weight reparameterisation (STR; Kusupati et al., ICML 2020).

The forward pass uses ``W_eff = sign(W) * relu(|W| - c * sigmoid(s))`` with one learnable
scalar ``s`` per matrix: entries whose magnitude is at most the threshold ``c * sigmoid(s)`` are
exactly zero, the others shrink by it. The paper's ``g(s) = sigmoid(s)`` caps the threshold at 1,
which is fine for ImageNet CNNs but not for kiloml's small matrices, whose input and head
weights often exceed 1; so each matrix has a fixed scale ``c`` (its largest magnitude when STR
starts; 1 gives the paper's form). Autograd of the expression gives the paper's gradients:
``dW_eff/dW = 1[|W| > c sigmoid(s)]`` and
``dW_eff/ds = -sign(W) * c * sigmoid'(s) * 1[|W| > c sigmoid(s)]``.

:func:`common_shift` is the sparsity controller's step: the one shift ``delta`` of every ``s``
that makes exactly a given number of entries zero, found with one sort (weights enter as
``logit(|w| / c) - s``, the shift at which they fall below their matrix's threshold).
"""

import math

import torch
from torch import nn


def soft_threshold(weight: torch.Tensor, s: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``sign(weight) * relu(|weight| - scale * sigmoid(s))`` (``s``: a scalar tensor); same
    shape as ``weight``."""
    return torch.sign(weight) * torch.relu(weight.abs() - scale * torch.sigmoid(s))


class SoftThreshold(nn.Module):
    """A ``torch.nn.utils.parametrize`` parametrization applying :func:`soft_threshold` with the
    threshold ``thresholds[name]`` and scale ``scales[name]``. Both live outside the model
    (plain dicts, not registered parameters), so the model's parameters are the same before,
    during and after the reparameterisation."""

    def __init__(self, thresholds: dict[str, torch.Tensor], scales: dict[str, float], name: str):
        super().__init__()
        self.thresholds, self.scales, self.name = thresholds, scales, name

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return soft_threshold(weight, self.thresholds[self.name], self.scales[self.name])


def threshold_keys(weight: torch.Tensor, s: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``logit(|weight| / scale) - s`` as float64 ``[numel]``: entry ``i`` is zero after
    :func:`soft_threshold` with ``s + delta`` exactly when ``keys[i] <= delta`` (``-inf`` for
    zeros, ``+inf`` for magnitudes of ``scale`` or more, which no threshold removes)."""
    magnitude = weight.detach().abs().reshape(-1).double() / scale
    keys = torch.log(magnitude) - torch.log1p(-magnitude.clamp(max=1.0))
    return torch.where(magnitude >= 1.0, math.inf, keys) - float(s.detach())


def common_shift(weights: list[torch.Tensor], thresholds: list[torch.Tensor],
                 scales: list[float], zeros: int) -> float | None:
    """The shift ``delta`` such that thresholds ``c_m sigmoid(s_m + delta)`` leave exactly ``zeros``
    of all the entries of ``weights`` zero (ties aside): the midpoint between the ``zeros``-th
    and the next smallest key. ``None`` when ``zeros`` is 0 (nothing to remove: the thresholds
    stay as they are) or when it cannot be reached (entries at or above their scale)."""
    keys = torch.cat([threshold_keys(w, s, c)
                      for w, s, c in zip(weights, thresholds, scales, strict=True)])
    return shift_for_keys(keys, torch.ones_like(keys), zeros)


def shift_for_keys(keys: torch.Tensor, costs: torch.Tensor, removed: float) -> float | None:
    """The shift ``delta`` that removes the items whose ``keys`` are ``<= delta`` (float64
    ``[n]``, each costing ``costs[i]`` stored values) with the least total cost of at least
    ``removed``: the midpoint between the last key removed and the next. ``None`` when nothing
    is to be removed or too much is asked (keys of ``+inf`` cannot be removed)."""
    if removed <= 0:
        return None
    order = torch.argsort(keys, stable=True)
    keys, cumulative = keys[order], torch.cumsum(costs[order].double(), 0)
    count = int(torch.searchsorted(cumulative, torch.tensor([float(removed)],
                                                            dtype=torch.float64))) + 1
    if count >= keys.numel():
        return None
    low, high = float(keys[count - 1]), float(keys[count])
    if not math.isfinite(high):
        return None if not math.isfinite(low) else low + 1.0
    if not math.isfinite(low):
        return high - 1.0
    return 0.5 * (low + high)


def project_to_budget(weights: list[torch.Tensor], kept: int) -> list[torch.Tensor]:
    """The controller's fallback: when the thresholds could not remove enough (entries grew past
    their scale), keep exactly ``kept`` nonzeros over all of ``weights``, split in proportion to
    each matrix's nonzeros now (largest remainders first) and chosen by magnitude within each;
    matrices already within budget come back unchanged."""
    nonzeros = [int(torch.count_nonzero(w)) for w in weights]
    total = sum(nonzeros)
    if total <= kept:
        return weights
    shares = [n * kept / total for n in nonzeros]
    quotas = [int(math.floor(share)) for share in shares]
    order = sorted(range(len(weights)), key=lambda i: quotas[i] - shares[i])
    for i in order[:kept - sum(quotas)]:
        quotas[i] += 1
    out = []
    for w, quota in zip(weights, quotas, strict=True):
        mask = torch.zeros(w.numel(), dtype=torch.bool)
        order_w = torch.argsort(w.abs().reshape(-1), descending=True, stable=True)
        mask[order_w[:quota]] = True
        out.append(w * mask.reshape(w.shape))
    return out
