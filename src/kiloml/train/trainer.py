"""The Trainer: Adam over compression phases (``phases.py``), checkpoints, resume, early stopping.

Determinism: the model is initialised from ``seed`` by the caller; batch order and augmentation
noise of epoch ``e`` come from a generator seeded with ``(seed, e)``, and the learning rate is a
pure function of the step, so a run resumed from any epoch's checkpoint produces the same weights
as an uninterrupted one.
"""

import copy
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError
from kiloml.nn.classifier import SequenceClassifier
from kiloml.train.checkpoint import load_checkpoint, save_checkpoint
from kiloml.train.guards import TrainingDiverged, check_finite_step
from kiloml.train.image_augment import random_crop_flip
from kiloml.train.phases import Phase, Sparsity, compression_schedule

#: Largest seed: torch and numpy generators take it (and ``seed * 100_003 + epoch``) exactly.
MAX_SEED = 2**32 - 1
#: ``TrainConfig.compress``: hard thresholding (the FastGRNN paper) or STR (learned thresholds)
COMPRESS_METHODS = ("iht", "str")
#: the sparsity groups whose rank ``learn_rank`` learns (the recurrent cell's matrices)
RANK_GROUPS = ("W", "U")
#: the checkpoint is written at most this often (and after the last epoch, and on Ctrl-C or a
#: diverging loss with the last finished epoch): runs of many short epochs would otherwise spend
#: their time writing
CHECKPOINT_SECONDS = 5.0


