"""fsdd: the official take split plus take-stratified validation, on the real archive and on a
synthetic recordings/ folder with bad files."""

import collections

import numpy as np
import pytest

from kiloml.data import load_dataset
from kiloml.data.fsdd import ARCHIVE, load_fsdd, parse_name, split_of
from kiloml.errors import KilomlError

from .conftest import shared_file, write_wav


def test_rule():
    assert parse_name("recordings/7_yweweler_12.wav") == (7, "yweweler", 12)
    assert parse_name("recordings/notes.wav") is None
    assert [split_of(t) for t in (0, 4, 5, 9, 10, 49)] == ["test", "test", "val", "val",
                                                            "train", "train"]


def test_real_archive_counts():
    shared_file(f"fsdd/{ARCHIVE}")
    data = load_dataset("fsdd", shared_file("fsdd"))
    assert data.info["speakers"] == ["george", "jackson", "lucas", "nicolas", "theo",
                                     "yweweler"]
    for split, per_digit in (("train", 240), ("val", 30), ("test", 30)):
        part = getattr(data, split)
        assert part.x.shape[1:] == (99, 32)
        assert np.bincount(part.y).tolist() == [per_digit] * 10
    assert data.info["skipped_files"] == []


def test_folder_bad_names_and_rates(tmp_path):
    rec = tmp_path / "recordings"
    for digit in range(10):
        for take in range(12):
            write_wav(rec / f"{digit}_ann_{take}.wav", rate=8000, seconds=0.3, seed=take)
    write_wav(rec / "readme.wav", rate=8000)
    write_wav(rec / "3_ann_40.wav", rate=16000)
    with pytest.raises(KilomlError, match=r"readme.wav: name is not \{digit\}_\{speaker\}_"):
        load_fsdd(tmp_path)
    data = load_fsdd(tmp_path, skip_bad_files=True)
    assert collections.Counter(r for _, r in data.info["skipped_files"]) == {
        "name is not {digit}_{speaker}_{take}.wav": 1, "sample rate 16000 Hz; expected 8000 Hz": 1}
    assert (len(data.train), len(data.val), len(data.test)) == (20, 50, 50)


def test_missing_is_a_clear_error(tmp_path):
    with pytest.raises(KilomlError, match="fsdd not found"):
        load_fsdd(tmp_path)
