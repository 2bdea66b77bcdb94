"""The Trainer: phases, IHT support, head updates, resume, early stopping, determinism."""

import numpy as np
import pytest
import torch

from kiloml.compress.hard_threshold import hard_threshold_, kept_count, top_magnitude_mask
from kiloml.errors import KilomlError
from kiloml.nn import ModelConfig
from kiloml.train.fit import fit, new_model
from kiloml.train.phases import compression_schedule
from kiloml.train.trainer import Reporter, TrainConfig, Trainer, sparsifiable_parameters


def _config(**kwargs):
    base = dict(kind="fastgrnn", input_size=3, num_classes=3, hidden_size=8, w_rank=2, u_rank=4)
    base.update(kwargs)
    return ModelConfig(**base)


def test_schedule_splits_epochs_into_three_phases():
    phases = compression_schedule(10, sparse=True)
    assert [(p.kind, p.epochs) for p in phases] == [("dense", 4), ("iht", 2), ("sparse", 4)]
    assert [(p.kind, p.epochs) for p in compression_schedule(7, sparse=False)] == [("dense", 7)]
    with pytest.raises(ValueError):
        compression_schedule(2, sparse=True)


@pytest.mark.parametrize("numel,keep", [(100, 0.3), (37, 0.5), (12, 0.01), (64, 1.0)])
def test_hard_threshold_keeps_exactly_the_requested_fraction(numel, keep):
    torch.manual_seed(0)
    w = torch.randn(numel)
    original = w.clone()
    mask = hard_threshold_(w, keep)
    k = kept_count(numel, keep)
    assert int(mask.sum()) == k == int(torch.count_nonzero(w))
    kept = original.abs()[mask]
    dropped = original.abs()[~mask]
    assert dropped.numel() == 0 or kept.min() >= dropped.max()


def test_hard_threshold_counts_exactly_with_ties():
    mask = top_magnitude_mask(torch.ones(10), 0.3)
    assert int(mask.sum()) == 3


class _SupportWatcher(Reporter):
    """Checks after every batch of the sparse phase that pruned weights stayed zero."""

    def __init__(self, trainer_ref):
        self.trainer_ref, self.checked = trainer_ref, 0

    def batch(self):
        trainer = self.trainer_ref[0]
        if trainer.masks:
            for name, mask in trainer.masks.items():
                param = trainer.sparse_params[name][0]
                assert torch.all(param[~mask] == 0), f"{name} revived a pruned weight"
            self.checked += 1


def test_iht_and_sparse_phase_keep_the_support(tiny_data):
    config = TrainConfig(epochs=6, batch_size=16, keep_w=0.5, keep_u=0.25, keep_head=0.4,
                         iht_every=2)
    model = new_model(_config(), tiny_data, seed=0)
    head_before = model.head.weight.detach().clone()
    trainer_ref = []
    watcher = _SupportWatcher(trainer_ref)
    trainer = Trainer(model, tiny_data, config, reporter=watcher)
    trainer_ref.append(trainer)
    trainer.fit()
    assert watcher.checked == 3 * trainer.batches_per_epoch  # every batch of the sparse phase
    for name, (param, group) in sparsifiable_parameters(model).items():
        keep = {"W": 0.5, "U": 0.25, "head": 0.4}[group]
        assert int(torch.count_nonzero(param)) == kept_count(param.numel(), keep), name
        assert torch.equal(param != 0, trainer.masks[name]), name
    assert not torch.allclose(model.head.weight, head_before)  # the head trained


def test_head_trains_in_every_phase(tiny_data):
    model = new_model(_config(), tiny_data, seed=0)
    config = TrainConfig(epochs=3, batch_size=32, keep_w=0.5, keep_u=0.5)
    trainer = Trainer(model, tiny_data, config)
    snapshots = []

    class Snap(Reporter):
        def epoch(self, record, is_best):
            snapshots.append(model.head.weight.detach().clone())

    trainer.reporter = Snap()
    trainer.fit()
    before = [new_model(_config(), tiny_data, seed=0).head.weight.detach()] + snapshots[:-1]
    for start, end in zip(before, snapshots, strict=True):
        assert (end - start).abs().max() > 1e-4


def test_training_learns_the_synthetic_task(tiny_data):
    outcome = fit(tiny_data, _config(), TrainConfig(epochs=15, batch_size=16, lr=2e-2))
    assert outcome.metrics["test_accuracy"] >= 0.8
    assert outcome.metrics["params_nonzero"] == outcome.metrics["params_total"]


