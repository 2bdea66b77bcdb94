"""Compression phases act on any declared sparsity groups through their hooks."""

import pytest
import torch

from kiloml.compress.hard_threshold import kept_count
from kiloml.train.phases import (
    DensePhase,
    FixedSupportPhase,
    HardThresholdPhase,
    Sparsity,
    compression_schedule,
)


def _sparsity() -> Sparsity:
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(6, 10))
    b = torch.nn.Parameter(torch.randn(20))
    return Sparsity({"a": (a, "W"), "b": (b, "conv")}, {"W": 0.5, "conv": 0.25})


def test_hard_threshold_phase_projects_every_n_steps_then_fixes_the_support():
    sparsity = _sparsity()
    a, b = sparsity.params["a"][0], sparsity.params["b"][0]
    phase = HardThresholdPhase(epochs=2, every=3)
    phase.after_step(sparsity, epoch=0, batch=0, batches=4)
    phase.after_step(sparsity, epoch=0, batch=1, batches=4)
    assert int(torch.count_nonzero(a)) == 60  # no projection before the third step
    phase.after_step(sparsity, epoch=0, batch=2, batches=4)
    assert int(torch.count_nonzero(a)) == kept_count(60, 0.5)
    assert int(torch.count_nonzero(b)) == kept_count(20, 0.25)
    phase.after_epoch(sparsity, epoch=0)
    assert sparsity.masks == {}  # not the phase's last epoch
    with torch.no_grad():
        a.add_(1.0)  # pruned weights grow back between projections
    phase.after_epoch(sparsity, epoch=1)
    assert set(sparsity.masks) == {"a", "b"}
    assert torch.equal(a != 0, sparsity.masks["a"])
    assert int(sparsity.masks["a"].sum()) == kept_count(60, 0.5)


def test_ramped_projection_keeps_more_early_in_the_phase():
    phase = HardThresholdPhase(epochs=4, every=1, ramp=0.5)
    keeps = [phase.keep_at(0.2, p) for p in (0.0, 0.25, 0.5, 1.0)]
    assert keeps[0] == 1.0 and keeps[2] == keeps[3] == 0.2 and 0.2 < keeps[1] < 1.0
    sparsity = _sparsity()
    phase.after_step(sparsity, epoch=0, batch=0, batches=2)  # progress 1/8 of the phase
    expected = kept_count(60, phase.keep_at(0.5, 1 / 8))
    assert kept_count(60, 0.5) < expected == int(torch.count_nonzero(sparsity.params["a"][0]))


def test_fixed_support_phase_zeroes_revived_weights_after_every_step():
    sparsity = _sparsity()
    HardThresholdPhase(epochs=1, every=100).after_epoch(sparsity, epoch=0)
    a = sparsity.params["a"][0]
    with torch.no_grad():
        a.add_(1.0)
    FixedSupportPhase(epochs=1).after_step(sparsity, epoch=0, batch=0, batches=1)
    assert torch.equal(a != 0, sparsity.masks["a"])
    before = a.detach().clone()
    DensePhase(epochs=1).after_step(sparsity, epoch=0, batch=0, batches=1)
    assert torch.equal(a, before)  # a dense phase leaves the weights alone


def test_schedule_is_built_of_phase_objects():
    phases = compression_schedule(10, sparse=True, iht_every=4, iht_ramp=0.3)
    assert [type(p) for p in phases] == [DensePhase, HardThresholdPhase, FixedSupportPhase]
    assert (phases[1].every, phases[1].ramp) == (4, 0.3)
    with pytest.raises(ValueError):
        DensePhase(0)
