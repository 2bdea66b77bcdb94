"""MNIST and Fashion-MNIST from their official IDX files, as sequences.

``mnist``: each image is one feature vector of 784 pixels (row-major; for ProtoNN and Bonsai,
held as one step of 784 features, ``info["input"] == "vector"``); ``mnist-2``: the same
vectors with the binary label *odd digit* (class 0: even digits 0, 2, 4, 6, 8; class 1: odd),
the MNIST-2 of the Bonsai and ProtoNN papers; ``fashion-mnist``: Fashion-MNIST as vectors;
``mnist-rows``: each 28×28 image is 28 steps of 28 features (one row per step);
``mnist-pixels``: 784 steps of 1 feature, pixels in row-major order (Pixel-MNIST of the
FastGRNN paper); ``fashion-mnist-rows``: Fashion-MNIST as rows. Pixels are scaled to
``[0, 1]`` (``value / 255``).

Files: ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``, each plain or ``.gz`` (gzip's CRC catches corrupt files; the IDX
reader checks the header against the size). MNIST is looked for in ``mnist/`` under the data
root; Fashion-MNIST in Debian's ``dataset-fashion-mnist`` folder
``/usr/share/datasets/fashion-mnist/``.

Split: the official 10,000 test images → test; of the 60,000 training images, the last 5,000
(indices 55,000–59,999) → validation, the first 55,000 → train. Counts (train/val/test):
55,000 / 5,000 / 10,000; per class: see ``docs/datasets.md``.
"""

from pathlib import Path

import numpy as np

from kiloml.data.idx import read_idx
from kiloml.data.paths import data_root
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError

FILES = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
         "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
VAL_SIZE = 5000
FASHION_MNIST_DEBIAN = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def default_path() -> Path:
    """``mnist/`` under the data root (``$KILOML_DATA`` or ``./data``)."""
    return data_root() / "mnist"


def find_idx(folder: Path, stem: str) -> Path:
    """``folder/stem.gz`` or ``folder/stem`` (also ``train-images.idx3-ubyte`` spellings)."""
    dotted = stem.replace("-idx", ".idx")
    for name in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / name).is_file():
            return folder / name
    raise KilomlError(f"{folder}: {stem}[.gz] not found")


def read_images(folder: Path) -> dict[str, np.ndarray]:
    """The four IDX arrays of an MNIST-layout folder, checked for matching sizes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KilomlError(f"{folder}: folder not found")
    arrays = {key: read_idx(find_idx(folder, stem)) for key, stem in FILES.items()}
    for part in ("train", "test"):
        images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
        where = find_idx(folder, FILES[f"{part}_images"])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise KilomlError(f"{where}: expected uint8 images [N, H, W], got {images.dtype} "
                              f"{list(images.shape)}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise KilomlError(f"{where}: {len(images)} images but {labels.size} labels")
    return arrays


def _load(folder: Path, name: str, layout: str, class_names: list[str],
          description: str, parity: bool = False) -> DatasetSplits:
    """``layout``: ``rows`` ``[N, H, W]``, ``pixels`` ``[N, H*W, 1]`` or ``vector``
    ``[N, 1, H*W]``; ``parity`` replaces each label by ``label % 2``."""
    a = read_images(folder)
    n, h, w = a["train_images"].shape
    if n <= VAL_SIZE:
        raise KilomlError(f"{folder}: {n} training images; need more than {VAL_SIZE}")
    shape = {"rows": (h, w), "pixels": (h * w, 1), "vector": (1, h * w)}[layout]

    def split(images: np.ndarray, labels: np.ndarray) -> Split:
        x = images.reshape(len(images), *shape).astype(np.float32) / np.float32(255)
        labels = labels.astype(np.int64)
        return Split(x, labels % 2 if parity else labels)

    train_x, train_y = a["train_images"], a["train_labels"]
    return DatasetSplits(
        name=name,
        train=split(train_x[:-VAL_SIZE], train_y[:-VAL_SIZE]),
        val=split(train_x[-VAL_SIZE:], train_y[-VAL_SIZE:]),
        test=split(a["test_images"], a["test_labels"]),
        class_names=class_names, description=description,
        info={"path": str(folder), "split_rule": f"last {VAL_SIZE} training images → val",
              "kind": "image", **({"input": "vector"} if layout == "vector" else {})},
    ).validate()


def load_mnist_rows(path: Path | None = None) -> DatasetSplits:
    """MNIST as ``[N, 28, 28]``: 28 steps (rows) of 28 features, from ``path`` (a folder)."""
    return _load(Path(path) if path else default_path(), "mnist-rows", "rows",
                 [str(d) for d in range(10)], "MNIST, 28 steps x 28 pixels (rows)")


def load_mnist_pixels(path: Path | None = None) -> DatasetSplits:
    """MNIST as ``[N, 784, 1]``: one pixel per step (Pixel-MNIST), from ``path`` (a folder)."""
    return _load(Path(path) if path else default_path(), "mnist-pixels", "pixels",
                 [str(d) for d in range(10)], "Pixel-MNIST, 784 steps x 1 pixel")


def load_fashion_mnist_rows(path: Path | None = None) -> DatasetSplits:
    """Fashion-MNIST as ``[N, 28, 28]`` rows, from ``path`` (default: Debian's folder)."""
    return _load(Path(path) if path else FASHION_MNIST_DEBIAN, "fashion-mnist-rows", "rows",
                 FASHION_CLASSES, "Fashion-MNIST, 28 steps x 28 pixels (rows)")


def load_mnist_vectors(path: Path | None = None) -> DatasetSplits:
    """MNIST as feature vectors of 784 pixels (``[N, 1, 784]``), from ``path`` (a folder)."""
    return _load(Path(path) if path else default_path(), "mnist", "vector",
                 [str(d) for d in range(10)], "MNIST, 784-pixel feature vectors")


def load_mnist_parity(path: Path | None = None) -> DatasetSplits:
    """MNIST-2: 784-pixel vectors labelled even (0) or odd (1) digit, from ``path``."""
    return _load(Path(path) if path else default_path(), "mnist-2", "vector",
                 ["even", "odd"], "MNIST-2: even vs odd digit, 784-pixel feature vectors",
                 parity=True)


def load_fashion_mnist_vectors(path: Path | None = None) -> DatasetSplits:
    """Fashion-MNIST as 784-pixel feature vectors, from ``path`` (default: Debian's folder)."""
    return _load(Path(path) if path else FASHION_MNIST_DEBIAN, "fashion-mnist", "vector",
                 FASHION_CLASSES, "Fashion-MNIST, 784-pixel feature vectors")