def test_resume_after_interruption_gives_identical_weights(tiny_data, tmp_path):
    config = TrainConfig(epochs=6, batch_size=16, keep_w=0.5, keep_u=0.5, iht_every=2, seed=3,
                         augment_noise=0.1, augment_scale=0.1)
    straight = new_model(_config(), tiny_data, seed=3)
    Trainer(straight, tiny_data, config).fit()

    interrupted = new_model(_config(), tiny_data, seed=3)
    ckpt = tmp_path / "checkpoint.safetensors"
    with pytest.raises(KeyboardInterrupt):  # killed after the IHT phase's first epoch
        Trainer(interrupted, tiny_data, config, checkpoint_path=ckpt,
                stop_after_epoch=lambda e: e == 2).fit()
    resumed = new_model(_config(), tiny_data, seed=99)  # fresh process, other init
    result = Trainer(resumed, tiny_data, config, checkpoint_path=ckpt).fit(resume=True)
    assert len(result.history) == 6
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(),
                            strict=True):
        assert torch.equal(a, b), name


def test_resume_without_checkpoint_is_an_error(tiny_data, tmp_path):
    trainer = Trainer(new_model(_config(), tiny_data, 0), tiny_data, TrainConfig(epochs=2),
                      checkpoint_path=tmp_path / "none.safetensors")
    with pytest.raises(KilomlError, match="no checkpoint"):
        trainer.fit(resume=True)


def test_early_stopping_and_best_validation_weights(tiny_data):
    # validation labels unrelated to the inputs: validation stops improving early
    tiny_data.val.y = np.random.default_rng(0).permutation(tiny_data.val.y)
    config = TrainConfig(epochs=40, batch_size=16, lr=5e-2, patience=2)
    model = new_model(_config(), tiny_data, seed=0)
    trainer = Trainer(model, tiny_data, config)
    result = trainer.fit()
    assert result.stopped_early and len(result.history) < 40
    assert len(result.history) - 1 - result.best_epoch == 3  # patience + 1 epochs without gain
    best = max(r.val_accuracy for r in result.history[trainer.select_start:])
    assert result.best_val_accuracy == best and result.best_epoch >= trainer.select_start


def test_validation_never_uses_test_data(tiny_data):
    poisoned = tiny_data
    poisoned.test.x = np.full_like(poisoned.test.x, np.float32(1e6))
    result = fit(poisoned, _config(), TrainConfig(epochs=2, batch_size=32)).result
    assert all(np.isfinite(r.val_loss) and r.val_loss < 100 for r in result.history)


def test_sparsity_on_gru_is_rejected(tiny_data):
    model = new_model(ModelConfig(kind="gru", input_size=3, num_classes=3, hidden_size=4),
                      tiny_data, 0)
    with pytest.raises(KilomlError, match="not gru"):
        Trainer(model, tiny_data, TrainConfig(epochs=3, keep_w=0.5))


def test_same_seed_same_result(tiny_data):
    a = fit(tiny_data, _config(), TrainConfig(epochs=2, batch_size=16, seed=4)).model
    b = fit(tiny_data, _config(), TrainConfig(epochs=2, batch_size=16, seed=4)).model
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)


def test_rotation_augmentation_rotates_vector_channels_only(tiny_data):
    tiny_data.info["vector_channels"] = [[0, 1, 2]]
    model = new_model(_config(), tiny_data, seed=0)
    trainer = Trainer(model, tiny_data, TrainConfig(augment_rotation=20))
    x = torch.from_numpy(tiny_data.train.x[:8])
    rotated = trainer._rotate(x, torch.Generator().manual_seed(1))
    torch.testing.assert_close(rotated.norm(dim=2), x.norm(dim=2))  # a rotation keeps lengths
    assert (rotated - x).abs().max() > 0.1
    again = trainer._rotate(x, torch.Generator().manual_seed(1))
    assert torch.equal(rotated, again)
    tiny_data.info["vector_channels"] = []
    assert torch.equal(trainer._rotate(x, torch.Generator()), x)


def test_best_checkpoint_is_chosen_late_in_a_dense_run(tiny_data):
    config = TrainConfig(epochs=10, batch_size=16, select_from=0.6)
    result = Trainer(new_model(_config(), tiny_data, seed=0), tiny_data, config).fit()
    assert result.best_epoch >= 6
    assert result.best_val_accuracy == max(r.val_accuracy for r in result.history[6:])


