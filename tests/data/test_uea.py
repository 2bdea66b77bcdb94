"""The .ts reader (round trip, malformed lines) and the UEA problems' splits and padding."""

import numpy as np
import pytest

from kiloml.data import load_dataset
from kiloml.data.bad_files import BadFiles
from kiloml.data.ts_format import TsData, read_ts, write_ts
from kiloml.data.uea import (
    load_basic_motions,
    load_japanese_vowels,
    pad_front,
    sktime_data_dir,
    stratified_val,
    ts_pair,
)
from kiloml.errors import KilomlError

needs_sktime = pytest.mark.skipif(sktime_data_dir() is None,
                                  reason="sktime==1.2.0 is not installed (make setup does)")

HEADER = "# a comment\n@problemName Toy\n@timeStamps false\n@dimensions 2\n" \
         "@classLabel true up down\n@data\n"


def toy(n=10, seed=0, lengths=(3, 5)) -> TsData:
    rng = np.random.default_rng(seed)
    series = [rng.normal(size=(lengths[i % len(lengths)], 2)) for i in range(n)]
    return TsData("Toy", ["up", "down"], series, ["up" if i % 2 else "down" for i in range(n)])


def test_round_trip(tmp_path):
    data = toy()
    write_ts(tmp_path / "Toy_TRAIN.ts", data)
    back = read_ts(tmp_path / "Toy_TRAIN.ts")
    assert (back.problem_name, back.class_labels, back.labels) == ("Toy", ["up", "down"],
                                                                   data.labels)
    for a, b in zip(back.series, data.series, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("line", "reason"), [
    ("1,2,3:4,5,6:left", "class label 'left' is not declared in @classLabel"),
    ("1,2,3:up", "1 dimensions, expected 2"),
    ("1,2,x3:4,5,6:up", "dimension 0: 'x3' is not a number"),
    ("1,2,3:4,5:up", "dimensions of different lengths \\[2, 3\\]"),
    ("1,?,3:4,5,6:up", "dimension 0 has missing values"),
    ("1,2,3::up", "dimension 1 is empty"),
])
def test_malformed_line(tmp_path, line, reason):
    path = tmp_path / "bad.ts"
    path.write_text(HEADER + "1,2,3:4,5,6:up\n" + line + "\n7,8:9,10:down\n")
    with pytest.raises(KilomlError, match=f"bad.ts:8: malformed line \\({reason}"):
        read_ts(path)
    bad = BadFiles(skip=True)
    data = read_ts(path, bad)
    assert data.labels == ["up", "down"] and len(bad.skipped) == 1
    assert bad.skipped[0][0] == f"{path}:8"


def test_header_errors(tmp_path):
    path = tmp_path / "h.ts"
    path.write_text("@problemName x\n@classLabel true a\n1,2:a\n")
    with pytest.raises(KilomlError, match="h.ts:3: expected a @ header line before @data"):
        read_ts(path)
    path.write_text("@problemName x\n@timeStamps true\n@classLabel true a\n@data\n")
    with pytest.raises(KilomlError, match="time-stamped series are not supported"):
        read_ts(path)
    path.write_text("@problemName x\n@classLabel false\n@data\n1,2:3\n")
    with pytest.raises(KilomlError, match="need '@classLabel true <labels...>'"):
        read_ts(path)


def test_padding_and_stratified_val():
    series = [np.array([[1.0], [2.0]]), np.array([[3.0], [4.0], [5.0], [6.0]])]
    np.testing.assert_array_equal(pad_front(series, 4)[:, :, 0], [[1, 1, 1, 2], [3, 4, 5, 6]])
    y = np.repeat(np.arange(3), [10, 5, 1])
    val = stratified_val(y)
    assert np.bincount(y[val], minlength=3).tolist() == [2, 1, 0]
    np.testing.assert_array_equal(val, stratified_val(y))


def test_user_pair_by_file_or_stem(tmp_path):
    write_ts(tmp_path / "Toy_TRAIN.ts", toy(20, 0))
    write_ts(tmp_path / "Toy_TEST.ts", toy(6, 1, lengths=(2, 6)))
    assert ts_pair(tmp_path / "Toy_TEST.ts") == ts_pair(tmp_path / "Toy")
    for arg in ("Toy_TRAIN.ts", "Toy_TEST.ts", "Toy"):
        data = load_dataset(str(tmp_path / arg))
        assert data.train.x.shape == (16, 6, 2) and (len(data.val), len(data.test)) == (4, 6)
    assert data.info["series_length"] == [2, 6]
    (tmp_path / "Toy_TEST.ts").unlink()
    with pytest.raises(KilomlError, match="Toy_TEST.ts: file not found"):
        load_dataset(str(tmp_path / "Toy_TRAIN.ts"))


@needs_sktime
def test_basic_motions():
    data = load_dataset("basic-motions")
    assert data.train.x.shape == (32, 100, 6)
    assert data.class_names == ["Standing", "Running", "Walking", "Badminton"]
    for split, per_class in (("train", 8), ("val", 2), ("test", 10)):
        assert np.bincount(getattr(data, split).y).tolist() == [per_class] * 4
    again = load_basic_motions()
    np.testing.assert_array_equal(again.val.x, data.val.x)
    assert data.info["vector_channels"] == [[0, 1, 2], [3, 4, 5]]  # accelerometer, gyroscope
    as_user_files = load_dataset(str(sktime_data_dir() / "BasicMotions" / "BasicMotions"))
    assert "vector_channels" not in as_user_files.info  # a user's .ts pair declares nothing


@needs_sktime
def test_japanese_vowels_padded():
    data = load_japanese_vowels(sktime_data_dir())
    assert data.train.x.shape == (216, 29, 12) and data.info["series_length"] == [7, 29]
    assert np.bincount(data.val.y).tolist() == [6] * 9
    assert np.bincount(data.test.y).tolist() == [31, 35, 88, 44, 29, 24, 40, 50, 29]
    first = read_ts(sktime_data_dir() / "JapaneseVowels" / "JapaneseVowels_TEST.ts").series[0]
    n = len(first)
    np.testing.assert_allclose(data.test.x[0, -n:], first, rtol=1e-6)
    np.testing.assert_allclose(data.test.x[0, :-n], np.broadcast_to(first[0], (29 - n, 12)),
                               rtol=1e-6)
