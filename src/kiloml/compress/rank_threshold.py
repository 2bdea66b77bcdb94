"""Low-rank STR: a learned soft threshold on a matrix's singular values.

With ``W = sum_i p_i sigma_i q_i^T`` (its SVD) and the threshold ``tau = c * sigmoid(s)`` (one
learnable scalar ``s`` per matrix, a fixed scale ``c`` as in :mod:`soft_threshold`), the forward
pass uses ``W_eff = sum_i p_i relu(sigma_i - tau) q_i^T``: the singular values at most ``tau``
vanish, so ``rank(W_eff)`` is the number of singular values above the threshold and training
learns each matrix's rank as STR learns each matrix's sparsity.

Gradients. Torch's SVD backward divides by ``sigma_i^2 - sigma_j^2`` and is unstable for close
singular values, so the SVD runs without gradient and the operator is written as
``W_eff = W - (I - P P^T) W (I - Q Q^T) - tau P Q^T`` with ``P`` ``[rows, r]`` and ``Q``
``[cols, r]`` the kept singular vectors (held constant). Its value is exactly the thresholded
matrix; its gradients are

* ``dL/dW = G - (I - P P^T) G (I - Q Q^T)``: ``G = dL/dW_eff`` projected onto the tangent space
  of the rank-``r`` matrices at ``W_eff`` (the analogue of entrywise STR's ``1[|W| > tau]``: the
  removed components get no gradient, the kept ones all of it);
* ``dL/dtau = -sum_kept p_i^T G q_i`` (exact: the singular vectors do not depend on ``tau``),
  and ``dL/ds = c * sigmoid'(s) * dL/dtau``.

The controller's step (:func:`rank_keys`) treats singular values as STR's entries: value ``i``
vanishes after a shift ``delta`` of ``s`` exactly when ``logit(sigma_i / c) - s <= delta``; it
costs ``rows + cols`` stored values (one column of each factor).
"""

import math

import torch
from torch import nn


def singular_value_threshold(weight: torch.Tensor, s: torch.Tensor,
                             scale: float = 1.0) -> torch.Tensor:
    """``P relu(Sigma - scale * sigmoid(s)) Q^T`` of the 2-D ``weight`` (same shape), with the
    gradients described in the module docstring."""
    tau = scale * torch.sigmoid(s)
    with torch.no_grad():
        p, sigma, qh = torch.linalg.svd(weight.detach(), full_matrices=False)
        kept = sigma > tau.detach()
        p, q = p[:, kept], qh[kept, :].t()
    removed = weight - p @ (p.t() @ weight)
    removed = removed - (removed @ q) @ q.t()
    return weight - removed - tau * (p @ q.t())


class SingularValueThreshold(nn.Module):
    """A ``torch.nn.utils.parametrize`` parametrization applying :func:`singular_value_threshold`
    with ``thresholds[name]`` and ``scales[name]`` (plain dicts outside the model, as
    :class:`~kiloml.compress.soft_threshold.SoftThreshold`)."""

    def __init__(self, thresholds: dict[str, torch.Tensor], scales: dict[str, float], name: str):
        super().__init__()
        self.thresholds, self.scales, self.name = thresholds, scales, name

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return singular_value_threshold(weight, self.thresholds[self.name],
                                        self.scales[self.name])


def singular_values(weight: torch.Tensor) -> torch.Tensor:
    """The singular values of the 2-D ``weight``, descending, float64 ``[min(rows, cols)]``."""
    return torch.linalg.svdvals(weight.detach().double())


def rank_keys(weight: torch.Tensor, s: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``logit(sigma_i / scale) - s`` per singular value, float64: value ``i`` vanishes with the
    threshold ``s + delta`` exactly when its key is ``<= delta`` (``-inf`` for zero singular
    values, ``+inf`` at or above ``scale``)."""
    ratio = singular_values(weight) / scale
    keys = torch.log(ratio) - torch.log1p(-ratio.clamp(max=1.0))
    return torch.where(ratio >= 1.0, math.inf, keys) - float(s.detach())


def factor_cost(weight: torch.Tensor) -> int:
    """Stored values of one rank-1 component of ``weight``: ``rows + cols``."""
    return int(weight.shape[0] + weight.shape[1])


def numerical_rank(weight: torch.Tensor, tolerance: float = 1e-6) -> int:
    """Singular values above ``tolerance`` times the largest (0 for a zero matrix)."""
    sigma = singular_values(weight)
    if sigma.numel() == 0 or float(sigma[0]) == 0.0:
        return 0
    return int((sigma > tolerance * sigma[0]).sum())


@torch.no_grad()
def project_to_rank(weight: torch.Tensor, rank: int) -> torch.Tensor:
    """The nearest matrix of rank at most ``rank`` (truncated SVD), same shape and dtype."""
    p, sigma, qh = torch.linalg.svd(weight.double(), full_matrices=False)
    return ((p[:, :rank] * sigma[:rank]) @ qh[:rank]).to(weight.dtype)


@torch.no_grad()
def low_rank_factors(weight: torch.Tensor, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(first, second)`` with ``second @ first`` the rank-``rank`` truncation of ``weight``
    ``[rows, cols]``: ``first`` ``[rank, cols]`` and ``second`` ``[rows, rank]``, each carrying
    the square root of the singular values (balanced factors quantize alike)."""
    p, sigma, qh = torch.linalg.svd(weight.double(), full_matrices=False)
    root = sigma[:rank].sqrt()
    return ((root[:, None] * qh[:rank]).to(weight.dtype),
            (p[:, :rank] * root).to(weight.dtype))


@torch.no_grad()
def factor_learned_ranks(model: nn.Module, ranks: dict[str, int]) -> nn.Module:
    """The FastGRNN/FastRNN classifier ``model`` (full ``W`` and ``U``) with every matrix named
    in ``ranks`` (state-dict names such as ``rnn.cell.U``) stored as the factors of its rank
    (:func:`low_rank_factors`), when they are smaller than the matrix; a new model whose config
    holds the ranks (``w_rank``/``u_rank``), so that it is saved, loaded and exported as any
    low-rank model. One direction only: ``W`` and ``U`` of one cell."""
    from dataclasses import replace

    from kiloml.nn.classifier import SequenceClassifier

    state = model.state_dict()
    config, factored, kept = model.config, {}, {}
    for name, rank in ranks.items():
        weight = state[name]
        matrix = name.rpartition(".")[2]
        if rank * factor_cost(weight) < weight.numel():
            first, second = low_rank_factors(weight, rank)
            prefix = name[:-1]
            factored[f"{prefix}{matrix}1"], factored[f"{prefix}{matrix}2"] = first, second
            config = replace(config, **{f"{matrix.lower()}_rank": rank})
        else:
            kept[name] = weight
    out = SequenceClassifier(config)
    out.load_state_dict({**{k: v for k, v in state.items() if k not in ranks}, **kept,
                         **factored})
    return out.eval()
