"""``cifar10-animals-vs-vehicles-96``: a binary stand-in for person detection at 96×96.

Visual Wake Words (person / no person, 96×96 in the MLPerf Tiny benchmark) is not reachable
here, so this task has its shape: two classes, 96×96 RGB, one class a living subject. Built
from CIFAR-10 (:mod:`kiloml.data.cifar10`, the same archive, splits and validation rule): label
1 ``animal`` = bird, cat, deer, dog, frog, horse; label 0 ``vehicle`` = airplane, automobile,
ship, truck (60 % / 40 % of every split: a majority guess scores 60 %). Every 32×32 image is
enlarged ×3 to 96×96 by bilinear interpolation with half-pixel centres
(:mod:`kiloml.data.resized_images`) when a batch is read, so nothing larger than the decoded
CIFAR-10 cache (``uint8``) is stored. It is not VWW: the images carry no more detail than
CIFAR-10's 32×32, so accuracy here says nothing about VWW's.

Layout: ``[N, 96, 288]`` rows of 96 RGB pixels interleaved in ``[0, 1]`` (the vision models
take them as ``[N, 3, 96, 96]``); counts (train/val/test) 45,000 / 5,000 / 10,000.
"""

from pathlib import Path

import numpy as np

from kiloml.data.cifar10 import CLASSES, read_cifar10
from kiloml.data.resized_images import UpsampledImages
from kiloml.data.splits import DatasetSplits, Split

NAME = "cifar10-animals-vs-vehicles-96"
ANIMALS = ("bird", "cat", "deer", "dog", "frog", "horse")
CLASS_NAMES = ["vehicle", "animal"]
FACTOR = 3
SIZE = 32 * FACTOR


def animal_labels(labels: np.ndarray) -> np.ndarray:
    """CIFAR-10 labels ``[N]`` → 1 for an animal class, 0 for a vehicle class."""
    animals = [CLASSES.index(name) for name in ANIMALS]
    return np.isin(labels, animals).astype(np.int64)


def load_cifar10_animals_vs_vehicles_96(path: Path | None = None) -> DatasetSplits:
    """The task from the CIFAR-10 archive at ``path`` (as :func:`~kiloml.data.cifar10.
    read_cifar10` takes it); images are enlarged when indexed."""
    a = read_cifar10(path)

    def split(part: str) -> Split:
        return Split(UpsampledImages(a[f"{part}_x"], FACTOR), animal_labels(a[f"{part}_y"]))

    return DatasetSplits(
        name=NAME, train=split("train"), val=split("val"), test=split("test"),
        class_names=list(CLASS_NAMES),
        description="CIFAR-10 animals vs vehicles, enlarged to 96x96 (person-detection stand-in)",
        info={"path": a["path"], "kind": "image", "input": "image",
              "image_shape": [3, SIZE, SIZE],
              "resize": "32x32 -> 96x96, bilinear, half-pixel centres, computed per batch",
              "split_rule": "cifar10's: last tenth of every class's training files → val"},
    ).validate()
