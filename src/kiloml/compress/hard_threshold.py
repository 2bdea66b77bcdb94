"""Hard thresholding for iterative hard thresholding (IHT), as in the FastGRNN paper.

``keep`` is the fraction of entries kept (EdgeML's ``sparsity`` argument: 1.0 keeps all).
Exactly ``round(keep * numel)`` entries survive (at least one), chosen by magnitude with ties
broken by position, so the count never depends on equal values.

Structured sparsity (``block`` > 1): each row of a matrix ``[rows, cols]`` is cut into blocks of
``block`` consecutive columns, ``[0, B), [B, 2B), ...``; when ``B`` does not divide ``cols`` the
last block of every row is the ``cols % B`` columns left (a 1-D tensor is one row). Whole blocks
are kept, chosen by their L2 norm (ties broken by position, row-major): exactly
``round(keep * blocks)`` of the ``rows * ceil(cols / B)`` blocks survive (at least one), so the
kept fraction of entries is ``keep`` up to rounding when ``B`` divides ``cols``.
"""

import torch


def kept_count(numel: int, keep: float) -> int:
    """Number of entries a tensor of ``numel`` entries keeps at fraction ``keep``."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"the fraction of weights kept must be in (0, 1], got {keep}")
    return max(1, min(numel, round(keep * numel)))


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean mask of the ``k`` largest of the 1-D ``scores`` (ties: the earlier position)."""
    mask = torch.zeros(scores.numel(), dtype=torch.bool, device=scores.device)
    if k == scores.numel():
        return mask.fill_(True)
    mask[torch.argsort(scores, descending=True, stable=True)[:k]] = True
    return mask


def top_magnitude_mask(weight: torch.Tensor, keep: float) -> torch.Tensor:
    """Boolean mask (same shape as ``weight``) of the ``kept_count`` largest ``|weight|``."""
    k = kept_count(weight.numel(), keep)
    return _top(weight.detach().abs().reshape(-1), k).reshape(weight.shape)


def block_norms(weight: torch.Tensor, block: int) -> torch.Tensor:
    """L2 norm of every block of ``block`` consecutive columns of each row: ``[rows, cols]`` →
    ``[rows, ceil(cols / block)]`` (the last block of a row may be shorter)."""
    w = weight.detach().reshape(-1, weight.shape[-1]) if weight.dim() else weight.reshape(1, 1)
    rows, cols = w.shape
    blocks = -(-cols // block)
    padded = torch.zeros(rows, blocks * block, dtype=w.dtype, device=w.device)
    padded[:, :cols] = w
    return padded.reshape(rows, blocks, block).square().sum(-1).sqrt()


def top_block_mask(weight: torch.Tensor, keep: float, block: int) -> torch.Tensor:
    """Boolean mask (same shape as ``weight``) of the ``round(keep * blocks)`` blocks of
    ``block`` consecutive row entries with the largest L2 norms (see the module docstring)."""
    if block < 1:
        raise ValueError(f"the sparsity block must be at least 1 weight, got {block}")
    if block == 1:
        return top_magnitude_mask(weight, keep)
    norms = block_norms(weight, block)
    kept = _top(norms.reshape(-1), kept_count(norms.numel(), keep)).reshape(norms.shape)
    cols = weight.shape[-1] if weight.dim() else 1
    return kept.repeat_interleave(block, dim=1)[:, :cols].reshape(weight.shape)


@torch.no_grad()
def hard_threshold_(weight: torch.Tensor, keep: float, block: int = 1) -> torch.Tensor:
    """Zero all but the largest-magnitude fraction ``keep`` of ``weight`` in place (whole blocks
    of ``block`` row entries when ``block`` > 1); return the boolean support mask."""
    mask = top_block_mask(weight, keep, block)
    weight.mul_(mask)
    return mask
