"""Training: one Trainer; the compression schedule is a list of phases."""

from kiloml.train.phases import Phase, compression_schedule
from kiloml.train.trainer import TrainConfig, Trainer, TrainResult

__all__ = ["Phase", "TrainConfig", "TrainResult", "Trainer", "compression_schedule"]
