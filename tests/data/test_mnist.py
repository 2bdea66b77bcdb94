"""IDX round trip and errors; MNIST / Pixel-MNIST / Fashion-MNIST shapes and split counts."""

import gzip

import numpy as np
import pytest

from kiloml.data import load_dataset
from kiloml.data.idx import read_idx, write_idx
from kiloml.data.mnist import FASHION_MNIST_DEBIAN, FILES, VAL_SIZE, load_mnist_rows
from kiloml.errors import KilomlError

from .conftest import shared_file

MNIST_TRAIN_DIGITS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", "i4", "f4", ">f8"])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_idx_round_trip(tmp_path, dtype, name):
    array = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.shape == (2, 3, 5) and back.dtype.isnative
    np.testing.assert_array_equal(back, array)


def test_idx_errors(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros((4, 2, 2), np.uint8))
    data = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "short.idx").write_bytes(data[:-1])
    with pytest.raises(KilomlError, match=r"short.idx: IDX header says \[4, 2, 2\] \(16 bytes\) "
                                          "but the file holds 15"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "png.idx").write_bytes(b"\x89PNG....")
    with pytest.raises(KilomlError, match="png.idx: not an IDX file"):
        read_idx(tmp_path / "png.idx")
    (tmp_path / "cut.idx.gz").write_bytes(gzip.compress(data)[:-6])
    with pytest.raises(KilomlError, match="cut.idx.gz: corrupt or unreadable IDX file"):
        read_idx(tmp_path / "cut.idx.gz")


def tiny_mnist(folder, n_train=VAL_SIZE + 20, n_test=7):
    rng = np.random.default_rng(0)
    for part, n in (("train", n_train), ("test", n_test)):
        write_idx(folder / f"{FILES[part + '_images']}.gz",
                  rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / FILES[part + "_labels"], (np.arange(n) % 10).astype(np.uint8))


def test_tiny_mnist_layout(tmp_path):
    tiny_mnist(tmp_path)
    rows = load_mnist_rows(tmp_path)
    pixels = load_dataset("mnist-pixels", tmp_path)
    assert rows.train.x.shape == (20, 28, 28) and pixels.train.x.shape == (20, 784, 1)
    assert (len(rows.val), len(rows.test)) == (VAL_SIZE, 7)
    np.testing.assert_array_equal(rows.val.x.reshape(-1, 784, 1), pixels.val.x)
    assert 0.0 <= rows.test.x.min() and rows.test.x.max() <= 1.0
    (tmp_path / FILES["test_labels"]).unlink()
    with pytest.raises(KilomlError, match="t10k-labels-idx1-ubyte\\[.gz\\] not found"):
        load_mnist_rows(tmp_path)


def test_real_mnist():
    data = load_dataset("mnist-rows", shared_file("mnist"))
    assert data.train.x.shape == (55_000, 28, 28)
    assert (len(data.val), len(data.test)) == (5_000, 10_000)
    counts = np.bincount(data.train.y) + np.bincount(data.val.y)
    assert counts.tolist() == MNIST_TRAIN_DIGITS


def test_fashion_mnist():
    if not (FASHION_MNIST_DEBIAN / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{FASHION_MNIST_DEBIAN} absent (apt-get install dataset-fashion-mnist)")
    data = load_dataset("fashion-mnist-rows")
    assert data.class_names[9] == "Ankle boot"
    assert (len(data.train), len(data.val), len(data.test)) == (55_000, 5_000, 10_000)
    assert np.bincount(data.test.y).tolist() == [1000] * 10


def test_feature_vector_layouts(tmp_path):
    tiny_mnist(tmp_path)
    rows = load_mnist_rows(tmp_path)
    vectors, parity = load_dataset("mnist", tmp_path), load_dataset("mnist-2", tmp_path)
    assert vectors.train.x.shape == (20, 1, 784) and vectors.info["input"] == "vector"
    np.testing.assert_array_equal(rows.test.x.reshape(-1, 1, 784), vectors.test.x)
    np.testing.assert_array_equal(parity.test.x, vectors.test.x)
    assert parity.class_names == ["even", "odd"]
    np.testing.assert_array_equal(parity.train.y, vectors.train.y % 2)
    assert "input" not in rows.info


def test_fashion_mnist_vectors():
    if not (FASHION_MNIST_DEBIAN / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"{FASHION_MNIST_DEBIAN} absent (apt-get install dataset-fashion-mnist)")
    data = load_dataset("fashion-mnist")
    assert data.test.x.shape == (10_000, 1, 784) and data.info["input"] == "vector"
