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

STR (Kusupati et al., ICML 2020) replaces the second phase by :class:`SoftThresholdPhase`:
the matrices are reparameterised as ``sign(W) * relu(|W| - sigmoid(s))`` with one learned
threshold ``s`` per matrix, a controller keeps the total sparsity on a ramp to the requested
target, and the phase ends by storing the effective weights in the plain parameters and fixing
their support, so that the fixed-support phase, export, the simulator and the C are unchanged.
With low-rank STR (``Sparsity.rank_groups``) the matrices of ``W`` and ``U`` are thresholded on
their singular values instead, and the fixed-support phase keeps each at its learned rank.

The classifier head, biases and scalars train in every phase. Without sparsity (all kept
fractions 1.0) the schedule is the single dense phase. A new compression method is a new
:class:`Phase` subclass (its hooks see a :class:`Sparsity`), not a branch in the Trainer.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn.utils import parametrize

from kiloml.compress.hard_threshold import hard_threshold_
from kiloml.compress.rank_threshold import (
    SingularValueThreshold,
    factor_cost,
    numerical_rank,
    project_to_rank,
    rank_keys,
    singular_value_threshold,
    singular_values,
)
from kiloml.compress.soft_threshold import (
    SoftThreshold,
    project_to_budget,
    shift_for_keys,
    soft_threshold,
    threshold_keys,
)

#: ``s`` of every STR threshold until its phase starts (then :meth:`Sparsity.start_soft_thresholds`
#: sets each to its matrix's median magnitude).
STR_INIT = -8.0


