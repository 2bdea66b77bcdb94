"""The training budget when the user sets none: a batch size from the training-set size and a
number of optimizer steps with a floor.

What trains a model is optimizer steps, not epochs: 60 epochs of 39 sequences at batch 64 are
60 steps, far too few, while 60 epochs of 2,460 windows are 2,340. So the default batch size is
about a sixteenth of the training sequences (a power of two from ``MIN_BATCH`` to ``MAX_BATCH``),
and the default number of epochs is the smallest that gives at least ``MIN_STEPS`` steps, and at
least ``MIN_EPOCHS`` passes over the data. An explicit ``--epochs`` or ``--batch-size`` wins.
"""

import math
from dataclasses import dataclass

MIN_BATCH = 8
MAX_BATCH = 64
SEQUENCES_PER_BATCH = 16  # the batch is about N / 16 sequences
MIN_STEPS = 2000
MIN_EPOCHS = 60


@dataclass(frozen=True)
class Budget:
    """``epochs`` passes of ``batches_per_epoch`` steps of ``batch_size`` sequences."""

    epochs: int
    batch_size: int
    batches_per_epoch: int
    reason: str

    @property
    def steps(self) -> int:
        return self.epochs * self.batches_per_epoch

    def describe(self) -> str:
        return (f"{self.steps:,} steps: {self.epochs} epochs × {self.batches_per_epoch} batches "
                f"of {self.batch_size} ({self.reason})")

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "batch_size": self.batch_size,
                "batches_per_epoch": self.batches_per_epoch, "steps": self.steps,
                "reason": self.reason}

    @classmethod
    def from_dict(cls, data: dict) -> "Budget":
        return cls(data["epochs"], data["batch_size"], data["batches_per_epoch"], data["reason"])


def default_batch_size(train_sequences: int) -> int:
    """The largest power of two not above ``train_sequences / 16``, within 8..64."""
    share = max(train_sequences / SEQUENCES_PER_BATCH, 1.0)
    return int(min(MAX_BATCH, max(MIN_BATCH, 2 ** math.floor(math.log2(share)))))


def training_budget(train_sequences: int, epochs: int | None = None,
                    batch_size: int | None = None) -> Budget:
    """The budget for ``train_sequences`` training sequences; ``epochs`` / ``batch_size`` given
    by the user are kept as they are."""
    batch = batch_size or default_batch_size(train_sequences)
    batches = math.ceil(train_sequences / batch)
    given = [f"--{name} {value}" for name, value in (("epochs", epochs),
                                                      ("batch-size", batch_size)) if value]
    if epochs is not None:
        return Budget(epochs, batch, batches, "as given: " + ", ".join(given))
    epochs = max(MIN_EPOCHS, math.ceil(MIN_STEPS / batches))
    rule = (f"at least {MIN_STEPS:,} steps and {MIN_EPOCHS} epochs"
            + ("" if batch_size else f"; batch: {train_sequences} sequences / "
                                     f"{SEQUENCES_PER_BATCH} rounded down to a power of two, "
                                     f"within {MIN_BATCH}-{MAX_BATCH}"))
    return Budget(epochs, batch, batches, rule + ("; " + given[0] if given else ""))
