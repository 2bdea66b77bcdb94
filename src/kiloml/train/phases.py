"""The FastGRNN compression schedule as phases (Kusupati et al., NeurIPS 2018, Algorithm 1).

1. ``dense``: train all parameters (low-rank factors included) without a sparsity constraint.
2. ``iht``: iterative hard thresholding: every ``iht_every`` optimiser steps, keep only the
   largest-magnitude fraction ``keep_w`` of each ``W`` matrix (``W`` or ``W1``/``W2``) and
   ``keep_u`` of each ``U`` matrix (and ``keep_head`` of the classifier head); between
   projections, pruned weights may grow back.
3. ``sparse``: fix the support found at the end of phase 2 and retrain on it; pruned weights stay
   exactly zero (the mask is reapplied after every step).

The classifier head, biases and scalars train in every phase. Without sparsity (all kept
fractions 1.0) the schedule is the single dense phase.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Phase:
    """A named stretch of ``epochs`` epochs; ``kind`` is ``dense``, ``iht`` or ``sparse``."""

    kind: str
    epochs: int


def compression_schedule(epochs: int, sparse: bool,
                         fractions: tuple[float, float] = (0.4, 0.2)) -> list[Phase]:
    """Split ``epochs`` into dense / IHT / sparse phases.

    ``fractions`` are the shares of the dense and IHT phases; the sparse phase gets the rest.
    Every phase gets at least one epoch when sparsity is requested (so ``epochs >= 3``).
    """
    if not sparse:
        return [Phase("dense", epochs)]
    if epochs < 3:
        raise ValueError("a sparse model needs at least 3 epochs (dense, IHT and sparse phases)")
    dense = max(1, round(fractions[0] * epochs))
    iht = max(1, round(fractions[1] * epochs))
    sparse = epochs - dense - iht
    if sparse < 1:
        dense, iht, sparse = epochs - 2, 1, 1
    return [Phase("dense", dense), Phase("iht", iht), Phase("sparse", sparse)]
