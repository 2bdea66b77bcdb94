"""A handful of real recordings read straight out of the shared data archives (int16 PCM)."""

import functools
import io
import tarfile
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SHARED_DATA as DATA

ARCHIVES = {
    16000: DATA / "speech_commands" / "speech_commands_test_set_v0.02.tar.gz",
    8000: DATA / "fsdd" / "free-spoken-digit-dataset-26eb9aa.tar.gz",
}
SCAN_MEMBERS = 400


@functools.cache
def _read_clips(archive: Path, count: int) -> tuple[tuple[str, np.ndarray], ...]:
    """``count`` WAVs among the archive's first members, from as many different folders (or
    digits) as there are."""
    first, others = {}, []
    with tarfile.open(archive) as tar:
        for i, member in enumerate(tar):
            if i >= SCAN_MEMBERS or len(first) == count:
                break
            if not member.isfile() or not member.name.endswith(".wav"):
                continue
            path = Path(member.name)
            group = path.parent.name if path.parent.name != "recordings" else path.stem[:3]
            with wave.open(io.BytesIO(tar.extractfile(member).read())) as w:
                assert w.getsampwidth() == 2 and w.getnchannels() == 1
                samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            clip = (member.name, samples.astype(np.int16))
            if group in first:
                others.append(clip)
            else:
                first[group] = clip
    return tuple((list(first.values()) + others)[:count])


def real_clips(sample_rate: int, count: int = 4) -> list[tuple[str, np.ndarray]]:
    """``count`` ``(name, int16 samples)`` recordings at ``sample_rate`` (16000: Speech
    Commands v0.02 test set, 8000: Free Spoken Digit Dataset); skips the test when the archive
    is absent."""
    archive = ARCHIVES[sample_rate]
    if not archive.is_file():
        pytest.skip(f"{archive.name} not found in the shared data folder ({archive.parent})")
    return list(_read_clips(archive, count))


def extreme_signals(sample_rate: int) -> dict[str, np.ndarray]:
    """Edge cases: full-scale square waves, silence, int16 min/max, noise, very short input."""
    rng = np.random.default_rng(0)
    square = np.where(np.arange(sample_rate) % 16 < 8, 32767, -32768).astype(np.int16)
    return {
        "square-full-scale": square,
        "square-nyquist": np.tile(np.array([32767, -32768], dtype=np.int16), sample_rate // 2),
        "silence": np.zeros(sample_rate, dtype=np.int16),
        "int16-min": np.full(sample_rate // 4, -32768, dtype=np.int16),
        "int16-max": np.full(sample_rate // 4, 32767, dtype=np.int16),
        "one-lsb": np.tile(np.array([0, 1, 0, -1], dtype=np.int16), sample_rate // 8),
        "white-noise": rng.integers(-32768, 32768, size=sample_rate).astype(np.int16),
        "single-sample": np.array([-32768], dtype=np.int16),
        "shorter-than-a-frame": rng.integers(-3000, 3000, size=150).astype(np.int16),
    }
