"""speech-commands-12: the by-speaker split rule on the real archive, the whole pipeline on a
tiny synthetic archive (features, cache, bad files)."""

import collections
import io
import tarfile

import numpy as np
import pytest

from kiloml.data import audio_clips, load_dataset, speech_commands
from kiloml.data.archive import archive_members, sha256_file
from kiloml.data.speech_commands import (
    ARCHIVE,
    LABELS,
    load_speech_commands,
    speaker_of,
    split_clips,
    split_of,
)
from kiloml.errors import KilomlError

from .conftest import shared_file, write_wav

# measured on the real archive; also in speech_commands' docstring and docs/datasets.md
EXPECTED = {"train": [335, 332, 342, 326, 334, 339, 332, 325, 322, 317, 319, 322],
            "val": [42, 42, 27, 36, 48, 27, 36, 39, 30, 40, 43, 31],
            "test": [31, 34, 50, 43, 43, 40, 44, 32, 44, 45, 49, 49]}


def test_speaker_and_rule():
    assert speaker_of("yes/0a7c2a8d_nohash_3.wav") == "0a7c2a8d"
    assert speaker_of("_unknown_/wow_a2473d62_nohash_1.wav.wav") == "a2473d62"
    assert speaker_of("_silence_/17.wav") == "_silence_/17.wav"
    places = collections.Counter(split_of(f"{i:08x}") for i in range(2000))
    assert 150 < places["val"] < 250 and 150 < places["test"] < 250  # ~10% each
    assert split_of("0a7c2a8d") == split_of("0a7c2a8d")


def test_real_split_is_by_speaker_with_documented_counts():
    archive = shared_file(f"speech_commands/{ARCHIVE}")
    names = [n for n, _ in archive_members(archive) if n.split("/", 1)[0] in LABELS]
    assert len(names) == 4890
    parts = split_clips(names)
    assert parts.keys() == EXPECTED.keys()
    speakers = {s: {speaker_of(names[i]) for i in idx} for s, idx in parts.items()}
    assert not speakers["train"] & speakers["val"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["val"] & speakers["test"]
    for split, idx in parts.items():
        counts = collections.Counter(names[i].split("/", 1)[0] for i in idx)
        assert [counts[label] for label in LABELS] == EXPECTED[split]
    np.testing.assert_array_equal(split_clips(names[::-1])["test"],
                                  len(names) - 1 - parts["test"][::-1])  # order-independent


def synthetic_archive(folder, n_speakers=24):
    """A Speech-Commands-layout tar.gz with every label and 24 speakers."""
    files = {}
    for i in range(n_speakers):
        speaker = f"{i * 7919:08x}"
        label = LABELS[2 + i % 10]
        files[f"./{label}/{speaker}_nohash_0.wav"] = (0.4, i)
        files[f"./_unknown_/bed_{speaker}_nohash_0.wav.wav"] = (1.3, i + 100)
        files[f"./_silence_/{i}.wav"] = (1.0, i + 200)
    archive = folder / ARCHIVE
    with tarfile.open(archive, "w:gz") as tar:
        for name, (seconds, seed) in files.items():
            data = write_wav(folder / "tmp.wav", seconds=seconds, seed=seed).read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_synthetic_archive_end_to_end_and_cached(tmp_path, monkeypatch):
    archive = synthetic_archive(tmp_path)
    monkeypatch.setattr(speech_commands, "SHA256", sha256_file(archive))
    data = load_dataset("speech-commands-12", tmp_path)
    assert data.class_names == list(LABELS)
    assert data.train.x.shape[1:] == (99, 32) and data.train.x.dtype == np.float32
    assert len(data.train) + len(data.val) + len(data.test) == 72
    assert data.info["skipped_files"] == []

    def fail(*args):
        raise AssertionError("features recomputed instead of read from the cache")

    monkeypatch.setattr(speech_commands, "clip_features", fail)
    again = load_speech_commands(archive)
    np.testing.assert_array_equal(again.test.x, data.test.x)
    np.testing.assert_array_equal(again.val.y, data.val.y)


def test_extracted_folder_with_bad_files(tmp_path):
    root = tmp_path / "sc"
    for i in range(30):
        write_wav(root / LABELS[2 + i % 10] / f"{i * 7919:08x}_nohash_0.wav", seed=i)
    write_wav(root / "yes" / "00000bad_nohash_0.wav", rate=8000)
    cut = root / "no" / "0000cut0_nohash_0.wav"
    cut.write_bytes(write_wav(tmp_path / "x.wav").read_bytes()[:3000])
    with pytest.raises(KilomlError, match=r"no/0000cut0_nohash_0.wav: truncated.*--skip-bad"):
        load_speech_commands(root)
    data = load_speech_commands(root, skip_bad_files=True)
    reasons = dict(data.info["skipped_files"])
    assert reasons == {f"{root}:no/0000cut0_nohash_0.wav": "truncated: the data chunk declares "
                       "16000 bytes but only 2956 are present",
                       f"{root}:yes/00000bad_nohash_0.wav": "sample rate 8000 Hz; expected "
                       "16000 Hz"}
    assert len(data.train) + len(data.val) + len(data.test) == 30


def test_feature_fingerprint_is_stable():
    assert audio_clips.front_end_fingerprint(16000) == audio_clips.front_end_fingerprint(16000)
    assert audio_clips.front_end_fingerprint(8000) != audio_clips.front_end_fingerprint(16000)
