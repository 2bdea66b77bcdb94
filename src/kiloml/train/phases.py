"""Compression phases: objects the Trainer runs in turn, each acting on the model's declared
sparsity groups (``model.sparsity_groups()``), never on one family's attributes.

The FastGRNN schedule (Kusupati et al., NeurIPS 2018, Algorithm 1) is three of them:

1. :class:`DensePhase`: train all parameters (low-rank factors included) unconstrained.
2. :class:`HardThresholdPhase`: iterative hard thresholding: every ``every`` optimiser steps,
   keep only the largest-magnitude fraction of each matrix its group asks for (``W``, ``U``,
   ``head``, ...); between projections pruned weights may grow back. Its last projection fixes
   the support.
3. :class:`FixedSupportPhase`: retrain on that support; pruned weights stay exactly zero (the
   mask is reapplied after every step).

The classifier head, biases and scalars train in every phase. Without sparsity (all kept
fractions 1.0) the schedule is the single dense phase. A new compression method is a new
:class:`Phase` subclass (its hooks see a :class:`Sparsity`), not a branch in the Trainer.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from kiloml.compress.hard_threshold import hard_threshold_


@dataclass
class Sparsity:
    """What the phases act on: ``params`` (``name -> (parameter, group)``, from the model's
    sparsity groups), the kept fraction per group (``keep``, 0..1], and the fixed support
    (``masks``, ``name -> bool tensor``; empty until a phase fixes it; saved in checkpoints)."""

    params: dict[str, tuple[nn.Parameter, str]]
    keep: dict[str, float]
    masks: dict[str, torch.Tensor] = field(default_factory=dict)

    def hard_threshold(self, scale: Callable[[float], float] = float) -> dict[str, torch.Tensor]:
        """Zero all but the largest ``scale(keep[group])`` fraction of every matrix in place;
        returns the boolean masks of what was kept."""
        return {name: hard_threshold_(param, scale(self.keep[group]))
                for name, (param, group) in self.params.items()}

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero every weight outside the fixed support."""
        for name, mask in self.masks.items():
            self.params[name][0].mul_(mask)


class Phase:
    """A stretch of ``epochs`` epochs. The Trainer calls :meth:`after_step` after every
    optimiser step and :meth:`after_epoch` after every epoch of the phase; both default to
    doing nothing (a dense phase). ``kind`` names the phase in the run's history."""

    kind = "dense"

    def __init__(self, epochs: int):
        if epochs < 1:
            raise ValueError(f"a phase needs at least one epoch; got {epochs}")
        self.epochs = epochs

    def after_step(self, sparsity: Sparsity, epoch: int, batch: int, batches: int) -> None:
        """``epoch``: index within the phase; ``batch``: index of the step within the epoch
        (``batches`` steps per epoch)."""

    def after_epoch(self, sparsity: Sparsity, epoch: int) -> None:
        """``epoch``: index within the phase of the epoch that just finished."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(epochs={self.epochs})"


class DensePhase(Phase):
    """Unconstrained training."""

    kind = "dense"


class HardThresholdPhase(Phase):
    """Iterative hard thresholding every ``every`` steps of an epoch (counted from the epoch's
    first step). With ``ramp`` > 0 the kept fraction falls from 1 to the target along a cubic
    over the first ``ramp`` of the phase (gradual pruning, Zhu & Gupta 2017), then stays at the
    target; with 0 it is the target from the first projection on (the FastGRNN paper). After
    the phase's last epoch the support is fixed at the target fractions."""

    kind = "iht"

    def __init__(self, epochs: int, every: int = 10, ramp: float = 0.0):
        super().__init__(epochs)
        self.every, self.ramp = every, ramp

    def keep_at(self, target: float, progress: float) -> float:
        """Kept fraction at ``progress`` (0..1) through the phase for a ``target`` fraction."""
        if self.ramp <= 0 or progress >= self.ramp:
            return target
        return target + (1.0 - target) * (1.0 - progress / self.ramp) ** 3

    def after_step(self, sparsity: Sparsity, epoch: int, batch: int, batches: int) -> None:
        if (batch + 1) % self.every == 0:
            progress = (epoch + (batch + 1) / batches) / self.epochs
            sparsity.hard_threshold(lambda keep: self.keep_at(keep, progress))

    def after_epoch(self, sparsity: Sparsity, epoch: int) -> None:
        if epoch + 1 == self.epochs:
            sparsity.masks = sparsity.hard_threshold()  # the support the next phase keeps


class FixedSupportPhase(Phase):
    """Retraining on the fixed support: pruned weights are zeroed after every step."""

    kind = "sparse"

    def after_step(self, sparsity: Sparsity, epoch: int, batch: int, batches: int) -> None:
        sparsity.apply_masks()


def compression_schedule(epochs: int, sparse: bool,
                         fractions: tuple[float, float] = (0.4, 0.2), iht_every: int = 10,
                         iht_ramp: float = 0.0) -> list[Phase]:
    """Split ``epochs`` into dense / IHT / fixed-support phases.

    ``fractions`` are the shares of the dense and IHT phases; the last phase gets the rest.
    Every phase gets at least one epoch when sparsity is requested (so ``epochs >= 3``).
    """
    if not sparse:
        return [DensePhase(epochs)]
    if epochs < 3:
        raise ValueError("a sparse model needs at least 3 epochs (dense, IHT and sparse phases)")
    dense = max(1, round(fractions[0] * epochs))
    iht = max(1, round(fractions[1] * epochs))
    rest = epochs - dense - iht
    if rest < 1:
        dense, iht, rest = epochs - 2, 1, 1
    return [DensePhase(dense), HardThresholdPhase(iht, iht_every, iht_ramp),
            FixedSupportPhase(rest)]
