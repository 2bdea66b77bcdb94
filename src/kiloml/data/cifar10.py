"""CIFAR-10 from the JPEG archive ``cifar-10-images-jpg.tar.gz``: 10 classes of 32×32 RGB images.

Source: the archive (SHA-256 checked) or a folder with the same layout extracted:
``train/<class>/<name>.jpg`` (5,000 per class) and ``test/<class>/<name>.jpg`` (1,000 per
class), class folders named as CIFAR-10's classes (``airplane`` … ``truck``, labels 0–9 in
CIFAR-10's order). These are the official images re-encoded as JPEG (lossy), not the official
pickle batches, so pixel values differ slightly from those. Decoded with Pillow (a dependency of
matplotlib); the decoded archive is cached as ``uint8`` arrays keyed by its SHA-256.

Layout: each image is 32 steps (rows) of 96 features (32 pixels × R, G, B interleaved), scaled to
``[0, 1]``, so ``x`` is ``[N, 32, 96]``; :func:`as_images` turns it into ``[N, 3, 32, 32]``.

Split: the official 10,000 test images → test; of every class's training images in file-name
order, the last tenth → validation (the test split is never used to choose anything). Counts
(train/val/test): 45,000 / 5,000 / 10,000; 4,500 / 500 / 1,000 per class.
"""

import io
from pathlib import Path

import numpy as np

from kiloml.data.archive import archive_members, check_archive, folder_members
from kiloml.data.audio_clips import cached_arrays
from kiloml.data.paths import data_root
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError

ARCHIVE = "cifar-10-images-jpg.tar.gz"
SHA256 = "1eeb753345949d7d9fecc3c6a53562608d45ba5b6f282cd58053eabc3928ea0b"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck"]
SIZE = 32
VAL_FRACTION = 10  # one in VAL_FRACTION training images of every class → validation


def default_path() -> Path:
    """``cifar10/`` under the data root (``$KILOML_DATA`` or ``./data``)."""
    return data_root() / "cifar10"


def _source(path: Path | None) -> tuple[Path, bool]:
    """``(archive or folder, is_archive)``."""
    path = Path(path) if path is not None else default_path()
    if path.is_dir() and (path / ARCHIVE).is_file():
        return path / ARCHIVE, True
    if path.is_file():
        return path, True
    if path.is_dir() and (path / "train").is_dir() and (path / "test").is_dir():
        return path, False
    raise KilomlError(f"{path}: cifar10 not found (expected {ARCHIVE} or train/ and test/ "
                      "folders of <class>/*.jpg)")


def _decode(data: bytes, where: str) -> np.ndarray:
    """One JPEG as ``uint8`` ``[32, 32, 3]``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise KilomlError(f"{where}: not a readable image ({e})") from None
    if pixels.shape != (SIZE, SIZE, 3):
        raise KilomlError(f"{where}: image is {pixels.shape[1]}x{pixels.shape[0]}, expected "
                          f"{SIZE}x{SIZE}")
    return pixels


def _read(source: Path, is_archive: bool) -> dict[str, np.ndarray]:
    """Every image of both parts, sorted by (part, class, file name): ``x`` ``uint8``
    ``[N, 32, 32, 3]``, ``y``, ``test`` (bool) and ``name``."""
    members = archive_members(source, ".jpg") if is_archive else folder_members(source, ".jpg")
    found = []
    for name, data in members:
        parts = name.split("/")
        if len(parts) != 3 or parts[0] not in ("train", "test"):
            continue
        if parts[1] not in CLASSES:
            raise KilomlError(f"{source}:{name}: unknown class folder {parts[1]!r}; expected "
                              f"one of {', '.join(CLASSES)}")
        found.append((parts[0] == "test", CLASSES.index(parts[1]), parts[2],
                      _decode(data, f"{source}:{name}")))
    found.sort(key=lambda item: item[:3])
    for part in (False, True):
        if not any(is_test == part for is_test, *_ in found):
            raise KilomlError(f"{source}: no {'test' if part else 'train'}/<class>/*.jpg images")
    return {"x": np.stack([item[3] for item in found]),
            "y": np.array([item[1] for item in found], dtype=np.int64),
            "test": np.array([item[0] for item in found]),
            "name": np.array([item[2] for item in found])}


def read_cifar10(path: Path | None = None) -> dict[str, np.ndarray]:
    """The decoded images as ``uint8`` ``[N, 32, 32, 3]`` arrays per split (``train_x``,
    ``train_y``, ``val_x``, ``val_y``, ``test_x``, ``test_y``) and ``path``."""
    source, is_archive = _source(path)
    if is_archive:
        sha = check_archive(source, SHA256)
        arrays = cached_arrays(f"cifar10-{sha[:16]}", ("x", "y", "test", "name"),
                               lambda: _read(source, True))
    else:
        arrays = _read(source, False)
    x, y, test = arrays["x"], arrays["y"], arrays["test"]
    val = np.zeros(len(y), dtype=bool)
    for label in range(len(CLASSES)):
        train_of_class = np.flatnonzero(~test & (y == label))  # in file-name order
        val[train_of_class[len(train_of_class) - len(train_of_class) // VAL_FRACTION:]] = True
    train = ~test & ~val
    if not train.any() or not val.any():
        raise KilomlError(f"{source}: too few training images to hold out a validation split "
                          f"(need at least {VAL_FRACTION} in some class)")
    out = {"path": str(source)}
    for part, mask in (("train", train), ("val", val), ("test", test)):
        out[f"{part}_x"], out[f"{part}_y"] = x[mask], y[mask]
    return out


def as_images(x: np.ndarray) -> np.ndarray:
    """``[N, 32, 96]`` rows of interleaved RGB pixels → ``[N, 3, 32, 32]`` (channels first)."""
    n, rows, features = x.shape
    return x.reshape(n, rows, features // 3, 3).transpose(0, 3, 1, 2)


def load_cifar10(path: Path | None = None) -> DatasetSplits:
    """CIFAR-10 as ``[N, 32, 96]`` (rows of RGB pixels in ``[0, 1]``) from ``path`` (the
    archive, the folder holding it, or an extracted folder; default ``default_path()``)."""
    a = read_cifar10(path)

    def split(part: str) -> Split:
        images = a[f"{part}_x"]
        x = images.reshape(len(images), SIZE, SIZE * 3).astype(np.float32) / np.float32(255)
        return Split(x, a[f"{part}_y"])

    return DatasetSplits(
        name="cifar10", train=split("train"), val=split("val"), test=split("test"),
        class_names=list(CLASSES),
        description="CIFAR-10 (JPEG re-encoded), 32 rows x 96 (32 RGB pixels)",
        info={"path": a["path"], "kind": "image", "image_shape": [3, SIZE, SIZE],
              "split_rule": "last tenth of every class's training files → val"},
    ).validate()
