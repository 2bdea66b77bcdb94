"""Choosing the epoch by cross-validation: folds, the choice, no test data, and resume."""

import numpy as np
import pytest
import torch

from kiloml.nn import ModelConfig
from kiloml.train.cross_validation import (
    choose_epoch,
    fold_data,
    needs_cross_validation,
    pooled,
    stratified_folds,
)
from kiloml.train.fit import fit
from kiloml.train.trainer import EpochRecord, Reporter, TrainConfig, TrainResult
from tests.conftest import synthetic_splits


def _config():
    return ModelConfig(kind="fastgrnn", input_size=3, num_classes=3, hidden_size=8, w_rank=2,
                       u_rank=4)


def test_stratified_folds_spread_every_class():
    labels = np.array([0] * 10 + [1] * 7 + [2] * 3)
    fold = stratified_folds(labels, 5)
    sizes = np.bincount(fold, minlength=5)
    assert sizes.max() - sizes.min() <= 1 and sizes.sum() == 20
    for c, n in ((0, 10), (1, 7)):
        per_fold = np.bincount(fold[labels == c], minlength=5)
        assert per_fold.max() - per_fold.min() <= 1 and per_fold.sum() == n
    np.testing.assert_array_equal(fold, stratified_folds(labels, 5))  # fixed by the seed


def test_fold_data_holds_out_one_fold_and_hides_the_test_split(tiny_data):
    pool = pooled(tiny_data)
    assignment = stratified_folds(pool.y, 4)
    split = fold_data(tiny_data, pool, assignment, 2)
    assert len(split.train) + len(split.val) == len(tiny_data.train) + len(tiny_data.val)
    assert split.test is split.val  # the real test split is not even passed on
    held = {row.tobytes() for row in split.val.x}
    assert not held & {row.tobytes() for row in split.train.x}


def test_choose_epoch_takes_the_best_mean_from_the_selectable_epochs():
    def result(accuracies):
        return TrainResult(history=[EpochRecord(e, "dense", 0.0, 0.0, 0.0, 1.0 - a, a)
                                    for e, a in enumerate(accuracies)])
    folds = [result([0.9, 0.5, 0.6, 0.7]), result([0.9, 0.7, 0.6, 0.5])]
    assert choose_epoch(folds, 1) == 1  # 0.6 ties with epoch 2 and 3: earliest lowest loss
    assert choose_epoch(folds, 0) == 0


def test_small_validation_splits_are_cross_validated(tiny_data):
    assert needs_cross_validation(tiny_data)  # 32 validation sequences
    tiny_data.val.x, tiny_data.val.y = np.concatenate([tiny_data.val.x] * 2), np.concatenate(
        [tiny_data.val.y] * 2)
    assert not needs_cross_validation(tiny_data)


def test_cross_validation_never_reads_the_test_split():
    data = synthetic_splits(n_train=30, n_val=15)
    data.test.x = np.full_like(data.test.x, np.float32(1e6))
    outcome = fit(data, _config(), TrainConfig(epochs=4, batch_size=16), folds=3)
    cv = outcome.cross_validation
    assert cv.folds == 3 and cv.sequences == 45
    assert all(np.isfinite(v) and v < 100 for v in cv.mean_loss)
    assert outcome.metrics["selection"]["method"] == "cross-validation"
    assert outcome.metrics["best_epoch"] == cv.chosen_epoch == len(outcome.result.history) - 1
    assert outcome.metrics["best_val_accuracy"] == cv.accuracy


class _Interrupt(Reporter):
    """Raises KeyboardInterrupt at the ``at``-th epoch reported (a Ctrl-C mid-run)."""

    def __init__(self, at: int):
        self.at, self.seen = at, 0

    def epoch(self, record, is_best):
        self.seen += 1
        if self.seen == self.at:
            raise KeyboardInterrupt


def test_resume_after_interruptions_gives_identical_weights(tmp_path):
    data = synthetic_splits(n_train=30, n_val=15)
    config = TrainConfig(epochs=5, batch_size=16, keep_w=0.5, keep_u=0.5, iht_every=2, seed=3,
                         augment_noise=0.1, augment_scale=0.1)
    straight = fit(data, _config(), config, folds=3).model

    ckpt = tmp_path / "checkpoint.safetensors"
    for resume, interrupt_at in ((False, 7), (True, 11)):  # in fold 2 of 3, then in the final
        reporter = _Interrupt(interrupt_at)
        with pytest.raises(KeyboardInterrupt):
            fit(data, _config(), config, checkpoint_path=ckpt, folds=3, resume=resume,
                reporter=reporter, fold_reporter=reporter)
        assert not ckpt.exists() if interrupt_at == 7 else ckpt.exists()
    resumed = fit(data, _config(), config, checkpoint_path=ckpt, folds=3, resume=True)
    for (name, a), b in zip(straight.state_dict().items(), resumed.model.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name
    assert sorted(p.name for p in (tmp_path / "folds").iterdir()) == [
        f"checkpoint-{k}.safetensors" for k in (1, 2, 3)]