def test_gradual_iht_ramps_from_dense_to_the_target(tiny_data):
    config = TrainConfig(epochs=6, batch_size=16, keep_w=0.5, keep_u=0.25, iht_every=1,
                         iht_ramp=0.5, phase_fractions=(0.3, 0.4))
    model = new_model(_config(), tiny_data, seed=0)
    trainer = Trainer(model, tiny_data, config)
    iht = trainer.phases[1]
    keeps = [iht.keep_at(0.25, p) for p in (0.0, 0.1, 0.25, 0.4, 0.5, 0.9)]
    assert keeps[0] == 1.0 and keeps[-2] == keeps[-1] == 0.25
    assert all(a > b for a, b in zip(keeps[:4], keeps[1:5], strict=True))
    trainer.fit()
    for name, (param, group) in trainer.sparse_params.items():
        keep = {"W": 0.5, "U": 0.25, "head": 1.0}[group]
        assert int(torch.count_nonzero(param)) == kept_count(param.numel(), keep), name


@pytest.mark.parametrize("restarts", [True, False])
def test_learning_rate_schedule(tiny_data, restarts):
    config = TrainConfig(epochs=10, batch_size=16, keep_w=0.5, lr=1e-2, min_lr_ratio=0.1,
                         lr_restarts=restarts)
    trainer = Trainer(new_model(_config(), tiny_data, seed=0), tiny_data, config)
    rates = [trainer.learning_rate(e, b)
             for e in range(10) for b in range(trainer.batches_per_epoch)]
    assert rates[0] == pytest.approx(1e-2) and min(rates) >= 1e-3 - 1e-12
    starts = [0, 4, 6]  # dense 4, IHT 2, sparse 4 epochs
    at_starts = [trainer.learning_rate(e, 0) for e in starts]
    if restarts:
        assert at_starts == pytest.approx([1e-2] * 3)  # every phase restarts the cosine
    else:
        assert all(a > b for a, b in zip(rates, rates[1:], strict=False))  # one decay


def test_checkpoints_are_throttled_and_an_interruption_saves_the_last_epoch(
        tiny_data, tmp_path, monkeypatch):
    import kiloml.train.trainer as trainer_module
    from kiloml.train.checkpoint import save_checkpoint

    written = []

    def counting_save(path, *args):
        written.append(args[-1]["epoch"])
        save_checkpoint(path, *args)

    monkeypatch.setattr(trainer_module, "save_checkpoint", counting_save)
    config = TrainConfig(epochs=6, batch_size=32)
    ckpt = tmp_path / "checkpoint.safetensors"
    Trainer(new_model(_config(), tiny_data, 0), tiny_data, config, checkpoint_path=ckpt,
            checkpoint_seconds=float("inf")).fit()
    assert written == [5]  # the last epoch only
    with pytest.raises(KeyboardInterrupt):
        Trainer(new_model(_config(), tiny_data, 0), tiny_data, config, checkpoint_path=ckpt,
                checkpoint_seconds=float("inf"), stop_after_epoch=lambda e: e == 2).fit()
    assert written == [5, 2]  # written when interrupted
    result = Trainer(new_model(_config(), tiny_data, 9), tiny_data, config,
                     checkpoint_path=ckpt).fit(resume=True)
    assert [r.epoch for r in result.history] == list(range(6))


def test_block_sparsity_trains_block_aligned_supports(tiny_data):
    config = TrainConfig(epochs=6, batch_size=16, keep_w=0.5, keep_u=0.25, keep_head=0.5,
                         iht_every=2, sparsity_block=4)
    model = new_model(_config(w_rank=None, u_rank=None), tiny_data, seed=0)
    Trainer(model, tiny_data, config).fit()
    for name, (param, group) in sparsifiable_parameters(model).items():
        rows, cols = param.shape
        blocks = -(-cols // 4)
        padded = torch.zeros(rows, blocks * 4, dtype=torch.bool)
        padded[:, :cols] = param != 0
        kept = padded.reshape(rows, blocks, 4).any(-1)
        full = torch.ones_like(padded)
        full[:, cols:] = False
        # every block (the ragged last one: its cols % 4 entries) kept whole or not at all
        assert torch.equal(padded, kept.repeat_interleave(4, 1) & full), name
        keep = {"W": 0.5, "U": 0.25, "head": 0.5}[group]
        assert int(kept.sum()) == kept_count(rows * blocks, keep), name
