"""Checks that stop training with a one-line error instead of a silently wrong model: a kept
fraction that keeps no weight of a matrix, and a loss or weights that stop being finite."""

import math

import torch
from torch import nn

from kiloml.errors import KilomlError


class TrainingDiverged(KilomlError):
    """The loss or the weights stopped being finite in ``epoch`` (0-based)."""

    def __init__(self, message: str, epoch: int):
        super().__init__(message)
        self.epoch = epoch


def check_kept_fractions(sparse_params: dict[str, tuple[nn.Parameter, str]],
                         keep: dict[str, float]) -> None:
    """One-line error if a kept fraction (``keep[group]``, group ``W``/``U``/``head``) rounds
    to no weight at all of one of the ``sparse_params`` matrices (hard thresholding would
    silently keep one)."""
    for group, fraction in keep.items():
        sizes = {name: p.numel() for name, (p, g) in sparse_params.items() if g == group}
        empty = [name for name, size in sizes.items() if round(fraction * size) < 1]
        if fraction < 1.0 and empty:
            smallest = min(sizes.values())
            raise KilomlError(f"--sparsity-{group.lower()} {fraction:g} keeps no weight of "
                              f"{', '.join(empty)} ({sizes[empty[0]]} weights); keep at least "
                              f"{math.ceil(1e4 / smallest) / 1e4:g}")


def check_finite_step(loss: torch.Tensor, model: nn.Module, epoch: int, batch: int) -> None:
    """Raise :class:`TrainingDiverged` if the batch's ``loss`` or, after the optimiser step, any
    weight of ``model`` is NaN or infinite."""
    problem = None
    if not torch.isfinite(loss.detach()):
        problem = f"the loss is {loss.item()}"
    else:
        for name, param in model.named_parameters():
            if not torch.isfinite(param.detach()).all():
                problem = f"{name} is no longer finite"
                break
    if problem is not None:
        raise TrainingDiverged(f"training diverged in epoch {epoch + 1}, batch {batch + 1}: "
                               f"{problem}; try a smaller --lr", epoch)
