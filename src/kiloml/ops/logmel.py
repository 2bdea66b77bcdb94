"""Integer log-mel front end: int16 PCM → int16 log-mel energies in Q10 (natural log).

The numpy twin of ``kiloml_logmel.c``, identical integer for integer; its float counterpart is
:mod:`kiloml.data.logmel` (same framing, pre-emphasis, window, FFT size, filters and floor).
One frame of ``W`` samples (``W`` = 400 at 16 kHz; ``N`` = 512-point FFT), all arithmetic in
integers:

1. **Pre-emphasis** (Q15 coefficient ``c`` = round(0.97 · 2^15) = 31785):
   ``e[n] = 32768 x[n] - c x[n-1]`` (int32, exact: ``|e| < 2^31``); ``x[-1]`` is the sample
   before the frame (0 at the start of the signal), ``e = 0`` past the end of the signal.
2. **Window** (Q30, symmetric, so only the first ``ceil(W/2)`` values are stored; the
   rectangular window is the constant ``2^30`` and has no table): ``v = e · w`` (int64,
   ``|v| < 2^61``), so ``v = y · w · 2^60`` for the float samples ``y``. (A Q15 window was
   measured to add errors up to 0.012 nats in bands 60 dB below the frame's peak.)
3. **Block floating point**: ``s = bitlength(max |v|) - 29`` and ``u = round(v · 2^-s)``
   (rounding half up; exact left shift when ``s < 0``), so ``|u| <= 2^29``. An all-zero frame
   outputs the floor.
4. **Real FFT** of ``N`` points as an ``N/2``-point complex radix-2 decimation-in-time FFT of
   ``z[n] = u[2n] + j u[2n+1]`` (bit-reversed input order), twiddles
   ``round(2^30 · sin(2πk/N))`` for ``k <= N/4`` (a quarter-wave table), each butterfly
   ``a, b -> round((a ± round(b·W · 2^-30)) / 2)``; then the split
   ``X[k] = round(((A + B) - j W^k (A - B)) / 4)`` with ``A = Z[k]``, ``B = conj(Z[N/2 - k])``,
   ``W^k = exp(-2πjk/N)``. Every stage halves, so ``X = FFT(u) / N`` and every value stays
   below ``2^30.5`` in magnitude (int32 data, int32 × int32 → int64 products).
5. **Power** ``P[k] = X_re^2 + X_im^2`` (int64 < 2^59), then ``round(P · 2^-12)``.
6. **Mel**: each FFT bin feeds at most two adjacent filters; weights are uint16 Q15 (32768 = 1.0)
   stored per bin (``first filter, weight for it, weight for the next``) over the bins that have
   one; sums in int64 (< 2^61).
7. **Log**: ``log2`` in Q16 from the leading-one position and a 33-entry table of
   ``log2(1 + i/32)`` (Q16) with linear interpolation on the next 16 bits; the block exponent and
   the constant scale are added (``log2 E = log2 mel - 123 + log2 N + 2s``), the result is
   multiplied by ``ln 2`` (Q30) and rounded to Q10, then floored at ``round(1024 · ln(floor))``
   (-23578 for ``floor = 1e-10``) and saturated to int16.

The features are ``ln(max(E, floor))`` in Q10 (resolution 0.001 nats), directly comparable with
``round(1024 · log_mel(...))`` of the float front end.
"""

import math
from dataclasses import dataclass

import numpy as np

from kiloml.data.logmel import LogMelConfig, mel_filterbank, window_function
from kiloml.errors import KilomlError
from kiloml.ops.fixed import saturate, shift_round

OUT_FRAC_BITS = 10
NORM_BITS = 29  # |u| <= 2^29 after block normalisation
TWIDDLE_FRAC_BITS = 30
WINDOW_FRAC_BITS = 30
POWER_SHIFT = 12
LOG2_TABLE_BITS = 5  # 2^5 + 1 entries
LOG2_FRAC_BITS = 16
LN2_Q30 = round(math.log(2) * (1 << 30))
#: ``log2 E = log2 mel + 2 s - LOG2_OFFSET + log2 N``: 120 (Q60 samples squared) - 12 (power
#: shift) + 15 (Q15 mel weights).
LOG2_OFFSET = 2 * (30 + WINDOW_FRAC_BITS) - POWER_SHIFT + 15


@dataclass(frozen=True)
class LogMelTables:
    """Every constant of the integer front end for one :class:`LogMelConfig`."""

    config: LogMelConfig
    pre_emphasis_q15: int
    window_q30: np.ndarray  # [W] Q30 window (2^30 = 1.0)
    sin_q30: np.ndarray  # [N/4 + 1] round(2^30 sin(2πk/N))
    first_bin: int  # bins first_bin..last_bin have a nonzero mel weight
    last_bin: int
    mel_filter: np.ndarray  # [bins] lowest filter fed by each bin
    mel_weight: np.ndarray  # [bins, 2] Q15 weights for that filter and the next
    log2_q16: np.ndarray  # [33] round(2^16 log2(1 + i/32))
    floor_q10: int

    @property
    def fft_bits(self) -> int:
        """``log2 N``."""
        return self.config.n_fft.bit_length() - 1


