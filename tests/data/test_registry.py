"""The registry: every dataset has a default location; user data paths are dispatched."""

import numpy as np
import pytest

from kiloml.data import DATASETS, FILE_DATASETS, dataset_location, load_dataset
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