@dataclass
class Sparsity:
    """What the phases act on: ``params`` (``name -> (parameter, group)``, from the model's
    sparsity groups), the kept fraction per group (``keep``, 0..1], and the fixed support
    (``masks``, ``name -> bool tensor``; empty until a phase fixes it; saved in checkpoints).

    For STR also: the ``model`` owning the parameters, the sparsity ``targets`` (fraction of
    zeros, by group or ``"total"`` for all matrices together), one threshold ``s`` per targeted
    matrix (``thresholds``, scalar parameters kept outside the model and the optimiser, stepped
    by the STR phase) with its fixed ``scales`` (both saved in checkpoints), and the ``learned``
    record (budgets, sparsity reached).

    ``block`` > 1: hard thresholding keeps whole blocks of ``block`` consecutive weights along
    each row, chosen by L2 norm (:func:`kiloml.compress.hard_threshold.top_block_mask`), so the
    fixed support is block-aligned too.

    Low-rank STR: the matrices of the groups in ``rank_groups`` are thresholded on their
    singular values instead (:mod:`kiloml.compress.rank_threshold`); each of their singular
    values counts as the values one more column of the factors stores (``rows + cols``, up to
    the dense matrix's ``rows * cols``), so a target is a fraction of stored values, and the
    phase ends with each such matrix at its learned rank (``learned["ranks"]``), which the
    fixed-support phase keeps."""

    params: dict[str, tuple[nn.Parameter, str]]
    keep: dict[str, float]
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    model: nn.Module | None = None
    targets: dict[str, float] = field(default_factory=dict)
    thresholds: dict[str, nn.Parameter] = field(default_factory=dict)
    scales: dict[str, float] = field(default_factory=dict)
    learned: dict = field(default_factory=dict)
    block: int = 1
    rank_groups: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.targets and not self.thresholds:
            self.thresholds = {name: nn.Parameter(torch.tensor(STR_INIT))
                               for _, names, _ in self.constraints() for name in names}
            self.scales = dict.fromkeys(self.thresholds, 1.0)

    def constraints(self) -> list[tuple[str, list[str], float]]:
        """``(target key, matrix names, fraction of zeros)`` for every STR target: one over all
        matrices for ``"total"``, else one per targeted group."""
        if "total" in self.targets:
            return [("total", list(self.params), self.targets["total"])]
        return [(group, [n for n, (_, g) in self.params.items() if g == group], target)
                for group, target in self.targets.items()]

    def hard_threshold(self, scale: Callable[[float], float] = float) -> dict[str, torch.Tensor]:
        """Zero all but the largest ``scale(keep[group])`` fraction of every matrix in place
        (in blocks of ``block`` row entries); returns the boolean masks of what was kept. The
        matrices the model names in ``rowwise_sparsity`` (Bonsai's ``theta``: one branching
        vector per node) keep that fraction of every row, so that no row is emptied."""
        rowwise = getattr(self.model, "rowwise_sparsity", ())
        return {name: (torch.stack([hard_threshold_(row, scale(self.keep[group]), self.block)
                                    for row in param]) if name in rowwise else
                       hard_threshold_(param, scale(self.keep[group]), self.block))
                for name, (param, group) in self.params.items()}

    @torch.no_grad()
    def apply_masks(self) -> None:
        """Zero every weight outside the fixed support; bring every matrix with a learned rank
        back to that rank (truncated SVD)."""
        for name, mask in self.masks.items():
            self.params[name][0].mul_(mask)
        for name, rank in self.learned.get("ranks", {}).items():
            param = self.params[name][0]
            param.copy_(project_to_rank(param, rank))

    def by_rank(self, name: str) -> bool:
        """Whether ``name`` is thresholded on its singular values (low-rank STR)."""
        return self.params[name][1] in self.rank_groups

    def _keys_and_costs(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The controller's keys of ``name`` (entries, or singular values) and what each costs
        in stored values."""
        weight, s, scale = self.params[name][0], self.thresholds[name], self.scales[name]
        if self.by_rank(name):  # the k-th largest adds what rank k stores beyond rank k - 1
            keys = rank_keys(weight, s, scale)
            stored = torch.arange(keys.numel() + 1, dtype=torch.float64) * factor_cost(weight)
            stored = stored.clamp(max=weight.numel())
            return keys, stored[1:] - stored[:-1]
        keys = threshold_keys(weight, s, scale)
        return keys, torch.ones_like(keys)

    def stored_values(self, name: str, weight: torch.Tensor) -> int:
        """Values stored for ``weight`` (the effective ``name``): its nonzeros, or for a matrix
        thresholded on its rank ``rank * (rows + cols)``, at most ``rows * cols`` (dense)."""
        if self.by_rank(name):
            return min(numerical_rank(weight) * factor_cost(weight), weight.numel())
        return int(torch.count_nonzero(weight))

    # -- STR -------------------------------------------------------------------------------
    def _owner(self, name: str) -> tuple[nn.Module, str]:
        path, _, attr = name.rpartition(".")
        return (self.model.get_submodule(path) if path else self.model), attr

    @property
    def soft_thresholding(self) -> bool:
        """Whether the targeted matrices are reparameterised now."""
        return any(parametrize.is_parametrized(*self._owner(n)) for n in self.thresholds)

    @torch.no_grad()
    def start_soft_thresholds(self, initialise: bool) -> None:
        """Reparameterise every targeted matrix as ``soft_threshold(W, s)`` (the forward pass,
        fused scans included, reads the effective matrix through the module's attribute; the
        parameter object stays the one the optimiser holds). ``initialise``: first set every
        matrix's scale to its largest magnitude and its threshold to its median magnitude, so
        that one common shift of all thresholds removes about the same fraction of every
        matrix and the learned thresholds, not the matrices' scales, make the budgets differ."""
        if self.soft_thresholding:
            return
        if initialise:
            for name, s in self.thresholds.items():
                magnitude = self.params[name][0].detach().abs()
                if self.by_rank(name):
                    magnitude = singular_values(self.params[name][0]).float()
                self.scales[name] = max(float(magnitude.max()), 1e-6)
                ratio = (magnitude.median() / self.scales[name]).clamp(1e-6, 1 - 1e-6)
                s.copy_(torch.logit(ratio))
        for name in self.thresholds:
            module, attr = self._owner(name)
            kind = SingularValueThreshold if self.by_rank(name) else SoftThreshold
            parametrize.register_parametrization(module, attr,
                                                 kind(self.thresholds, self.scales, name))

    @torch.no_grad()
    def steer_thresholds(self, target: Callable[[float], float], lr: float) -> None:
        """One step on the thresholds: a gradient step ``s -= lr * dL/ds`` (the gradient of the
        last batch's loss; plain gradient descent, so a matrix whose threshold costs more loss
        moves further, as with the paper's SGD), then the controller: shift all thresholds of
        each constraint by one common amount so that exactly ``round(target(t) * n)`` of its
        ``n`` entries are zero (``t``: the constraint's final target; with low-rank STR, so that
        at least that many of its ``n`` values are not stored, a singular value counting the
        values its factor columns store). The gradient steps set the thresholds' differences,
        i.e. each matrix's share; the shift sets their level."""
        for s in self.thresholds.values():
            if s.grad is not None:
                s.sub_(lr * s.grad)
                s.grad = None
        for _, names, final in self.constraints():
            keys, costs = zip(*(self._keys_and_costs(n) for n in names), strict=True)
            zeros = round(target(final) * sum(self.params[n][0].numel() for n in names))
            delta = shift_for_keys(torch.cat(keys), torch.cat(costs), zeros)
            if delta is not None:
                for n in names:
                    self.thresholds[n].add_(delta)

    def effective(self, name: str) -> torch.Tensor:
        """The matrix the forward pass uses (soft-thresholded while STR runs)."""
        param = self.params[name][0]
        if name in self.thresholds and self.soft_thresholding:
            kind = singular_value_threshold if self.by_rank(name) else soft_threshold
            return kind(param, self.thresholds[name], self.scales[name]).detach()
        return param.detach()

    @torch.no_grad()
    def finish_soft_thresholds(self) -> dict[str, torch.Tensor]:
        """End STR: store the effective weights in the plain parameters, remove the
        reparameterisation and return the support (``W_eff != 0``; a matrix left without any
        keeps its largest raw entry, which the next phase retrains from 0) as masks; records the
        learned budgets (kept fraction per matrix and group, thresholds, sparsity reached). When
        the thresholds left more nonzeros than a target allows (entries that grew past their
        matrix's scale cannot be thresholded), the effective weights are first cut to exactly
        the target, split as the thresholds left them (:func:`project_to_budget`).

        A matrix thresholded on its singular values gets no mask but a rank (``learned["ranks"]``:
        the singular values above its threshold, at least 1), which :meth:`apply_masks` keeps;
        a target it shares is cut, when the thresholds fell short, by dropping the entries and
        singular values smallest relative to their matrix's threshold (:meth:`_cut_by_ratio`)."""
        ranks = {name: int((singular_values(self.params[name][0])
                            > self.scales[name] * float(torch.sigmoid(s))).sum())
                 for name, s in self.thresholds.items() if self.by_rank(name)}
        effective = {name: self.effective(name) for name in self.thresholds}
        for name, rank in ranks.items():  # drop the float residue of the removed components
            effective[name] = project_to_rank(effective[name], rank)
        numel = {name: w.numel() for name, w in effective.items()}
        controlled = {key: 1 - sum(self.stored_values(n, effective[n]) for n in names)
                      / sum(numel[n] for n in names)
                      for key, names, _ in self.constraints()}
        for _, names, target in self.constraints():
            allowed = round((1 - target) * sum(numel[n] for n in names))
            if any(n in ranks for n in names):
                effective.update(self._cut_by_ratio(names, effective, allowed))
            else:
                projected = project_to_budget([effective[n] for n in names], allowed)
                effective.update(zip(names, projected, strict=True))
        for name in self.thresholds:
            module, attr = self._owner(name)
            if parametrize.is_parametrized(module, attr):
                parametrize.remove_parametrizations(module, attr, leave_parametrized=False)
        for name in ranks:
            ranks[name] = numerical_rank(effective[name])
            if ranks[name] == 0:  # like hard thresholding, keep something
                ranks[name] = 1
                effective[name] = project_to_rank(self.params[name][0].detach(), 1)
        for name in self.thresholds:
            self.params[name][0].copy_(effective[name])
        masks = {name: w != 0 for name, w in effective.items() if name not in ranks}
        for name, mask in masks.items():  # like hard thresholding, keep at least one entry
            if not mask.any():
                mask.view(-1)[self.params[name][0].detach().abs().argmax()] = True
        kept = {name: int(m.sum()) for name, m in masks.items()}
        kept.update({name: self.stored_values(name, self.params[name][0]) for name in ranks})
        groups: dict[str, list[str]] = {}
        for name in kept:
            groups.setdefault(self.params[name][1], []).append(name)
        self.learned = {
            "targets": dict(self.targets),
            "reached_by_thresholds": controlled,
            "reached": {key: 1 - sum(kept[n] for n in names) / sum(numel[n] for n in names)
                        for key, names, _ in self.constraints()},
            "kept": {name: kept[name] / numel[name] for name in kept},
            "kept_by_group": {g: sum(kept[n] for n in ns) / sum(numel[n] for n in ns)
                              for g, ns in groups.items()},
            "thresholds": {name: self.scales[name] * float(torch.sigmoid(s))
                           for name, s in self.thresholds.items()},
        }
        if ranks:
            self.learned["ranks"] = ranks
        return masks

    def _cut_by_ratio(self, names: list[str], effective: dict[str, torch.Tensor],
                      allowed: int) -> dict[str, torch.Tensor]:
        """``effective`` of ``names`` cut to at most ``allowed`` stored values: the entries and
        singular values whose effective magnitude is smallest relative to their matrix's
        threshold go first (unchanged when within budget)."""
        stored = sum(self.stored_values(n, effective[n]) for n in names)
        if stored <= allowed:
            return {}
        keys, costs = [], []
        for n in names:
            tau = max(self.scales[n] * float(torch.sigmoid(self.thresholds[n])), 1e-12)
            if self.by_rank(n):
                sigma = singular_values(effective[n])[:numerical_rank(effective[n])]
                marginal = (torch.arange(sigma.numel() + 1, dtype=torch.float64)
                            * factor_cost(effective[n])).clamp(max=effective[n].numel())
                keys.append(sigma / tau)
                costs.append(marginal[1:] - marginal[:-1])
            else:
                magnitude = effective[n].abs().reshape(-1).double()
                keys.append(magnitude[magnitude > 0] / tau)
                costs.append(torch.ones_like(keys[-1]))
        delta = shift_for_keys(torch.cat(keys), torch.cat(costs), stored - allowed)
        if delta is None:
            return {}
        out = {}
        for n in names:
            tau = max(self.scales[n] * float(torch.sigmoid(self.thresholds[n])), 1e-12)
            if self.by_rank(n):
                sigma = singular_values(effective[n])[:numerical_rank(effective[n])]
                rank = int((sigma / tau > delta).sum())
                out[n] = project_to_rank(effective[n], rank)
            else:
                out[n] = effective[n] * (effective[n].abs() / tau > delta)
        return out


class Phase:
    """A stretch of ``epochs`` epochs. The Trainer calls :meth:`after_step` after every
    optimiser step and :meth:`after_epoch` after every epoch of the phase; both default to
    doing nothing (a dense phase). ``kind`` names the phase in the run's history."""

    kind = "dense"

    def __init__(self, epochs: int):
        if epochs < 1:
            raise ValueError(f"a phase needs at least one epoch; got {epochs}")
        self.epochs = epochs

    def before_epoch(self, sparsity: Sparsity, epoch: int) -> None:
        """Called before the first step of every epoch of the phase, also the first epoch after
        a resume (``epoch``: index within the phase)."""

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


class SoftThresholdPhase(Phase):
    """STR: training with every targeted matrix soft-thresholded by its learned threshold.
    After every step the thresholds take a gradient step (learning rate ``lr``) and the
    controller (:meth:`Sparsity.steer_thresholds`) sets the total sparsity
    to the target's cubic ramp from 0 over the first ``ramp`` of the phase (then the target);
    after the phase's last epoch the effective weights become the parameters and their support
    is fixed."""

    kind = "str"

    def __init__(self, epochs: int, ramp: float = 0.5, lr: float = 0.01):
        super().__init__(epochs)
        self.ramp, self.lr = ramp, lr

    def target_at(self, target: float, progress: float) -> float:
        """Fraction of zeros at ``progress`` (0..1) through the phase for a final ``target``."""
        if self.ramp <= 0 or progress >= self.ramp:
            return target
        return target * (1.0 - (1.0 - progress / self.ramp) ** 3)

    def before_epoch(self, sparsity: Sparsity, epoch: int) -> None:
        sparsity.start_soft_thresholds(initialise=epoch == 0)

    def after_step(self, sparsity: Sparsity, epoch: int, batch: int, batches: int) -> None:
        progress = (epoch + (batch + 1) / batches) / self.epochs
        sparsity.steer_thresholds(lambda target: self.target_at(target, progress), self.lr)

    def after_epoch(self, sparsity: Sparsity, epoch: int) -> None:
        if epoch + 1 == self.epochs:
            sparsity.masks = sparsity.finish_soft_thresholds()


def compression_schedule(epochs: int, sparse: bool,
                         fractions: tuple[float, float] = (0.4, 0.2), iht_every: int = 10,
                         iht_ramp: float = 0.0, method: str = "iht",
                         str_ramp: float = 0.5, str_lr: float = 0.01) -> list[Phase]:
    """Split ``epochs`` into dense / IHT (or STR, ``method="str"``) / fixed-support phases.

    ``fractions`` are the shares of the dense and IHT/STR phases; the last phase gets the rest.
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
    middle = (SoftThresholdPhase(iht, str_ramp, str_lr) if method == "str" else
              HardThresholdPhase(iht, iht_every, iht_ramp))
    return [DensePhase(dense), middle, FixedSupportPhase(rest)]
