"""The C log-mel front end computes exactly what the integer simulator does, on the host (with
address and undefined-behaviour sanitizers) and on emulated Cortex-M4/M3."""

import numpy as np
import pytest

from kiloml.data.logmel import LogMelConfig
from kiloml.deploy.logmel_verify import logmel_build, run_logmel
from kiloml.ops.logmel import log_mel_q10, make_tables

from ..audio_clips import extreme_signals, real_clips

CONFIGS = {"16k": LogMelConfig(16000), "8k": LogMelConfig(8000),
           "16k-hamming": LogMelConfig(16000, window="hamming")}


@pytest.fixture(scope="module")
def host_builds(tmp_path_factory) -> dict:
    """Lazily built sanitized host front ends, one per configuration name."""
    root = tmp_path_factory.mktemp("logmel_host")
    built = {}

    def build(name: str):
        if name not in built:
            built[name] = logmel_build(root / name, "host", CONFIGS[name], "sanitize",
                                       max_frames=400)
        return built[name]

    return build


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_host_equals_simulator_on_real_clips(name, host_builds, require_gcc):
    config = CONFIGS[name]
    tables = make_tables(config)
    clips = real_clips(config.sample_rate)
    # a poisoned work buffer shows that no stale state is read
    features, _ = run_logmel(host_builds(name), [x for _, x in clips], poison=0xA5)
    for (clip, x), got in zip(clips, features, strict=True):
        assert np.array_equal(got, log_mel_q10(x, tables)), clip


@pytest.mark.parametrize("name", ["16k", "8k"])
def test_host_equals_simulator_on_extreme_signals(name, host_builds, require_gcc):
    config = CONFIGS[name]
    tables = make_tables(config)
    signals = extreme_signals(config.sample_rate)
    features, _ = run_logmel(host_builds(name), list(signals.values()), poison=0xFF)
    for (signal, x), got in zip(signals.items(), features, strict=True):
        assert np.array_equal(got, log_mel_q10(x, tables)), signal


@pytest.mark.parametrize("target,name", [("cortex-m4", "16k"), ("cortex-m4", "8k"),
                                         ("cortex-m3", "16k")])
def test_cortex_m_equals_simulator(target, name, tmp_path, require_cortex_m):
    config = CONFIGS[name]
    tables = make_tables(config)
    extremes = extreme_signals(config.sample_rate)
    signals = [x for _, x in real_clips(config.sample_rate, count=2)] + [
        extremes[k][:config.sample_rate // 4] for k in ("square-full-scale", "int16-min",
                                                        "white-noise", "single-sample")]
    build = logmel_build(tmp_path, target, config)
    features, counts = run_logmel(build, signals, count_instructions=target == "cortex-m4")
    for got, x in zip(features, signals, strict=True):
        assert np.array_equal(got, log_mel_q10(x, tables))
    if counts is not None:
        assert len(counts) == len(signals)
        per_frame = [c / config.num_frames(len(x)) for c, x in zip(counts, signals, strict=True)]
        assert 10_000 < min(per_frame) and max(per_frame) < 200_000
