"""The integer log-mel front end (the specification of kiloml_logmel.c) against the float one."""

import math

import numpy as np
import pytest

from kiloml.data.logmel import LogMelConfig, log_mel, mel_filterbank
from kiloml.deploy.codegen import library_dir
from kiloml.deploy.logmel_tables import logmel_tables_header
from kiloml.ops.logmel import frame_signal, log2_q16, log_mel_q10, make_tables

from ..audio_clips import extreme_signals, real_clips

CONFIGS = [LogMelConfig(16000), LogMelConfig(8000), LogMelConfig(16000, window="hamming")]


def _error(x: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """|integer - float| in nats, per feature."""
    q = log_mel_q10(x, make_tables(config))
    assert q.dtype == np.int16
    return np.abs(q / 1024.0 - log_mel(x, config.sample_rate, config))


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.sample_rate}-{c.window}")
def test_integer_front_end_is_within_two_thousandths_of_a_nat_on_real_clips(config):
    """Measured on these clips: max 0.00093 nats (Q10 rounding 0.00049, log2 table, FFT
    rounding in bands far below the frame's peak); benchmarks/frontend_accuracy.py: max
    0.0016, mean 0.00025 over 100 clips."""
    for name, x in real_clips(config.sample_rate):
        error = _error(x, config)
        assert error.max() < 2e-3 and error.mean() < 4e-4, name


@pytest.mark.parametrize("name", sorted(extreme_signals(16000)))
def test_integer_front_end_on_extreme_signals(name):
    """Full scale, silence, 1-LSB signals (measured: max 0.00064 nats)."""
    assert _error(extreme_signals(16000)[name], LogMelConfig()).max() < 1e-3


def test_silence_is_exactly_the_floor_and_the_floor_matches_the_float_one():
    tables = make_tables(LogMelConfig())
    assert tables.floor_q10 == round(1024 * math.log(1e-10)) == -23578
    assert np.all(log_mel_q10(np.zeros(2000, dtype=np.int16), tables) == -23578)


def test_log2_q16_error_is_below_2e_4():
    tables = make_tables(LogMelConfig())
    x = np.unique(np.round(np.geomspace(1, 2.0**61, 20001)).astype(np.int64))
    assert np.abs(log2_q16(x, tables) / 65536 - np.log2(x.astype(np.float64))).max() < 2e-4


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.sample_rate}-{c.window}")
def test_tables_store_every_filter_weight(config):
    tables = make_tables(config)
    dense = np.zeros((config.n_mels + 1, config.n_bins), dtype=np.int64)
    for i, f in enumerate(tables.mel_filter):
        dense[f:f + 2, tables.first_bin + i] = tables.mel_weight[i]
    assert np.array_equal(dense[:-1], np.round(mel_filterbank(config) * 32768))
    assert not dense[-1].any()
    assert tables.sin_q30[-1] == 1 << 30 and tables.sin_q30[0] == 0


def test_framing_matches_the_float_front_end():
    x = np.arange(1, 1001, dtype=np.int16)
    frames, previous, valid = frame_signal(x, LogMelConfig())
    assert frames.shape == (5, 400)
    assert previous.tolist() == [0, 160, 320, 480, 640]
    assert valid.tolist() == [400, 400, 400, 400, 360]
    assert frames[-1, 359] == 1000 and frames[-1, 360] == 0


def test_shipped_tables_header_is_the_generated_one():
    shipped = (library_dir() / "kiloml_logmel_tables.h").read_text()
    assert shipped == logmel_tables_header(LogMelConfig())