def make_tables(config: LogMelConfig) -> LogMelTables:
    """Quantize the constants of ``config``; checks that every bin feeds <= 2 adjacent filters."""
    n, win = config.n_fft, config.win_length
    if config.n_mels > 255 or n > 4096 or n < 8:
        raise KilomlError("integer front end supports 8 <= n_fft <= 4096 and <= 255 filters")
    bank = np.round(mel_filterbank(config) * 32768).astype(np.int64)
    nonzero_bins = np.flatnonzero(bank.any(axis=0))
    first, last = int(nonzero_bins[0]), int(nonzero_bins[-1])
    filters, weights = [], []
    padded = np.vstack([bank, np.zeros((1, bank.shape[1]), dtype=np.int64)])
    for k in range(first, last + 1):
        used = np.flatnonzero(bank[:, k])
        f = int(used[0]) if len(used) else 0
        if len(used) and used[-1] > f + 1:
            raise KilomlError(f"FFT bin {k} feeds filters {used.tolist()}: not supported")
        filters.append(f)
        weights.append(padded[f:f + 2, k])
    window = np.round(window_function(config) * (1 << WINDOW_FRAC_BITS)).astype(np.int64)
    if not np.array_equal(window, window[::-1]) or len(window) != win:
        raise KilomlError("the integer front end needs a symmetric window")
    pre = round(config.pre_emphasis * 32768)
    if not 0 <= pre < 32768:
        raise KilomlError(f"pre-emphasis must be in [0, 1), got {config.pre_emphasis}")
    sin = np.round(np.sin(2 * np.pi * np.arange(n // 4 + 1) / n) * (1 << TWIDDLE_FRAC_BITS))
    table_size = 1 << LOG2_TABLE_BITS
    log2 = np.round(np.log2(1 + np.arange(table_size + 1) / table_size) * (1 << LOG2_FRAC_BITS))
    return LogMelTables(
        config=config, pre_emphasis_q15=pre,
        window_q30=window,
        sin_q30=sin.astype(np.int64), first_bin=first, last_bin=last,
        mel_filter=np.array(filters, dtype=np.int64), mel_weight=np.array(weights),
        log2_q16=log2.astype(np.int64),
        floor_q10=round(math.log(config.floor) * (1 << OUT_FRAC_BITS)))


def _cos_sin(tables: LogMelTables, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q30 ``cos``/``sin`` of ``2πk/N`` for ``0 <= k <= N/2`` from the quarter-wave table."""
    quarter = tables.config.n_fft // 4
    s = tables.sin_q30
    low = k <= quarter
    cos = np.where(low, s[np.where(low, quarter - k, 0)], -s[np.where(low, 0, k - quarter)])
    sin = np.where(low, s[np.where(low, k, 0)], s[np.where(low, 0, 2 * quarter - k)])
    return cos, sin


def _bit_reverse(m: int) -> np.ndarray:
    bits = m.bit_length() - 1
    return np.array([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(m)])


def _normalised_frames(e: np.ndarray, tables: LogMelTables) -> tuple[np.ndarray, np.ndarray]:
    """Window and block-normalise ``e [F, W]``: ``(u [F, N], shift [F])``."""
    v = e * tables.window_q30
    peak = np.abs(v).max(axis=1)
    bit_length = np.array([int(p).bit_length() for p in peak])
    shift = bit_length - NORM_BITS
    u = np.zeros((len(e), tables.config.n_fft), dtype=np.int64)
    for i, s in enumerate(shift):
        u[i, :v.shape[1]] = shift_round(v[i], int(s))
    return u, shift


def _complex_fft(re: np.ndarray, im: np.ndarray, tables: LogMelTables):
    """In-order ``N/2``-point FFT of ``re + j im [F, N/2]`` scaled by ``2^-log2(N/2)``."""
    m = re.shape[1]
    order = _bit_reverse(m)
    re, im = re[:, order], im[:, order]
    half = 1
    while half < m:
        j = np.arange(half)
        cos, sin = _cos_sin(tables, j * (tables.config.n_fft // (2 * half)))
        for start in range(0, m, 2 * half):
            a, b = start + j, start + half + j
            t_re = shift_round(re[:, b] * cos + im[:, b] * sin, TWIDDLE_FRAC_BITS)
            t_im = shift_round(im[:, b] * cos - re[:, b] * sin, TWIDDLE_FRAC_BITS)
            a_re, a_im = re[:, a], im[:, a]
            re[:, a], im[:, a] = shift_round(a_re + t_re, 1), shift_round(a_im + t_im, 1)
            re[:, b], im[:, b] = shift_round(a_re - t_re, 1), shift_round(a_im - t_im, 1)
        half *= 2
    return re, im


def _power(u: np.ndarray, tables: LogMelTables) -> np.ndarray:
    """``round(|FFT(u)/N|^2 · 2^-12)`` for bins ``first_bin..last_bin`` → ``[F, bins]`` int64."""
    m = tables.config.n_fft // 2
    z_re, z_im = _complex_fft(u[:, 0::2].copy(), u[:, 1::2].copy(), tables)
    k = np.arange(tables.first_bin, tables.last_bin + 1)
    a, b = k % m, (m - k) % m
    s_re, s_im = z_re[:, a] + z_re[:, b], z_im[:, a] - z_im[:, b]
    d_re, d_im = z_re[:, a] - z_re[:, b], z_im[:, a] + z_im[:, b]
    cos, sin = _cos_sin(tables, k)
    one = np.int64(1 << TWIDDLE_FRAC_BITS)
    x_re = shift_round(s_re * one + cos * d_im - sin * d_re, TWIDDLE_FRAC_BITS + 2)
    x_im = shift_round(s_im * one - cos * d_re - sin * d_im, TWIDDLE_FRAC_BITS + 2)
    return shift_round(x_re * x_re + x_im * x_im, POWER_SHIFT)


def log2_q16(x: np.ndarray, tables: LogMelTables) -> np.ndarray:
    """``log2`` of positive int64 ``x`` (< 2^63) in Q16, as ``kl_log2_q16`` in C."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.array([int(v).bit_length() - 1 for v in x.reshape(-1)]).reshape(x.shape)
    # the 21 bits below the leading one: 5 index bits, 16 interpolation bits
    below = np.array([(int(v) << 21) >> int(e) for v, e in zip(x.reshape(-1), exponent.reshape(-1),
                                                               strict=True)]).reshape(x.shape)
    index = (below >> LOG2_FRAC_BITS) & ((1 << LOG2_TABLE_BITS) - 1)
    frac = below & ((1 << LOG2_FRAC_BITS) - 1)
    lo, hi = tables.log2_q16[index], tables.log2_q16[index + 1]
    return exponent * (1 << LOG2_FRAC_BITS) + lo + shift_round((hi - lo) * frac, LOG2_FRAC_BITS)


def log_mel_frames_q10(pcm: np.ndarray, previous: np.ndarray, valid: np.ndarray,
                       tables: LogMelTables) -> np.ndarray:
    """Features ``[F, n_mels]`` (int64 holding int16 Q10) of frames ``pcm [F, W]`` (int16
    values), the sample before each frame ``previous [F]`` and valid sample counts ``valid [F]``
    (``kiloml_logmel_frame`` applied to each frame)."""
    pcm = np.asarray(pcm, dtype=np.int64)
    x_prev = np.concatenate([np.asarray(previous, dtype=np.int64)[:, None], pcm[:, :-1]], axis=1)
    e = pcm * 32768 - tables.pre_emphasis_q15 * x_prev
    e = np.where(np.arange(pcm.shape[1])[None, :] < np.asarray(valid)[:, None], e, 0)
    u, shift = _normalised_frames(e, tables)
    power = _power(u, tables)
    n_mels = tables.config.n_mels
    mel = np.zeros((len(pcm), n_mels + 1), dtype=np.int64)
    for i, f in enumerate(tables.mel_filter):
        mel[:, f] += tables.mel_weight[i, 0] * power[:, i]
        mel[:, f + 1] += tables.mel_weight[i, 1] * power[:, i]
    mel = mel[:, :n_mels]
    log2 = log2_q16(np.maximum(mel, 1), tables)
    offset = (2 * shift + tables.fft_bits - LOG2_OFFSET) * (1 << LOG2_FRAC_BITS)
    ln = shift_round((log2 + offset[:, None]) * LN2_Q30, 30 + LOG2_FRAC_BITS - OUT_FRAC_BITS)
    ln = np.where(mel > 0, np.maximum(ln, tables.floor_q10), tables.floor_q10)
    return saturate(ln, 16)


def frame_signal(pcm: np.ndarray, config: LogMelConfig):
    """Split int16 ``pcm [n]`` as ``kiloml_logmel`` does: ``(frames [F, W] zero-padded,
    previous [F], valid [F])``."""
    pcm = np.asarray(pcm)
    if pcm.ndim != 1 or pcm.size == 0 or pcm.dtype != np.int16:
        raise KilomlError(f"expected non-empty 1-D int16 PCM, got {pcm.dtype} {pcm.shape}")
    n, win, hop = config.num_frames(len(pcm)), config.win_length, config.hop_length
    starts = hop * np.arange(n)
    padded = np.zeros(starts[-1] + win, dtype=np.int64)
    padded[:len(pcm)] = pcm
    frames = padded[starts[:, None] + np.arange(win)[None, :]]
    previous = np.where(starts > 0, padded[np.maximum(starts - 1, 0)], 0)
    return frames, previous, np.minimum(win, len(pcm) - starts)


def log_mel_q10(pcm: np.ndarray, tables: LogMelTables) -> np.ndarray:
    """Integer log-mel features ``[frames, n_mels]`` int16 Q10 of int16 ``pcm`` (the output of
    ``kiloml_logmel``); ``to_float(features, 10)`` approximates ``log_mel(pcm, rate)``."""
    frames, previous, valid = frame_signal(pcm, tables.config)
    return log_mel_frames_q10(frames, previous, valid, tables).astype(np.int16)
