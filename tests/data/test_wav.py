"""WAV parsing and clip length fixing: good files round-trip, bad ones name the problem."""

import struct

import numpy as np
import pytest

from kiloml.data.audio_clips import fix_length
from kiloml.data.wav import WavError, parse_wav

from .conftest import write_wav


def test_parse_round_trip(tmp_path):
    samples = np.arange(-500, 500, dtype=np.int16) * 30
    signal, rate = parse_wav(write_wav(tmp_path / "a.wav", samples, rate=8000).read_bytes())
    assert rate == 8000
    np.testing.assert_array_equal(signal, samples)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sampwidth": 1}, "8-bit PCM; 16-bit PCM expected"),
    ({"channels": 2}, "2 channels; mono expected"),
])
def test_wrong_format(tmp_path, kwargs, message):
    data = write_wav(tmp_path / "a.wav", **kwargs).read_bytes()
    with pytest.raises(WavError, match=message):
        parse_wav(data)


def test_float_wav_is_rejected(tmp_path):
    data = bytearray(write_wav(tmp_path / "a.wav").read_bytes())
    struct.pack_into("<H", data, 20, 3)  # format tag: IEEE float
    with pytest.raises(WavError, match="IEEE float audio; 16-bit PCM expected"):
        parse_wav(bytes(data))


def test_truncated_and_garbage(tmp_path):
    data = write_wav(tmp_path / "a.wav").read_bytes()
    with pytest.raises(WavError, match="truncated: the data chunk declares 16000 bytes but only "
                                       "9956 are present"):
        parse_wav(data[:10000])
    with pytest.raises(WavError, match="no data chunk"):
        parse_wav(data[:40])
    with pytest.raises(WavError, match="not a WAV file"):
        parse_wav(b"ID3 an mp3 file")


def test_fix_length_centres_and_crops():
    np.testing.assert_array_equal(fix_length(np.array([1, 2, 3]), 6), [0, 1, 2, 3, 0, 0])
    np.testing.assert_array_equal(fix_length(np.arange(7), 4), [1, 2, 3, 4])
    np.testing.assert_array_equal(fix_length(np.arange(4), 4), [0, 1, 2, 3])
