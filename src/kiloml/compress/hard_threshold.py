"""Hard thresholding for iterative hard thresholding (IHT), as in the FastGRNN paper.

``keep`` is the fraction of entries kept (EdgeML's ``sparsity`` argument: 1.0 keeps all).
Exactly ``round(keep * numel)`` entries survive (at least one), chosen by magnitude with ties
broken by position, so the count never depends on equal values.
"""

import torch


def kept_count(numel: int, keep: float) -> int:
    """Number of entries a tensor of ``numel`` entries keeps at fraction ``keep``."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"the fraction of weights kept must be in (0, 1], got {keep}")
    return max(1, min(numel, round(keep * numel)))


def top_magnitude_mask(weight: torch.Tensor, keep: float) -> torch.Tensor:
    """Boolean mask (same shape as ``weight``) of the ``kept_count`` largest ``|weight|``."""
    k = kept_count(weight.numel(), keep)
    mask = torch.zeros(weight.numel(), dtype=torch.bool, device=weight.device)
    if k == weight.numel():
        return mask.fill_(True).reshape(weight.shape)
    order = torch.argsort(weight.detach().abs().reshape(-1), descending=True, stable=True)
    mask[order[:k]] = True
    return mask.reshape(weight.shape)


@torch.no_grad()
def hard_threshold_(weight: torch.Tensor, keep: float) -> torch.Tensor:
    """Zero all but the largest-magnitude fraction ``keep`` of ``weight`` in place; return the
    boolean support mask."""
    mask = top_magnitude_mask(weight, keep)
    weight.mul_(mask)
    return mask
