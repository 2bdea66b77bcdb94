"""Training: one Trainer; the compression schedule is a list of phase objects."""

from kiloml.train.phases import (
                                 DensePhase,
                                 FixedSupportPhase,
                                 HardThresholdPhase,
                                 Phase,
                                 Sparsity,
                                 compression_schedule,
)
from kiloml.train.trainer import TrainConfig, Trainer, TrainResult

__all__ = ["DensePhase", "FixedSupportPhase", "HardThresholdPhase", "Phase", "Sparsity",
           "TrainConfig", "TrainResult", "Trainer", "compression_schedule"]
