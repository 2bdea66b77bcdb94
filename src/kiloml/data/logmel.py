"""Log-mel filterbank energies: the keyword-spotting front end (float64 numpy, float32 output).

The EdgeML keyword-spotting setting, computed like ``python_speech_features.logfbank``
(version 0.6) with ``nfilt=32``:

1. PCM: int16 samples are scaled by ``1/32768``; float input is taken as is (``[-1, 1]``).
2. Pre-emphasis over the whole signal: ``y[0] = x[0]``, ``y[n] = x[n] - 0.97 x[n-1]``.
3. Framing: 25 ms frames every 10 ms, ``frames = 1 + ceil((len - win) / hop)`` (1 when the signal
   is not longer than a frame); the last frame is zero-padded (after pre-emphasis). One second
   at 16 kHz gives 99 frames, at 8 kHz also 99.
4. Window: rectangular by default, as ``logfbank`` (which has no window argument); ``"hamming"``
   (``numpy.hamming``, symmetric) is available and matches ``fbank(..., winfunc=numpy.hamming)``.
5. Power spectrum ``|rfft(frame, n_fft)|**2 / n_fft`` with ``n_fft`` = 32 ms of samples (512 at
   16 kHz, 256 at 8 kHz), zero-padding the 25 ms frame.
6. 32 triangular mel filters between 0 Hz and ``sample_rate / 2``, built exactly as
   ``python_speech_features.get_filterbanks`` (mel points rounded down to FFT bins).
7. ``log(max(energy, floor))`` with ``floor = 1e-10`` (natural log, so ``-23.03`` for silence;
   ``logfbank`` floors at machine epsilon only where an energy is exactly zero).

The integer twin of this pipeline is :mod:`kiloml.ops.logmel` (and ``kiloml_logmel.c``).
"""

import math
from dataclasses import dataclass

import numpy as np

from kiloml.errors import KilomlError

WINDOWS = ("rectangular", "hamming")


@dataclass(frozen=True)
class LogMelConfig:
    """Parameters of the front end; the defaults are the EdgeML keyword-spotting setting."""

    sample_rate: int = 16000
    n_mels: int = 32
    win_ms: float = 25.0
    hop_ms: float = 10.0
    fft_ms: float = 32.0
    pre_emphasis: float = 0.97
    window: str = "rectangular"
    floor: float = 1e-10

    def __post_init__(self):
        if self.sample_rate <= 0:
            raise KilomlError(f"sample rate must be positive, got {self.sample_rate}")
        if self.window not in WINDOWS:
            raise KilomlError(f"window must be one of {WINDOWS}, got {self.window!r}")
        if self.n_fft & (self.n_fft - 1) or self.n_fft < self.win_length:
            raise KilomlError(f"FFT size {self.n_fft} must be a power of two >= the "
                              f"{self.win_length}-sample frame")

    @property
    def win_length(self) -> int:
        """Samples per frame (400 at 16 kHz)."""
        return _round_half_up(self.win_ms * self.sample_rate / 1000)

    @property
    def hop_length(self) -> int:
        """Samples between frame starts (160 at 16 kHz)."""
        return _round_half_up(self.hop_ms * self.sample_rate / 1000)

    @property
    def n_fft(self) -> int:
        """FFT size: ``fft_ms`` of samples (512 at 16 kHz, 256 at 8 kHz)."""
        return _round_half_up(self.fft_ms * self.sample_rate / 1000)

    @property
    def n_bins(self) -> int:
        """Bins of the one-sided spectrum, ``n_fft / 2 + 1``."""
        return self.n_fft // 2 + 1

    def num_frames(self, n_samples: int) -> int:
        """Frames produced from ``n_samples`` samples (``logfbank``'s rule)."""
        if n_samples <= self.win_length:
            return 1
        return 1 + math.ceil((n_samples - self.win_length) / self.hop_length)


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale, ``2595 log10(1 + hz / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(config: LogMelConfig) -> np.ndarray:
    """Triangular mel filters ``[n_mels, n_bins]`` (float64, peak 1) from 0 Hz to Nyquist."""
    mel_points = np.linspace(0.0, hz_to_mel(config.sample_rate / 2), config.n_mels + 2)
    bins = np.floor((config.n_fft + 1) * mel_to_hz(mel_points) / config.sample_rate)
    bins = bins.astype(np.int64)
    bank = np.zeros((config.n_mels, config.n_bins))
    for j in range(config.n_mels):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        k = np.arange(lo, mid)
        bank[j, lo:mid] = (k - lo) / (mid - lo)
        k = np.arange(mid, hi)
        bank[j, mid:hi] = (hi - k) / (hi - mid)
    return bank


def window_function(config: LogMelConfig) -> np.ndarray:
    """The analysis window ``[win_length]`` (float64)."""
    if config.window == "hamming":
        return np.hamming(config.win_length)
    return np.ones(config.win_length)


def pcm_to_float(signal: np.ndarray) -> np.ndarray:
    """1-D int16 PCM (scaled by ``1/32768``) or float samples → float64 array."""
    signal = np.asarray(signal)
    if signal.ndim != 1 or signal.size == 0:
        raise KilomlError(f"expected a non-empty 1-D signal, got shape {signal.shape}")
    if signal.dtype == np.int16:
        return signal.astype(np.float64) / 32768.0
    if not np.issubdtype(signal.dtype, np.floating):
        raise KilomlError(f"expected int16 PCM or float samples, got {signal.dtype}")
    return signal.astype(np.float64)


def frames(signal: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """Pre-emphasised, zero-padded, windowed frames ``[num_frames, win_length]`` (float64)."""
    x = pcm_to_float(signal)
    y = np.concatenate([x[:1], x[1:] - config.pre_emphasis * x[:-1]])
    n, win, hop = config.num_frames(len(y)), config.win_length, config.hop_length
    padded = np.zeros((n - 1) * hop + win)
    padded[: len(y)] = y
    index = np.arange(win)[None, :] + hop * np.arange(n)[:, None]
    return padded[index] * window_function(config)


def mel_energies(signal: np.ndarray, config: LogMelConfig) -> np.ndarray:
    """Mel filterbank energies ``[num_frames, n_mels]`` (float64, before the log)."""
    spectrum = np.fft.rfft(frames(signal, config), config.n_fft)
    power = (spectrum.real**2 + spectrum.imag**2) / config.n_fft
    return power @ mel_filterbank(config).T


def log_mel(signal: np.ndarray, sample_rate: int = 16000,
            config: LogMelConfig | None = None) -> np.ndarray:
    """Log-mel energies ``[num_frames, 32]`` float32 (natural log) of a 1-D int16 or float signal.

    ``config`` overrides the defaults; its ``sample_rate`` must equal ``sample_rate``.
    """
    if config is None:
        config = LogMelConfig(sample_rate=sample_rate)
    elif config.sample_rate != sample_rate:
        raise KilomlError(f"config is for {config.sample_rate} Hz, signal is {sample_rate} Hz")
    energies = mel_energies(signal, config)
    return np.log(np.maximum(energies, config.floor)).astype(np.float32)
