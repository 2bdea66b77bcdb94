"""The registry: every dataset has a default location; user data paths are dispatched."""

import numpy as np
import pytest

from kiloml.data import (
    DATASETS,
    FILE_DATASETS,
    dataset_location,
    load_dataset,
    load_run_dataset,
)
from kiloml.errors import KilomlError


def test_every_dataset_has_a_location(monkeypatch, tmp_path):
    monkeypatch.setenv("KILOML_DATA", str(tmp_path))
    assert FILE_DATASETS <= set(DATASETS)
    for name in DATASETS:
        if name in ("smartwatch", "basic-motions", "japanese-vowels"):
            continue  # found in installed packages
        assert dataset_location(name) is not None, name
    assert dataset_location("fsdd").startswith(str(tmp_path / "fsdd"))
    assert dataset_location("mnist-pixels") == str(tmp_path / "mnist")


def test_absent_data_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("KILOML_DATA", str(tmp_path))
    for name in ("speech-commands-12", "fsdd", "mnist-rows"):
        with pytest.raises(KilomlError, match=str(tmp_path)):
            load_dataset(name)


def test_unknown_name_lists_the_choices():
    with pytest.raises(KilomlError, match="unknown dataset 'nope'; choose one of smartwatch, "
                                          "speech-commands-12.*a .ts file pair"):
        load_dataset("nope")


def test_npz_still_loads(tmp_path):
    x = np.zeros((10, 4, 2), np.float32)
    np.savez(tmp_path / "d.npz", X_train=x, y_train=np.arange(10) % 2, X_test=x[:3],
             y_test=np.arange(3) % 2)
    assert load_dataset(str(tmp_path / "d.npz")).num_classes == 2


def test_npz_may_declare_sensor_axes(tmp_path):
    x = np.zeros((10, 4, 6), np.float32)
    arrays = dict(X_train=x, y_train=np.arange(10) % 2, X_test=x[:3], y_test=np.arange(3) % 2)
    np.savez(tmp_path / "imu.npz", **arrays, vector_channels=np.array([[0, 1, 2], [3, 4, 5]]))
    data = load_dataset(str(tmp_path / "imu.npz"))
    assert data.info["vector_channels"] == [[0, 1, 2], [3, 4, 5]]
    np.savez(tmp_path / "bad.npz", **arrays, vector_channels=np.array([[0, 1, 6]]))
    with pytest.raises(KilomlError, match="vector_channels must be \\[G, 3\\] distinct feature "
                                          "indices in 0..5"):
        load_dataset(str(tmp_path / "bad.npz"))


def test_a_run_s_padding_is_applied_again(tmp_path):
    x = np.arange(10 * 5, dtype=np.float32).reshape(10, 5, 1)
    np.savez(tmp_path / "d.npz", X_train=x, y_train=np.arange(10) % 2, X_test=x[:3],
             y_test=np.arange(3) % 2)
    config = {"dataset": str(tmp_path / "d.npz"), "steps": 8, "padded_from": 5}
    data = load_run_dataset(config)
    assert data.steps == 8
    np.testing.assert_array_equal(data.test.x[1, :, 0], [5, 5, 5, 5, 6, 7, 8, 9])
    with pytest.raises(KilomlError, match="5 steps, but the run was trained on 6"):
        load_run_dataset({**config, "padded_from": 6})
