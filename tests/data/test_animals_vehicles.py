"""cifar10-animals-vs-vehicles-96: the enlargement rule, lazy indexing, labels and shapes."""

import numpy as np
import pytest
import torch

from kiloml.data import load_dataset
from kiloml.data.animals_vehicles import animal_labels, load_cifar10_animals_vs_vehicles_96
from kiloml.data.cifar10 import CLASSES, load_cifar10
from kiloml.data.resized_images import UpsampledImages, interpolation_matrix

from .test_cifar10 import tiny_cifar


def test_enlargement_equals_torch_bilinear_with_half_pixel_centres():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 5, 4, 3), dtype=np.uint8)
    lazy = UpsampledImages(images, 3)
    assert lazy.shape == (3, 15, 36) and lazy.dtype == np.float32 and len(lazy) == 3
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255, scale_factor=3,
        mode="bilinear", align_corners=False).permute(0, 2, 3, 1).reshape(3, 15, 36)
    np.testing.assert_allclose(np.asarray(lazy), expected.numpy(), atol=1e-6)
    # one row of weights by hand: output 0 samples -1/3 (clamped to pixel 0), output 2 samples
    # 1/3 (2/3 of pixel 0, 1/3 of pixel 1), output 1 samples pixel 0 exactly
    weights = interpolation_matrix(4, 3)
    np.testing.assert_allclose(weights[:3, :2], [[1, 0], [1, 0], [2 / 3, 1 / 3]], atol=1e-7)
    np.testing.assert_allclose(weights.sum(axis=1), 1, atol=1e-6)


def test_indexing_by_int_slice_and_array_agree():
    rng = np.random.default_rng(1)
    lazy = UpsampledImages(rng.integers(0, 256, size=(6, 2, 2, 3), dtype=np.uint8), 3)
    whole = np.asarray(lazy)
    np.testing.assert_array_equal(lazy[4], whole[4])
    np.testing.assert_array_equal(lazy[1:3], whole[1:3])
    np.testing.assert_array_equal(lazy[np.array([5, 0, 5])], whole[[5, 0, 5]])
    # a uniform image stays uniform: grey 51 is 0.2 everywhere
    grey = UpsampledImages(np.full((1, 2, 2, 3), 51, np.uint8), 3)
    np.testing.assert_allclose(grey[0], 0.2, atol=1e-6)


def test_animal_labels():
    labels = np.arange(10)
    assert [CLASSES[i] for i in np.flatnonzero(animal_labels(labels))] == [
        "bird", "cat", "deer", "dog", "frog", "horse"]
    assert animal_labels(labels).dtype == np.int64


def test_the_task_from_a_tiny_cifar_folder(tmp_path):
    root = tiny_cifar(tmp_path, classes=("airplane", "cat", "truck", "dog"))
    data = load_cifar10_animals_vs_vehicles_96(root)
    assert data.name == "cifar10-animals-vs-vehicles-96"
    assert data.class_names == ["vehicle", "animal"]
    assert data.info["image_shape"] == [3, 96, 96] and data.info["input"] == "image"
    assert data.train.x.shape == (72, 96, 288) and (len(data.val), len(data.test)) == (8, 12)
    assert (data.steps, data.num_features) == (96, 288)
    # sorted by class as cifar10 is: airplane (0), cat (1), dog (1), truck (0)
    np.testing.assert_array_equal(data.test.y, np.repeat([0, 1, 1, 0], 3))
    source = load_cifar10(root)
    np.testing.assert_array_equal(data.val.y, animal_labels(source.val.y))
    # each enlarged image is the 32x32 one, uniform colours staying uniform
    big = data.val.x[0].reshape(96, 96, 3)
    small = source.val.x[0].reshape(32, 32, 3)
    np.testing.assert_allclose(big.mean(axis=(0, 1)), small.mean(axis=(0, 1)), atol=1e-3)
    by_name = load_dataset("cifar10-animals-vs-vehicles-96", root)
    np.testing.assert_array_equal(by_name.train.y, data.train.y)


def test_the_real_archive_if_present(shared_cache):
    from .conftest import shared_file

    shared_file("cifar10/cifar-10-images-jpg.tar.gz")
    pytest.importorskip("PIL")
    data = load_dataset("cifar10-animals-vs-vehicles-96", shared_file("cifar10"))
    assert (len(data.train), len(data.val), len(data.test)) == (45000, 5000, 10000)
    assert data.train.y.mean() == pytest.approx(0.6) and data.test.y.mean() == pytest.approx(0.6)
    assert data.test.x[:2].shape == (2, 96, 288)
