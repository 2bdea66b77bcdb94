"""The float log-mel front end: framing, shapes, and agreement with python_speech_features."""

import numpy as np
import pytest

from kiloml.data.logmel import LogMelConfig, log_mel, mel_filterbank
from kiloml.errors import KilomlError

from ..audio_clips import real_clips

FLOOR_LOG = float(np.log(1e-10))


@pytest.mark.parametrize("sample_rate", [16000, 8000])
def test_one_second_gives_99_frames_of_32(sample_rate):
    x = np.random.default_rng(0).integers(-2000, 2000, size=sample_rate).astype(np.int16)
    features = log_mel(x, sample_rate)
    assert features.shape == (99, 32) and features.dtype == np.float32
    config = LogMelConfig(sample_rate)
    assert (config.win_length, config.hop_length, config.n_fft) == (
        (400, 160, 512) if sample_rate == 16000 else (200, 80, 256))


def test_framing_follows_logfbank():
    config = LogMelConfig()
    assert [config.num_frames(n) for n in (1, 400, 401, 560, 561, 16000)] == [1, 1, 2, 2, 3, 99]
    assert log_mel(np.ones(10, dtype=np.float32), 16000).shape == (1, 32)


def test_int16_is_scaled_to_unit_range_and_silence_is_the_floor():
    x = np.random.default_rng(1).integers(-32768, 32768, size=4000).astype(np.int16)
    assert np.allclose(log_mel(x, 16000), log_mel(x / 32768.0, 16000), atol=1e-6)
    assert np.all(log_mel(np.zeros(1000, dtype=np.int16), 16000) == np.float32(FLOOR_LOG))


def test_a_tone_lights_up_the_filter_around_its_frequency():
    t = np.arange(16000) / 16000
    features = log_mel(0.5 * np.sin(2 * np.pi * 1000 * t), 16000)
    config = LogMelConfig()
    bank = mel_filterbank(config)
    tone_bin = round(1000 * config.n_fft / 16000)
    assert features[50].argmax() in np.flatnonzero(bank[:, tone_bin])


def test_bad_arguments_are_errors():
    with pytest.raises(KilomlError, match="window"):
        LogMelConfig(window="hann")
    with pytest.raises(KilomlError, match="8000 Hz"):
        log_mel(np.zeros(100, dtype=np.int16), 16000, LogMelConfig(8000))
    with pytest.raises(KilomlError, match="int16 PCM or float"):
        log_mel(np.zeros(100, dtype=np.int32), 16000)
    with pytest.raises(KilomlError, match="1-D"):
        log_mel(np.zeros((2, 100), dtype=np.int16), 16000)


@pytest.mark.parametrize("sample_rate", [16000, 8000])
def test_filterbank_equals_python_speech_features(sample_rate):
    psf = pytest.importorskip("python_speech_features")
    config = LogMelConfig(sample_rate)
    reference = psf.get_filterbanks(32, config.n_fft, sample_rate)
    assert np.array_equal(mel_filterbank(config), reference)


@pytest.mark.parametrize("sample_rate", [16000, 8000])
@pytest.mark.parametrize("window", ["rectangular", "hamming"])
def test_close_to_python_speech_features_on_real_clips(sample_rate, window):
    """Measured: max |difference| 9.5e-7 (float32 rounding of the output) on these clips."""
    psf = pytest.importorskip("python_speech_features")
    config = LogMelConfig(sample_rate, window=window)
    for name, x in real_clips(sample_rate):
        ours = log_mel(x, sample_rate, config)
        if window == "rectangular":
            reference = psf.logfbank(x / 32768.0, sample_rate, nfilt=32, nfft=config.n_fft)
        else:
            energies, _ = psf.fbank(x / 32768.0, sample_rate, nfilt=32, nfft=config.n_fft,
                                    winfunc=np.hamming)
            reference = np.log(energies)
        assert ours.shape == reference.shape, name
        above_floor = reference > FLOOR_LOG
        assert above_floor.mean() > 0.5, name
        assert np.abs(ours - reference)[above_floor].max() < 2e-6, name
        assert np.all(ours[~above_floor] == np.float32(FLOOR_LOG)), name
