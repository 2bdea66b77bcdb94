"""WAV clips → fixed one-second clips → log-mel features ``[N, frames, 32]``, with a feature
cache.

Every clip is fixed to ``CLIP_SECONDS`` (1 s) before the front end: a shorter clip is centred
and zero-padded on both sides (the odd sample, if any, goes to the end); a longer one is
cropped centrally (the same number of samples dropped from each end, the odd one from the end).
Features come from ``kiloml.data.logmel.log_mel``. Features computed from a checksum-verified
archive are cached as ``.npy`` files in the cache directory, keyed by the archive's SHA-256
and a fingerprint of the front end's output, so a changed front end recomputes them.
"""

import hashlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from kiloml.data.bad_files import BadFiles
from kiloml.data.paths import cache_dir
from kiloml.data.wav import WavError, parse_wav

CLIP_SECONDS = 1.0


def fix_length(signal: np.ndarray, length: int) -> np.ndarray:
    """``signal`` ``[n]`` centred in ``length`` samples: zero-padded or cropped on both sides."""
    n = len(signal)
    if n >= length:
        start = (n - length) // 2
        return signal[start:start + length]
    out = np.zeros(length, dtype=signal.dtype)
    start = (length - n) // 2
    out[start:start + n] = signal
    return out


def decode_clips(members: Iterable[tuple[str, bytes]], sample_rate: int | None,
                 bad: BadFiles, where: str) -> tuple[list[str], list[np.ndarray], int | None]:
    """Parse WAV ``(name, bytes)`` members into int16 signals of one sample rate.

    ``sample_rate=None`` takes the rate most files have. Unreadable files and files of another
    rate go to ``bad`` named ``where:name``. Returns names, signals and the sample rate.
    """
    parsed: list[tuple[str, np.ndarray, int]] = []
    for name, data in members:
        try:
            signal, rate = parse_wav(data)
        except WavError as e:
            bad.report(f"{where}:{name}", str(e))
            continue
        parsed.append((name, signal, rate))
    if sample_rate is None and parsed:
        rates = [r for _, _, r in parsed]
        sample_rate = max(sorted(set(rates)), key=rates.count)
    names, signals = [], []
    for name, signal, rate in parsed:
        if rate != sample_rate:
            bad.report(f"{where}:{name}", f"sample rate {rate} Hz; expected {sample_rate} Hz")
            continue
        names.append(name)
        signals.append(signal)
    return names, signals, sample_rate


def clip_features(signals: list[np.ndarray], sample_rate: int) -> np.ndarray:
    """Log-mel features ``[N, frames, 32]`` float32 of int16 signals fixed to one second."""
    from kiloml.data.logmel import log_mel

    length = int(round(CLIP_SECONDS * sample_rate))
    if not signals:
        return np.zeros((0, 0, 32), dtype=np.float32)
    return np.stack([log_mel(fix_length(s, length), sample_rate) for s in signals]
                    ).astype(np.float32, copy=False)


def front_end_fingerprint(sample_rate: int) -> str:
    """A short hash of the front end's output on a fixed chirp (changes when the front end
    does)."""
    from kiloml.data.logmel import log_mel

    t = np.arange(sample_rate) / sample_rate
    chirp = (8000 * np.sin(2 * np.pi * (100 + 1500 * t) * t)).astype(np.int16)
    features = np.ascontiguousarray(log_mel(chirp, sample_rate), dtype=np.float32)
    return hashlib.sha256(features.tobytes()).hexdigest()[:12]


def cached_arrays(key: str, names: tuple[str, ...],
                  compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays ``names`` loaded from ``cache_dir()/key/NAME.npy``, or computed, saved and
    returned (each file written to a temporary name, then renamed)."""
    folder = cache_dir() / key
    files = {n: folder / f"{n}.npy" for n in names}
    if all(f.is_file() for f in files.values()):
        try:
            return {n: np.load(f, allow_pickle=False) for n, f in files.items()}
        except (OSError, ValueError):
            pass  # an unreadable cache entry is recomputed
    arrays = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for n, f in files.items():
            tmp = Path(f"{f}.{os.getpid()}.tmp")
            with open(tmp, "wb") as out:
                np.save(out, arrays[n], allow_pickle=False)
            tmp.replace(f)
    except OSError:
        pass  # an unwritable cache only costs time
    return arrays
