"""Datasets: loaders for official layouts, split rules, and input validation."""

from kiloml.data.registry import DATASETS, load_dataset
from kiloml.data.splits import DatasetSplits, Split

__all__ = ["DATASETS", "DatasetSplits", "Split", "load_dataset"]
