"""The default training budget: batch size from the training-set size, a floor of optimizer
steps, and explicit --epochs / --batch-size kept as given."""

import pytest

from kiloml.train.budget import MIN_EPOCHS, MIN_STEPS, default_batch_size, training_budget


@pytest.mark.parametrize("sequences,batch", [(5, 8), (36, 8), (200, 8), (270, 16), (600, 32),
                                             (2460, 64), (55_000, 64)])
def test_batch_size_follows_the_training_set(sequences, batch):
    assert default_batch_size(sequences) == batch


def test_small_data_gets_the_step_floor():
    budget = training_budget(39)  # GunPoint's training split: 60 epochs at batch 64 = 60 steps
    assert (budget.batch_size, budget.batches_per_epoch, budget.epochs) == (8, 5, 400)
    assert budget.steps == 2000 >= MIN_STEPS


def test_the_smartwatch_budget_is_the_demo_s():
    budget = training_budget(2460)  # smartwatch training windows
    assert (budget.epochs, budget.batch_size, budget.steps) == (MIN_EPOCHS, 64, 60 * 39)


def test_explicit_epochs_and_batch_size_win():
    assert (training_budget(39, epochs=12).epochs, training_budget(39, epochs=12).steps) == (12, 60)
    budget = training_budget(39, batch_size=39)
    assert (budget.batch_size, budget.batches_per_epoch, budget.epochs) == (39, 1, 2000)
    assert "--batch-size 39" in budget.reason
    assert training_budget(39, epochs=3, batch_size=4).to_dict() == {
        "epochs": 3, "batch_size": 4, "batches_per_epoch": 10, "steps": 30,
        "reason": "as given: --epochs 3, --batch-size 4"}
