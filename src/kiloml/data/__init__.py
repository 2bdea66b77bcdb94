"""Datasets: loaders for official layouts, split rules, and input validation."""

from kiloml.data.registry import (
    DATASETS,
    FILE_DATASETS,
    dataset_location,
    load_dataset,
    load_run_dataset,
)
from kiloml.data.splits import DatasetSplits, Split

__all__ = ["DATASETS", "FILE_DATASETS", "DatasetSplits", "Split", "dataset_location",
           "load_dataset", "load_run_dataset"]
