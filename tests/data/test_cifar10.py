"""CIFAR-10 from its JPEG layout: split rule, pixel layout, errors, and the real archive."""

import io

import numpy as np
import pytest
from PIL import Image

from kiloml.data import load_dataset
from kiloml.data.cifar10 import CLASSES, as_images, load_cifar10, read_cifar10
from kiloml.errors import KilomlError

from .conftest import shared_file


def _jpeg(color, size=(32, 32)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="JPEG", quality=95)
    return out.getvalue()


def tiny_cifar(root, train_per_class=20, test_per_class=3, classes=("airplane", "cat")):
    """Uniform images whose colour encodes (class, index): red = class, green = index."""
    for part, count in (("train", train_per_class), ("test", test_per_class)):
        for name in classes:
            folder = root / part / name
            folder.mkdir(parents=True)
            for i in range(count):
                color = (40 * CLASSES.index(name), 10 * i, 200 if part == "test" else 100)
                (folder / f"{i:04d}.jpg").write_bytes(_jpeg(color))
    return root


def test_layout_and_split_of_an_extracted_folder(tmp_path):
    data = load_cifar10(tiny_cifar(tmp_path))
    assert data.class_names == CLASSES and data.info["image_shape"] == [3, 32, 32]
    assert data.train.x.shape == (36, 32, 96) and data.train.x.dtype == np.float32
    assert (len(data.val), len(data.test)) == (4, 6)
    # the last tenth of every class's training files (file-name order) is the validation split
    images = as_images(data.val.x)
    assert images.shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(data.val.y, [0, 0, 3, 3])
    green = images[:, 1].mean(axis=(1, 2)) * 255
    np.testing.assert_allclose(green, [180, 190, 180, 190], atol=2)  # files 0018, 0019
    red = as_images(data.train.x)[:, 0].mean(axis=(1, 2)) * 255
    np.testing.assert_allclose(red, np.repeat([0, 120], 18), atol=2)
    blue = as_images(data.test.x)[:, 2].mean(axis=(1, 2)) * 255
    np.testing.assert_allclose(blue, 200, atol=2)
    assert 0.0 <= data.train.x.min() and data.train.x.max() <= 1.0


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "train" / "cat" / "0003.jpg").write_bytes(b"not a jpeg"),
     r"train/cat/0003.jpg: not a readable image"),
    (lambda root: (root / "train" / "cat" / "0003.jpg").write_bytes(_jpeg((0, 0, 0), (32, 31))),
     r"train/cat/0003.jpg: image is 32x31, expected 32x32"),
    (lambda root: (root / "test" / "kitten").mkdir() or (root / "test" / "kitten" / "a.jpg")
     .write_bytes(_jpeg((0, 0, 0))), r"unknown class folder 'kitten'"),
])
def test_bad_files_are_one_line_errors(tmp_path, damage, message):
    damage(tiny_cifar(tmp_path))
    with pytest.raises(KilomlError, match=message) as err:
        load_cifar10(tmp_path)
    assert "\n" not in str(err.value)


def test_missing_data_and_too_few_images(tmp_path, monkeypatch):
    monkeypatch.setenv("KILOML_DATA", str(tmp_path))
    with pytest.raises(KilomlError, match=f"{tmp_path / 'cifar10'}: cifar10 not found"):
        load_dataset("cifar10")
    tiny_cifar(tmp_path / "small", train_per_class=5)
    with pytest.raises(KilomlError, match="too few training images"):
        load_cifar10(tmp_path / "small")


def test_real_archive(monkeypatch, shared_cache):
    archive = shared_file("cifar10/cifar-10-images-jpg.tar.gz")
    monkeypatch.setenv("KILOML_CACHE", str(shared_cache))
    a = read_cifar10(archive.parent)
    counts = {part: np.bincount(a[f"{part}_y"], minlength=10) for part in ("train", "val", "test")}
    assert counts["train"].tolist() == [4500] * 10
    assert counts["val"].tolist() == [500] * 10 and counts["test"].tolist() == [1000] * 10
    assert a["train_x"].shape == (45000, 32, 32, 3) and a["train_x"].dtype == np.uint8
    # the three splits share no image
    keys = {part: {x.tobytes() for x in a[f"{part}_x"][::5]} for part in ("train", "val", "test")}
    assert not (keys["train"] & keys["val"]) and not (keys["val"] & keys["test"])
    assert 110 < a["test_x"].mean() < 130  # CIFAR-10's mean pixel is ~121
    assert (shared_cache / "cifar10-1eeb753345949d7d" / "x.npy").is_file()
