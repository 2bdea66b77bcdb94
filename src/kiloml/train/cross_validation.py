"""Choosing the epoch by k-fold cross-validation when the validation split is too small.

A validation split of a handful of sequences cannot choose an epoch: with 9 sequences, accuracy
moves in steps of 11 points and the best epoch is luck. When the validation split holds fewer
than ``MIN_VALIDATION`` sequences, the training and validation splits are pooled and cut into
``FOLDS`` stratified folds (seed 0). Each fold trains the same schedule on the other folds and
measures the held-out fold after every epoch. The epoch of the final phase (from ``select_from``
of the epochs on) with the best mean held-out accuracy (ties: lowest mean loss) is chosen, and
the final model trains on all pooled sequences and keeps its weights after that epoch. The mean
held-out accuracy there is the run's validation accuracy. The test split is never read.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from kiloml.data.splits import DatasetSplits, Split
from kiloml.nn.classifier import ModelConfig, SequenceClassifier
from kiloml.train.trainer import Reporter, TrainConfig, Trainer, TrainResult

MIN_VALIDATION = 40
FOLDS = 5


def needs_cross_validation(data: DatasetSplits) -> bool:
    """Whether the validation split is too small to choose an epoch on."""
    return len(data.val) < MIN_VALIDATION


def pooled(data: DatasetSplits) -> Split:
    """The training and validation sequences together."""
    return Split(np.concatenate([data.train.x, data.val.x]),
                 np.concatenate([data.train.y, data.val.y]))


def stratified_folds(labels: np.ndarray, folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Fold index ``[N]`` in ``0..folds-1``: each class's members, in an order drawn with
    ``seed``, are dealt to the folds in turn, continuing where the previous class stopped (so
    fold sizes differ by at most one)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    fold = np.empty(len(labels), dtype=np.int64)
    dealt = 0
    for c in np.unique(labels):
        members = order[labels[order] == c]
        fold[members] = (dealt + np.arange(len(members))) % folds
        dealt += len(members)
    return fold


def fold_data(data: DatasetSplits, pool: Split, assignment: np.ndarray, fold: int) -> DatasetSplits:
    """Fold ``fold`` held out of ``pool``; the test split is replaced by the held-out fold, so
    that nothing downstream can reach the real one."""
    held = assignment == fold
    held_out = Split(pool.x[held], pool.y[held])
    return DatasetSplits(f"{data.name} fold {fold + 1}", Split(pool.x[~held], pool.y[~held]),
                         held_out, held_out, data.class_names, data.description, data.info)


def all_sequences(data: DatasetSplits, pool: Split) -> DatasetSplits:
    """Train on ``pool``, no validation split (the epoch is chosen already)."""
    empty = Split(pool.x[:0], pool.y[:0])
    return DatasetSplits(data.name, pool, empty, data.test, data.class_names, data.description,
                         data.info)


@dataclass
class CrossValidation:
    """What the folds found: the chosen epoch and the held-out accuracy there."""

    folds: int
    sequences: int
    chosen_epoch: int
    accuracy: float            # mean over folds of the held-out accuracy after chosen_epoch
    accuracy_std: float
    fold_accuracies: list[float]
    mean_accuracy: list[float]  # per epoch, mean over folds
    mean_loss: list[float]
    seconds: float

    def summary(self) -> dict:
        """Everything but the per-epoch curves (for ``metrics.json``)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("mean_accuracy", "mean_loss")}


def choose_epoch(histories: list[TrainResult], first_selectable: int) -> int:
    """The epoch from ``first_selectable`` on with the best mean held-out accuracy (ties: the
    lowest mean held-out loss, then the earliest)."""
    acc = np.mean([[r.val_accuracy for r in h.history] for h in histories], axis=0)
    loss = np.mean([[r.val_loss for r in h.history] for h in histories], axis=0)
    candidates = range(first_selectable, len(acc))
    return max(candidates, key=lambda e: (acc[e], -loss[e], -e))


def fold_checkpoint(checkpoint_path: Path | None, fold: int) -> Path | None:
    """Where fold ``fold``'s checkpoint lives: ``folds/checkpoint-K.safetensors`` next to the
    run's checkpoint."""
    if checkpoint_path is None:
        return None
    return checkpoint_path.parent / "folds" / f"checkpoint-{fold + 1}.safetensors"


def cross_validate(data: DatasetSplits, model_config: ModelConfig, train_config: TrainConfig,
                   new_model: Callable[[ModelConfig, DatasetSplits, int], SequenceClassifier],
                   checkpoint_path: Path | None = None, resume: bool = False,
                   reporter: Reporter | None = None, folds: int = FOLDS,
                   on_fold: Callable[[int, int, TrainResult], None] | None = None
                   ) -> CrossValidation:
    """Train ``folds`` models on the pooled training sequences and choose the epoch.

    ``new_model(model_config, fold_data, seed)`` builds each fold's initial model (normalisation
    fitted on that fold's training part). With ``resume``, finished folds are read back from
    their checkpoints and an interrupted one continues. ``on_fold(fold, held_out, result)`` is
    called after each fold.
    """
    pool = pooled(data)
    assignment = stratified_folds(pool.y, folds)
    config = replace(train_config, patience=None)  # every fold runs the whole schedule
    reporter = reporter or Reporter()
    results = []
    for fold in range(folds):
        split = fold_data(data, pool, assignment, fold)
        path = fold_checkpoint(checkpoint_path, fold)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(train_config.seed)
        model = new_model(model_config, split, train_config.seed)
        trainer = Trainer(model, split, config, checkpoint_path=path, reporter=reporter)
        results.append(trainer.fit(resume=resume and path is not None and path.is_file()))
        if on_fold is not None:
            on_fold(fold, len(split.val), results[-1])
    first = max(trainer.select_start, config.epochs - trainer.phases[-1].epochs)
    chosen = choose_epoch(results, first)
    per_fold = [h.history[chosen].val_accuracy for h in results]
    return CrossValidation(
        folds=folds, sequences=len(pool), chosen_epoch=chosen,
        accuracy=float(np.mean(per_fold)), accuracy_std=float(np.std(per_fold)),
        fold_accuracies=[float(a) for a in per_fold],
        mean_accuracy=[float(a) for a in np.mean(
            [[r.val_accuracy for r in h.history] for h in results], axis=0)],
        mean_loss=[float(v) for v in np.mean(
            [[r.val_loss for r in h.history] for h in results], axis=0)],
        seconds=float(sum(h.train_seconds for h in results)))
