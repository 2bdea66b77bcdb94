"""The user's WAV folder: labels from sub-folders, the split rule, and bad-data errors."""

import numpy as np
import pytest

from kiloml.data import load_dataset
from kiloml.data.speech_commands import speaker_of, split_of
from kiloml.data.wav_folder import load_wav_folder
from kiloml.errors import KilomlError

from .conftest import write_wav


def make_folder(root, n=40, rate=16000):
    for i in range(n):
        write_wav(root / ("cat" if i % 2 else "dog") / f"{i:04x}beef_nohash_{i % 3}.wav",
                  rate=rate, seconds=0.2, seed=i)
    return root


def test_loads_with_sorted_labels_and_hash_split(tmp_path):
    root = make_folder(tmp_path / "pets")
    data = load_dataset(str(root))
    assert data.name == "pets" and data.class_names == ["cat", "dog"]
    assert data.train.x.shape[1:] == (99, 32) and data.info["sample_rate"] == 16000
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.wav"))
    expected = [split_of(speaker_of(n)) for n in names]
    assert [len(data.train), len(data.val), len(data.test)] == [
        expected.count(s) for s in ("train", "val", "test")]


def test_8khz_folder(tmp_path):
    data = load_wav_folder(make_folder(tmp_path / "p", rate=8000))
    assert data.info["sample_rate"] == 8000 and data.test.x.shape[1:] == (99, 32)


def test_bad_data(tmp_path):
    with pytest.raises(KilomlError, match="empty folder"):
        load_wav_folder(tmp_path)
    root = make_folder(tmp_path / "p")
    (root / "bird").mkdir()
    with pytest.raises(KilomlError, match="bird: empty label folder"):
        load_wav_folder(root)
    (root / "bird").rmdir()
    write_wav(root / "cat" / "9999beef_nohash_0.wav", sampwidth=1)
    write_wav(root / "dog" / "slow.wav", rate=11025)
    with pytest.raises(KilomlError, match="cat/9999beef_nohash_0.wav: 8-bit PCM; 16-bit PCM "
                                          "expected \\(use --skip-bad-files"):
        load_wav_folder(root)
    data = load_wav_folder(root, skip_bad_files=True)
    assert sorted(r for _, r in data.info["skipped_files"]) == [
        "8-bit PCM; 16-bit PCM expected", "sample rate 11025 Hz; expected 16000 Hz"]
    assert np.sum([len(data.train), len(data.val), len(data.test)]) == 40


def test_too_few_files(tmp_path):
    write_wav(tmp_path / "one" / "a.wav")
    with pytest.raises(KilomlError, match="1 clips are too few to fill the"):
        load_wav_folder(tmp_path)


@pytest.mark.parametrize("rate", [44100, 100])
def test_a_rate_the_front_end_cannot_take_names_folder_file_and_rate(rate, tmp_path):
    root = make_folder(tmp_path / "pets", n=4, rate=rate)
    with pytest.raises(KilomlError) as e:
        load_wav_folder(root)
    message = str(e.value)
    assert message.startswith(f"{root}: the WAV files are at {rate:,} Hz (e.g. cat/")
    assert "resample them to 16,000 or 8,000 Hz" in message
