"""The smartwatch loader: subject-disjoint splits, documented window counts, bad files."""

import numpy as np
import pytest

from kiloml.data import load_dataset
from kiloml.data.smartwatch import (
    HOP,
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    VAL_SUBJECTS,
    WINDOW,
    default_path,
    load_smartwatch,
)
from kiloml.data.splits import sliding_windows
from kiloml.data.time_stretch import GRAVITY_WINDOW, moving_average
from kiloml.errors import KilomlError

needs_seglearn = pytest.mark.skipif(default_path() is None or not default_path().is_file(),
                                    reason="seglearn==1.2.5 is not installed (make setup does)")


def test_sliding_windows():
    rec = np.arange(10 * 2).reshape(10, 2)
    w = sliding_windows(rec, 4, 3)
    assert w.shape == (3, 4, 2)
    np.testing.assert_array_equal(w[1], rec[3:7])
    assert sliding_windows(rec[:3], 4, 3).shape == (0, 4, 2)


@needs_seglearn
def test_split_is_by_subject_and_deterministic():
    assert not set(TRAIN_SUBJECTS) & set(VAL_SUBJECTS) | set(TRAIN_SUBJECTS) & set(TEST_SUBJECTS)
    assert set(TRAIN_SUBJECTS) | set(VAL_SUBJECTS) | set(TEST_SUBJECTS) == set(range(1, 11))
    a, b = load_dataset("smartwatch"), load_dataset("smartwatch")
    raw = np.load(default_path(), allow_pickle=True).item()
    for split, subjects in (("train", TRAIN_SUBJECTS), ("val", VAL_SUBJECTS),
                            ("test", TEST_SUBJECTS)):
        np.testing.assert_array_equal(getattr(a, split).x, getattr(b, split).x)
        expected = sum((len(x) - WINDOW) // HOP + 1
                       for x, s in zip(raw["X"], raw["subject"], strict=True) if s in subjects)
        assert len(getattr(a, split)) == expected
        assert getattr(a, split).x.shape[1:] == (WINDOW, 6)
        assert set(np.unique(getattr(a, split).y)) == set(range(7))  # every exercise present
    assert a.class_names == ["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"]


def test_missing_or_wrong_file_is_a_clear_error(tmp_path):
    with pytest.raises(KilomlError, match="file not found"):
        load_smartwatch(tmp_path / "watch_dataset.npy")
    np.save(tmp_path / "bad.npy", np.arange(3))
    with pytest.raises(KilomlError, match="not a seglearn watch_dataset.npy"):
        load_smartwatch(tmp_path / "bad.npy")


@needs_seglearn
def test_other_subject_splits_for_cross_validation():
    raw = np.load(default_path(), allow_pickle=True).item()
    folds = ((3, 4, 5, 6, 7, 8, 9), (10,), (1, 2))
    data = load_smartwatch(subjects=folds)
    for split, subjects in zip(("train", "val", "test"), folds, strict=True):
        expected = sum((len(x) - WINDOW) // HOP + 1
                       for x, s in zip(raw["X"], raw["subject"], strict=True) if s in subjects)
        assert len(getattr(data, split)) == expected
    assert data.info["subjects"]["test"] == (1, 2)
    default = load_smartwatch()
    assert not np.array_equal(data.test.x[:10], default.test.x[:10])


@pytest.mark.parametrize("subjects", [((1, 2), (2,), (3,)), ((1,), (11,), (3,)), ((1,), (), (3,))])
def test_bad_subject_splits_are_one_line_errors(subjects):
    with pytest.raises(KilomlError, match="subjects must be disjoint, non-empty and in 1–10"):
        load_smartwatch(subjects=subjects)


@needs_seglearn
def test_denser_training_windows():
    raw = np.load(default_path(), allow_pickle=True).item()
    default, dense = load_smartwatch(), load_dataset("smartwatch", train_hop=16)
    expected = sum((len(x) - WINDOW) // 16 + 1
                   for x, s in zip(raw["X"], raw["subject"], strict=True) if s in TRAIN_SUBJECTS)
    assert len(dense.train) == expected and len(dense.train) > 3.5 * len(default.train)
    # every fourth window is a default one; validation and test do not change
    np.testing.assert_array_equal(dense.train.x[:4 * 5:4], default.train.x[:5])
    for split in ("val", "test"):
        np.testing.assert_array_equal(getattr(dense, split).x, getattr(default, split).x)
    assert dense.info["train_hop"] == 16


@pytest.mark.parametrize("hop", [0, 129, 2.5, True])
def test_bad_train_hop_is_a_one_line_error(hop):
    with pytest.raises(KilomlError, match="--train-hop must be a whole number of samples"):
        load_smartwatch(train_hop=hop)


def test_train_hop_only_applies_to_windowed_datasets():
    with pytest.raises(KilomlError, match="--train-hop applies to datasets cut into windows"):
        load_dataset("fsdd", train_hop=16)


@needs_seglearn
def test_training_windows_from_recordings_replayed_at_other_paces():
    raw = np.load(default_path(), allow_pickle=True).item()
    default = load_smartwatch()
    paced = load_dataset("smartwatch", train_speeds=[1, 0.5, 2])
    train = [np.asarray(x, np.float32) for x, s in zip(raw["X"], raw["subject"], strict=True)
             if s in TRAIN_SUBJECTS]
    counts = {speed: sum((int((len(x) - 1) / speed) + 1 - WINDOW) // 64 + 1 for x in train)
              for speed in (1, 0.5, 2)}
    assert len(paced.train) == sum(counts.values())
    # recording by recording: first the recording as made, then at half and at double speed
    first = train[0]
    n1 = (len(first) - WINDOW) // 64 + 1
    np.testing.assert_array_equal(paced.train.x[:n1], default.train.x[:n1])
    slow = paced.train.x[n1]  # the first window at half speed: every other sample interpolated
    played = np.empty((160, 6))
    played[::2], played[1::2] = first[:80], (first[:80] + first[1:81]) / 2
    np.testing.assert_allclose(slow[:, 3:], 0.5 * played[:128, 3:], rtol=1e-6)  # turns slower
    # the accelerometer keeps its slow part (gravity) and its motion part is 0.5² as strong
    gravity = moving_average(played[:, :3], GRAVITY_WINDOW)[:128]
    np.testing.assert_allclose(slow[:, :3], gravity + 0.25 * (played[:128, :3] - gravity),
                               rtol=1e-5, atol=1e-6)
    assert paced.train.y[n1] == paced.train.y[0]
    for split in ("val", "test"):
        np.testing.assert_array_equal(getattr(paced, split).x, getattr(default, split).x)
    assert paced.info["train_speeds"] == [1.0, 0.5, 2.0]


@pytest.mark.parametrize("speeds", [[], [0.4], [1, 2.5], [1, 1], [True], ["fast"],
                                    [1.0 + 0.1 * i for i in range(9)]])
def test_bad_train_speeds_are_one_line_errors(speeds):
    with pytest.raises(KilomlError, match="--train-speeds takes 1 to 8 different speeds"):
        load_smartwatch(train_speeds=speeds)


def test_train_speeds_only_apply_to_windowed_datasets():
    with pytest.raises(KilomlError, match="--train-speeds applies to datasets cut into windows"):
        load_dataset("fsdd", train_speeds=[1, 1.25])