@dataclass
class TrainConfig:
    """Training settings (stored in ``config.json`` under ``"train"``)."""

    epochs: int = 60
    batch_size: int = 64
    lr: float = 1e-2
    min_lr_ratio: float = 0.02
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    keep_w: float = 1.0
    keep_u: float = 1.0
    keep_head: float = 1.0
    phase_fractions: tuple[float, float] = (0.4, 0.2)
    iht_every: int = 10
    iht_ramp: float = 0.0
    sparsity_block: int = 1
    compress: str = "iht"
    target_sparsity: dict[str, float] = field(default_factory=dict)
    learn_rank: bool = False
    str_ramp: float = 0.5
    str_lr: float = 0.01
    lr_restarts: bool = False
    select_from: float = 0.6
    patience: int | None = None
    augment_scale: float = 0.0
    augment_noise: float = 0.0
    augment_rotation: float = 0.0
    augment_crop: int = 0
    augment_flip: bool = False
    seed: int = 0

    def validate(self) -> "TrainConfig":
        if self.epochs < 1:
            raise KilomlError("--epochs must be at least 1")
        if self.batch_size < 1:
            raise KilomlError("--batch-size must be at least 1")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise KilomlError(f"--lr must be a positive number; got {self.lr}")
        if not 0 <= self.seed <= MAX_SEED:
            raise KilomlError(f"--seed must be a whole number from 0 to {MAX_SEED}; "
                              f"got {self.seed}")
        for name in ("keep_w", "keep_u", "keep_head"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                flag = "--sparsity-" + name.removeprefix("keep_")
                raise KilomlError(f"{flag} is the fraction of weights kept, in (0, 1]; got {value}")
        for name in ("augment_scale", "augment_noise", "augment_rotation"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise KilomlError(f"--{name.replace('_', '-')} must be 0 or positive; got {value}")
        if isinstance(self.augment_crop, bool) or not (isinstance(self.augment_crop, int)
                                                       and self.augment_crop >= 0):
            raise KilomlError(f"--augment-crop is a number of pixels, 0 or more; got "
                              f"{self.augment_crop!r}")
        if not 0.0 <= self.iht_ramp <= 1.0:
            raise KilomlError(f"iht_ramp must be in [0, 1]; got {self.iht_ramp}")
        if not (isinstance(self.sparsity_block, int) and self.sparsity_block >= 1):
            raise KilomlError(f"--sparsity-block is a number of consecutive weights, at least 1; "
                              f"got {self.sparsity_block}")
        if self.sparsity_block > 1 and self.compress == "str":
            raise KilomlError("--sparsity-block applies to hard thresholding (--compress iht), "
                              "not to STR")
        if not 0.0 <= self.select_from < 1.0:
            raise KilomlError(f"select_from must be in [0, 1); got {self.select_from}")
        if self.compress not in COMPRESS_METHODS:
            raise KilomlError(f"--compress must be one of {', '.join(COMPRESS_METHODS)}; "
                              f"got {self.compress!r}")
        if self.learn_rank and self.compress != "str":
            raise KilomlError("--learn-rank is low-rank STR; add --compress str and "
                              "--target-sparsity")
        if self.compress == "str":
            self._validate_str()
        elif self.target_sparsity:
            raise KilomlError("--target-sparsity sets STR's target; add --compress str (hard "
                              "thresholding takes --sparsity-w/-u/-head, the fraction kept)")
        if not (math.isfinite(self.str_lr) and self.str_lr >= 0):
            raise KilomlError(f"str_lr must be 0 or positive; got {self.str_lr}")
        if not 0.0 <= self.str_ramp <= 1.0:
            raise KilomlError(f"str_ramp must be in [0, 1]; got {self.str_ramp}")
        if self.sparse and self.epochs < 3:
            raise KilomlError("a sparse model needs --epochs of at least 3 (dense, IHT, sparse)")
        return self

    def _validate_str(self) -> None:
        given = [f"--sparsity-{name.removeprefix('keep_')}" for name in
                 ("keep_w", "keep_u", "keep_head") if getattr(self, name) != 1.0]
        if given:
            raise KilomlError(f"--compress str learns how much of each matrix to keep; drop "
                              f"{', '.join(given)} and give the fraction of zeros with "
                              "--target-sparsity (e.g. 0.9, or W=0.9 U=0.8 per group)")
        if not self.target_sparsity:
            raise KilomlError("--compress str needs --target-sparsity: the fraction of zeros, "
                              "e.g. 0.9 over all matrices, or W=0.9 U=0.8 per group")
        if "total" in self.target_sparsity and len(self.target_sparsity) > 1:
            raise KilomlError("--target-sparsity is one fraction for all matrices or one per "
                              "group (W=0.9 U=0.8), not both")
        for key, value in self.target_sparsity.items():
            if not (isinstance(value, int | float) and 0.0 < value < 1.0):
                where = "" if key == "total" else f" for {key}"
                raise KilomlError(f"--target-sparsity{where} is the fraction of zeros, in "
                                  f"(0, 1); got {value}")

    @property
    def sparse(self) -> bool:
        """Whether any matrix is pruned (then training runs the three phases)."""
        return self.compress == "str" or min(self.keep_w, self.keep_u, self.keep_head) < 1.0

    def phases(self) -> list[Phase]:
        return compression_schedule(self.epochs, self.sparse, self.phase_fractions,
                                    self.iht_every, self.iht_ramp, self.compress, self.str_ramp,
                                    self.str_lr)

    def kept_fractions(self) -> dict[str, float]:
        """The kept fraction of each sparsity group."""
        return {"W": self.keep_w, "U": self.keep_u, "head": self.keep_head}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class EpochRecord:
    epoch: int
    phase: str
    lr: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float


@dataclass
class TrainResult:
    history: list[EpochRecord] = field(default_factory=list)
    best_epoch: int = -1
    best_val_accuracy: float = 0.0
    train_seconds: float = 0.0
    stopped_early: bool = False
    compression: dict = field(default_factory=dict)  # STR: learned budgets (Sparsity.learned)


class Reporter:
    """Receives progress; the CLI's reporter draws progress bars, this one is silent."""

    def start(self, total_epochs: int, batches_per_epoch: int, first_epoch: int) -> None: ...
    def batch(self) -> None: ...
    def epoch(self, record: EpochRecord, is_best: bool) -> None: ...
    def finish(self) -> None: ...


def sparsifiable_parameters(model: nn.Module) -> dict[str, tuple[nn.Parameter, str]]:
    """``name -> (parameter, group)`` for every matrix the compression phases act on: the
    family's declared sparsity groups (``W``, ``U``, ``head``; none for some families)."""
    groups = model.sparsity_groups() if hasattr(model, "sparsity_groups") else {}
    return {name: (param, group) for group, params in groups.items() for name, param in params}


def plain_state_dict(model: nn.Module, effective: bool = False) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` copied under the names of the model without reparameterisations:
    a parametrized tensor (``torch.nn.utils.parametrize``) is stored under its own name, as its
    raw parameter or, with ``effective``, as the tensor the forward pass uses."""
    state = {}
    for key, value in model.state_dict().items():
        name = re.sub(r"(^|\.)parametrizations\.([^.]+)\.original$", r"\1\2", key)
        if effective and name != key:
            path, _, attr = name.rpartition(".")
            value = getattr(model.get_submodule(path) if path else model, attr)
        state[name] = value.detach().clone()
    return state


def evaluate(model: nn.Module, split: Split, batch_size: int = 512) -> tuple[float, float,
                                                                            np.ndarray]:
    """``(mean loss, accuracy, predictions)`` of ``model`` on ``split``."""
    model.eval()
    losses, preds = [], []
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            x = torch.from_numpy(split.x[start:start + batch_size])
            y = torch.from_numpy(split.y[start:start + batch_size])
            logits = model(x)
            losses.append(nn.functional.cross_entropy(logits, y, reduction="sum").item())
            preds.append(logits.argmax(dim=1).numpy())
    pred = np.concatenate(preds)
    return sum(losses) / len(split), float((pred == split.y).mean()), pred


def check_str_groups(sparse_params: dict[str, tuple[nn.Parameter, str]],
                     config: TrainConfig) -> None:
    """One-line error if a per-group STR target names a group the model does not have."""
    groups = sorted({group for _, group in sparse_params.values()})
    unknown = [g for g in config.target_sparsity if g != "total" and g not in groups]
    if config.compress == "str" and unknown:
        raise KilomlError(f"--target-sparsity {unknown[0]}=...: no such group; this model's "
                          f"groups are {', '.join(groups)}")


def check_full_rank(sparse_params: dict[str, tuple[nn.Parameter, str]]) -> None:
    """One-line error unless every matrix whose rank is learned is one full matrix (not
    factors: the ranks are learned from the full matrices, then factored)."""
    factored = sorted({name.rpartition(".")[2][0] for name, (_, group) in sparse_params.items()
                       if group in RANK_GROUPS and name[-1].isdigit()})
    if factored:
        flags = "/".join(f"--{g.lower()}-rank" for g in factored)
        raise KilomlError(f"--learn-rank learns the ranks of W and U from the full matrices; "
                          f"drop {flags}")


class Trainer:
    """Trains a :class:`SequenceClassifier` on a :class:`DatasetSplits` with the phase schedule.

    ``checkpoint_path`` (optional) gets the state of the last finished epoch, at most every
    ``checkpoint_seconds``, after the last epoch and when the run is interrupted (Ctrl-C);
    ``resume=True`` continues from it. The model passed in must already hold its initial weights
    and normalisation.
    ``keep_epoch`` (chosen beforehand, e.g. by cross-validation) keeps the weights after that
    epoch and stops there, with the learning rate still scheduled over all ``epochs``; the
    validation split may then be empty.
    """

    def __init__(self, model: SequenceClassifier, data: DatasetSplits, config: TrainConfig,
                 checkpoint_path: Path | None = None, reporter: Reporter | None = None,
                 stop_after_epoch: Callable[[int], bool] | None = None,
                 keep_epoch: int | None = None, checkpoint_seconds: float = CHECKPOINT_SECONDS):
        self.model, self.data, self.config = model, data, config.validate()
        self.checkpoint_seconds = checkpoint_seconds
        if keep_epoch is not None and not 0 <= keep_epoch < config.epochs:
            raise ValueError(f"keep_epoch {keep_epoch} is outside 0..{config.epochs - 1}")
        if keep_epoch is None and len(data.val) == 0:
            raise ValueError("without a validation split, keep_epoch must be given")
        self.keep_epoch = keep_epoch
        self.checkpoint_path = checkpoint_path
        self.reporter = reporter or Reporter()
        self.stop_after_epoch = stop_after_epoch  # for tests: simulate an interruption
        self.phases = config.phases()
        if (config.augment_crop or config.augment_flip) and not data.info.get("image_shape"):
            raise KilomlError(f"--augment-crop and flipping apply to images; {data.name} holds "
                              "no images")
        self.sparse_params = sparsifiable_parameters(model)
        if config.sparse and not self.sparse_params:
            kind = model.config.kind
            raise KilomlError(
                f"--compress str needs a family with sparsity groups (fastgrnn, fastrnn); "
                f"{kind} has none" if config.compress == "str" else
                f"--sparsity-w/-u/-head apply to fastgrnn, fastrnn, protonn and bonsai, not {kind}")
        check_str_groups(self.sparse_params, config)
        if config.learn_rank:
            check_full_rank(self.sparse_params)
        self.sparsity = Sparsity(self.sparse_params, config.kept_fractions(), model=model,
                                 targets=config.target_sparsity if config.compress == "str"
                                 else {}, block=config.sparsity_block,
                                 rank_groups=RANK_GROUPS if config.learn_rank else ())
        self.optimizer = torch.optim.Adam(model.parameters(), lr=config.lr,
                                          weight_decay=config.weight_decay)
        self.batches_per_epoch = math.ceil(len(data.train) / config.batch_size)
        # the best-validation checkpoint is chosen from the final phase, after select_from of
        # all epochs: a one-subject validation split is noisy, and an early lucky epoch of a
        # half-trained model is a worse pick than the converged end of the schedule
        self.select_start = min(round(config.select_from * config.epochs), config.epochs - 1)

    # -- schedule -------------------------------------------------------------------------
    def phase_of(self, epoch: int) -> tuple[Phase, int]:
        """The phase of global ``epoch`` and the epoch's index within it."""
        start = 0
        for phase in self.phases:
            if epoch < start + phase.epochs:
                return phase, epoch - start
            start += phase.epochs
        raise IndexError(epoch)

    def learning_rate(self, epoch: int, batch: int) -> float:
        """Cosine decay from ``lr`` to ``lr*min_lr_ratio`` over the optimizer steps of each phase
        (``lr_restarts``) or once over all steps; ``batch`` is the step's index within ``epoch``,
        so ``epoch + batch / batches_per_epoch`` counts steps in units of an epoch's steps."""
        if self.config.lr_restarts:
            phase, index = self.phase_of(epoch)
            progress = (index + batch / self.batches_per_epoch) / phase.epochs
        else:
            progress = (epoch + batch / self.batches_per_epoch) / self.config.epochs
        low = self.config.lr * self.config.min_lr_ratio
        return low + 0.5 * (self.config.lr - low) * (1 + math.cos(math.pi * progress))

    @property
    def masks(self) -> dict[str, torch.Tensor]:
        """The fixed support (empty until the hard-thresholding phase ends)."""
        return self.sparsity.masks

    # -- loop -----------------------------------------------------------------------------
    def _batches(self, epoch: int):
        gen = torch.Generator().manual_seed(self.config.seed * 100_003 + epoch)
        order = torch.randperm(len(self.data.train), generator=gen).numpy()
        x_all, y_all = self.data.train.x, self.data.train.y
        for start in range(0, len(order), self.config.batch_size):
            idx = order[start:start + self.config.batch_size]
            x = torch.from_numpy(x_all[idx])
            if self.config.augment_crop > 0 or self.config.augment_flip:
                x = random_crop_flip(x, tuple(self.data.info["image_shape"]),
                                     self.config.augment_crop, self.config.augment_flip, gen)
            if self.config.augment_rotation > 0:
                x = self._rotate(x, gen)
            if self.config.augment_scale > 0 or self.config.augment_noise > 0:
                x = self._augment(x, gen)
            yield x, torch.from_numpy(y_all[idx])

    def _augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Per-sequence, per-channel gain and additive noise, in units of the channel's std."""
        std = self.model.input_std
        gain = 1 + self.config.augment_scale * torch.randn(x.shape[0], 1, x.shape[2], generator=gen)
        mean = self.model.input_mean
        noise = self.config.augment_noise * torch.randn(x.shape, generator=gen) * std
        return (x - mean) * gain + mean + noise

    def _rotate(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Rotate every 3-axis channel group the dataset declares (``info["vector_channels"]``,
        e.g. accelerometer and gyroscope) by one random rotation per sequence: a random axis and
        an angle with standard deviation ``augment_rotation`` degrees, as if the sensor sat
        slightly differently on another person."""
        groups = self.data.info.get("vector_channels", [])
        if not groups:
            return x
        axis = torch.randn(x.shape[0], 3, generator=gen)
        axis = axis / axis.norm(dim=1, keepdim=True)
        angle = torch.randn(x.shape[0], generator=gen) * math.radians(self.config.augment_rotation)
        k = torch.zeros(x.shape[0], 3, 3)
        k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
        k = k - k.transpose(1, 2)
        sin, cos = angle.sin()[:, None, None], angle.cos()[:, None, None]
        rotation = torch.eye(3) + sin * k + (1 - cos) * (k @ k)  # Rodrigues' formula
        x = x.clone()
        for group in groups:
            x[:, :, group] = x[:, :, group] @ rotation.transpose(1, 2)
        return x

    def _train_epoch(self, epoch: int) -> tuple[float, float]:
        phase, index = self.phase_of(epoch)
        phase.before_epoch(self.sparsity, index)
        self.model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for batch, (x, y) in enumerate(self._batches(epoch)):
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate(epoch, batch)
            if hasattr(self.model, "anneal"):  # Bonsai: path sharpness by training progress
                self.model.anneal((epoch + batch / self.batches_per_epoch) / self.config.epochs)
            if hasattr(self.model, "step_logits"):  # EMI-RNN: a loss at every step
                steps = self.model.step_logits(x)  # [B, T, C]
                logits = steps[:, -1]
                loss = nn.functional.cross_entropy(steps.flatten(0, 1),
                                                   y.repeat_interleave(steps.shape[1]))
            else:
                logits = self.model(x)
                loss = nn.functional.cross_entropy(logits, y)
            if hasattr(self.model, "penalty"):  # Bonsai: the paper's L2 penalty
                loss = loss + self.model.penalty()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.config.grad_clip:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            check_finite_step(loss, self.model, epoch, batch)
            phase.after_step(self.sparsity, index, batch, self.batches_per_epoch)
            total_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            self.reporter.batch()
        phase.after_epoch(self.sparsity, index)
        return total_loss / seen, correct / seen

    def _snapshot(self, epoch: int, waited: int, result: TrainResult,
                  best_state: dict | None) -> tuple:
        """The state after ``epoch``, copied (training goes on), for :meth:`_save`."""
        thresholds = {**{k: v.detach().clone() for k, v in self.sparsity.thresholds.items()},
                      **{f"scale.{k}": torch.tensor(v) for k, v in self.sparsity.scales.items()}}
        return (plain_state_dict(self.model), copy.deepcopy(self.optimizer.state_dict()),
                dict(self.masks), best_state, thresholds, {
                    "epoch": epoch, "waited": waited, "history": list(result.history),
                    "best_epoch": result.best_epoch, "best_val": result.best_val_accuracy,
                    "train_seconds": result.train_seconds,
                    "stopped_early": result.stopped_early,
                    "compression": copy.deepcopy(self.sparsity.learned)})

    def _save(self, snapshot: tuple) -> None:
        *tensors, loop = snapshot
        loop = {**loop, "history": [asdict(r) for r in loop["history"]]}
        save_checkpoint(self.checkpoint_path, *tensors, loop)

    def fit(self, resume: bool = False) -> TrainResult:
        """Train to the end of the schedule (or early stop); leaves the best-validation weights of
        the final phase (from epoch ``select_from * epochs`` on), or those of ``keep_epoch``, in
        the model."""
        result, best_state, first_epoch, waited = TrainResult(), None, 0, 0
        if resume:
            if self.checkpoint_path is None or not self.checkpoint_path.is_file():
                raise KilomlError(f"{self.checkpoint_path}: no checkpoint to resume from")
            model_state, masks, best_state, loop, thresholds = load_checkpoint(
                self.checkpoint_path, self.optimizer)
            self.sparsity.masks = masks
            self.sparsity.learned = loop.get("compression", {})
            with torch.no_grad():
                for name, value in thresholds.items():
                    if name.startswith("scale."):
                        self.sparsity.scales[name.removeprefix("scale.")] = float(value)
                    else:
                        self.sparsity.thresholds[name].copy_(value)
            self.model.load_state_dict(model_state)
            first_epoch, waited = loop["epoch"] + 1, loop["waited"]
            result.history = [EpochRecord(**r) for r in loop["history"]]
            result.best_epoch, result.best_val_accuracy = loop["best_epoch"], loop["best_val"]
            result.train_seconds = loop["train_seconds"]
            result.stopped_early = loop["stopped_early"]
        total = self.config.epochs if self.keep_epoch is None else self.keep_epoch + 1
        self.reporter.start(total, self.batches_per_epoch, first_epoch)
        best_key = (result.best_val_accuracy, -math.inf)
        if result.history and result.best_epoch >= 0:
            best_key = (result.best_val_accuracy, -result.history[result.best_epoch].val_loss)
        unsaved, last_saved = None, time.perf_counter()
        try:
            for epoch in range(first_epoch, total):
                if result.stopped_early:
                    break
                phase, _ = self.phase_of(epoch)
                started = time.perf_counter()
                train_loss, train_acc = self._train_epoch(epoch)
                result.train_seconds += time.perf_counter() - started
                val_loss, val_acc = math.nan, math.nan
                if len(self.data.val):
                    val_loss, val_acc, _ = evaluate(self.model, self.data.val)
                record = EpochRecord(epoch, phase.kind, self.learning_rate(epoch, 0), train_loss,
                                     train_acc, val_loss, val_acc)
                result.history.append(record)
                selecting = phase is self.phases[-1] and epoch >= self.select_start
                is_best = selecting and (val_acc, -val_loss) > best_key
                if self.keep_epoch is not None:
                    selecting, is_best = False, epoch == self.keep_epoch
                if is_best:
                    best_key = (val_acc, -val_loss)
                    result.best_epoch, result.best_val_accuracy = epoch, val_acc
                    best_state = plain_state_dict(self.model, effective=True)
                    waited = 0
                elif selecting:
                    waited += 1
                    patience = self.config.patience
                    result.stopped_early = patience is not None and waited > patience
                self.reporter.epoch(record, is_best)
                if self.checkpoint_path is not None:
                    unsaved = self._snapshot(epoch, waited, result, best_state)
                    last = epoch + 1 == total or result.stopped_early
                    if last or time.perf_counter() - last_saved >= self.checkpoint_seconds:
                        self._save(unsaved)
                        unsaved, last_saved = None, time.perf_counter()
                if self.stop_after_epoch is not None and self.stop_after_epoch(epoch):
                    raise KeyboardInterrupt
        except (KeyboardInterrupt, TrainingDiverged):
            if unsaved is not None:  # the last finished epoch, so that nothing is lost
                self._save(unsaved)
            raise
        finally:
            self.reporter.finish()
        if best_state is not None:
            self.model.load_state_dict(best_state)
        result.compression = self.sparsity.learned
        return result
