"""Fixed-point Q-formats and the integer primitives every kernel is built from.

A value ``v`` in Q-format with ``f`` fractional bits is stored as the integer ``round(v * 2**f)``;
scales are powers of two so rescaling is a shift. These functions are the numpy twins of
``kl_fixed.h`` and must stay integer-for-integer identical to it:

* :func:`shift_round` — ``s > 0``: arithmetic right shift by ``s`` rounding half up
  (``(x + 2**(s-1)) >> s``); ``s == 0``: identity; ``s < 0``: multiply by ``2**-s``.
* :func:`saturate` — clamp to the range of a signed ``bits``-bit integer.

All arithmetic is on int64 arrays; callers keep magnitudes far below 2**62.
"""

import math
from dataclasses import dataclass

import numpy as np

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def int_range(bits: int) -> tuple[int, int]:
    """``(min, max)`` of a signed ``bits``-bit integer."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def frac_bits_for(max_abs: float, bits: int, lowest: int = -8, highest: int = 24) -> int:
    """Most fractional bits ``f`` such that ``max_abs * 2**f`` fits a signed ``bits``-bit integer
    without saturating, clipped to ``[lowest, highest]`` (``highest`` when ``max_abs`` is 0)."""
    limit = (1 << (bits - 1)) - 1
    if not max_abs > 0 or not math.isfinite(max_abs):
        return highest
    f = math.floor(math.log2(limit / max_abs))
    while f > lowest and round(max_abs * 2.0**f) > limit:
        f -= 1
    return int(min(max(f, lowest), highest))


def to_fixed(values: np.ndarray, frac_bits: int, bits: int) -> np.ndarray:
    """Quantize floats to Q``frac_bits`` integers of width ``bits`` (round half to even,
    saturate to the symmetric range ``[-(2**(bits-1)-1), 2**(bits-1)-1]``); returns int64."""
    limit = (1 << (bits - 1)) - 1
    scaled = np.round(np.asarray(values, dtype=np.float64) * 2.0**frac_bits)
    return np.clip(scaled, -limit, limit).astype(np.int64)


def to_float(values: np.ndarray, frac_bits: int) -> np.ndarray:
    """The real values of Q``frac_bits`` integers."""
    return np.asarray(values, dtype=np.float64) * 2.0**-frac_bits


def shift_round(x: np.ndarray | int, shift: int) -> np.ndarray:
    """Rescale int64 ``x`` by ``2**-shift`` exactly as ``kl_shift_round_s64`` in C does."""
    x = np.asarray(x, dtype=np.int64)
    if shift > 0:
        return (x + np.int64(1 << (shift - 1))) >> np.int64(shift)
    if shift < 0:
        return x * np.int64(1 << -shift)
    return x


def saturate(x: np.ndarray, bits: int) -> np.ndarray:
    """Clamp int64 ``x`` to a signed ``bits``-bit range (``kl_sat16``/``kl_sat32`` in C)."""
    low, high = int_range(bits)
    return np.clip(np.asarray(x, dtype=np.int64), low, high)


#: Headroom over the calibrated largest magnitude when an activation's Q-format is chosen.
HEADROOM = 1.25
#: Range of the int16 activations' fractional bits; the C kernels' 32-bit shortcuts rely on it.
ACTIVATION_FRAC_BITS = (0, 20)
#: Range of the int32 outputs' (logits') fractional bits.
OUTPUT_FRAC_BITS = (0, 16)
#: Range of a weight tensor's fractional bits.
WEIGHT_FRAC_BITS = (-8, 30)
WEIGHT_BITS = (8, 16)
Q15 = 15


@dataclass
class QTensor:
    """Stored integers (int64 array) of width ``bits`` in Q``frac_bits``; a matrix is stored
    by the rule ``storage`` (``"bytes"``: the smallest format, ``"speed"``: the fewest predicted
    instructions; :func:`kiloml.compress.size.tensor_storage`)."""

    values: np.ndarray
    frac_bits: int
    bits: int
    storage: str = "bytes"

    @property
    def nbytes(self) -> int:
        """Bytes of the stored values (dense)."""
        return int(self.values.size) * self.bits // 8


def activation_format(max_abs: float, bits: int = 16) -> int:
    """Q-format of an activation whose calibrated largest magnitude is ``max_abs``: int16 values
    in Q0..Q20, int32 outputs in Q0..Q16, both with :data:`HEADROOM`."""
    low, high = ACTIVATION_FRAC_BITS if bits == 16 else OUTPUT_FRAC_BITS
    return frac_bits_for(max_abs * HEADROOM, bits, low, high)


def quantize_weight(values: np.ndarray, bits: int) -> QTensor:
    """A float tensor as ``bits``-bit integers with one power-of-two scale chosen so that the
    largest magnitude just fits (Q-8..Q30)."""
    values = np.asarray(values, dtype=np.float64)
    frac = frac_bits_for(float(np.abs(values).max(initial=0.0)), bits, *WEIGHT_FRAC_BITS)
    return QTensor(to_fixed(values, frac, bits), frac, bits)


def quantize_q15(value: float) -> QTensor:
    """One constant in [-1, 1] as a Q15 int16."""
    return QTensor(to_fixed(np.array([value]), Q15, 16), Q15, 16)
