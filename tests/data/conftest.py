"""Helpers for the data tests: where the real datasets are, and tiny synthetic WAV files."""

import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA


def shared_file(relative: str) -> Path:
    """A file of the shared real datasets, or skip the test with the reason."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"real data not present: {path}")
    return path


def write_wav(path: Path, samples=None, rate: int = 16000, sampwidth: int = 2,
              channels: int = 1, seconds: float = 0.5, seed: int = 0) -> Path:
    """A small PCM WAV file (noise unless ``samples`` is given)."""
    if samples is None:
        rng = np.random.default_rng(seed)
        samples = (rng.normal(size=int(rate * seconds) * channels) * 3000).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(samples)
    if sampwidth == 1:
        data = (data // 256 + 128).astype(np.uint8)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(sampwidth)
        w.setframerate(rate)
        w.writeframes(data.tobytes())
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Every test gets its own feature cache and no KILOML_DATA."""
    monkeypatch.setenv("KILOML_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("KILOML_DATA", raising=False)
