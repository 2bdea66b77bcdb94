"""Integer non-linearities: int16 input in Q``f`` → int16 output (Q15 for bounded functions).

Numpy twins of ``kl_activation.c``, identical integer for integer; ``FLOAT_FUNCTIONS`` are
what the float graph computes.

``tanh`` uses one 129-entry table ``TANH_TABLE_Q15[k] = tanh(k/16)`` (Q15, last entry saturated
to 32767) over ``[0, 8]`` with linear interpolation between entries; odd symmetry gives
negative inputs, and inputs beyond 8 return the last entry. ``sigmoid(x) = (1 + tanh(x/2)) / 2``
reuses the same table. Measured over every int16 input at Q0..Q15 the absolute error is below
``4.6e-4`` for ``tanh`` and ``2.5e-4`` for ``sigmoid`` (interpolation error
``max|tanh''| h²/8 = 3.8e-4`` at ``h = 1/16``, plus rounding to Q15 and of the input to Q12);
``tests/quantize/test_activations.py`` checks these bounds.

``quantTanh`` (``clamp(x, -1, 1)``) and ``quantSigm`` (``clamp((x+1)/2, 0, 1)``) are exact up to
the final Q15 rounding; ``relu`` keeps the input's Q-format.
"""

import math

import numpy as np

from kiloml.ops.constants import ACTIVATION_IDS, BOUNDED_ACTIVATIONS, TANH_TABLE_SIZE
from kiloml.ops.fixed import INT16_MAX, Q15, saturate, shift_round

TANH_TABLE_STEP_BITS = 4  # entries every 2**-4 = 1/16

FLOAT_FUNCTIONS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "quantSigm": lambda x: np.clip((x + 1.0) * 0.5, 0.0, 1.0),
    "quantTanh": lambda x: np.clip(x, -1.0, 1.0),
}


def _tanh_table() -> np.ndarray:
    values = [min(round(math.tanh(k / 16) * 32768), INT16_MAX) for k in range(TANH_TABLE_SIZE)]
    return np.array(values, dtype=np.int64)


TANH_TABLE_Q15 = _tanh_table()


def output_frac_bits(name: str, input_frac_bits: int) -> int:
    """Q-format of the output of non-linearity ``name`` for input in Q``input_frac_bits``."""
    return Q15 if name in BOUNDED_ACTIVATIONS else input_frac_bits


def _abs_to_q(x: np.ndarray, frac_bits: int, target_bits: int) -> np.ndarray:
    return shift_round(np.abs(x), frac_bits - target_bits)


def _tanh_lookup(u: np.ndarray) -> np.ndarray:
    """``tanh`` of non-negative Q12 ``u`` (int64) as Q15, by table and interpolation."""
    index = u >> 8
    inside = index < TANH_TABLE_SIZE - 1
    i = np.where(inside, index, 0)
    frac = u & 255
    lower, upper = TANH_TABLE_Q15[i], TANH_TABLE_Q15[i + 1]
    interpolated = lower + (((upper - lower) * frac + 128) >> 8)
    return np.where(inside, interpolated, TANH_TABLE_Q15[-1])


def tanh_q15(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """``tanh`` of int16 ``x`` in Q``frac_bits``; Q15 result in ``[-32767, 32767]``."""
    x = np.asarray(x, dtype=np.int64)
    t = _tanh_lookup(_abs_to_q(x, frac_bits, 12))
    return np.where(x < 0, -t, t)


def sigmoid_q15(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """``sigmoid`` of int16 ``x`` in Q``frac_bits``; Q15 result in ``[0, 32767]``."""
    x = np.asarray(x, dtype=np.int64)
    t = _tanh_lookup(_abs_to_q(x, frac_bits, 11))  # Q11 of |x| = Q12 of |x|/2
    return (32768 + np.where(x < 0, -t, t)) >> 1


def quant_tanh_q15(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """``clamp(x, -1, 1)`` as Q15 (``-1`` is -32768, ``+1`` saturates to 32767)."""
    return saturate(shift_round(np.asarray(x, dtype=np.int64), frac_bits - Q15), 16)


def quant_sigm_q15(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """``clamp((x + 1) / 2, 0, 1)`` as Q15 in ``[0, 32767]``."""
    v = shift_round(np.asarray(x, dtype=np.int64), frac_bits - Q15)
    return np.clip((v + 32768) >> 1, 0, INT16_MAX)


def relu(x: np.ndarray, frac_bits: int) -> np.ndarray:
    """``max(x, 0)`` in the input's Q-format."""
    del frac_bits
    return np.maximum(np.asarray(x, dtype=np.int64), 0)


INTEGER_FUNCTIONS = {
    "sigmoid": sigmoid_q15,
    "tanh": tanh_q15,
    "quantSigm": quant_sigm_q15,
    "quantTanh": quant_tanh_q15,
    "relu": relu,
}


def activation_id(name: str) -> int:
    """The ``kl_activation_t`` of non-linearity ``name``."""
    return ACTIVATION_IDS[name]


def apply_integer(name: str, x: np.ndarray, frac_bits: int) -> np.ndarray:
    """Apply the integer version of non-linearity ``name`` to int16 ``x`` in Q``frac_bits``."""
    return INTEGER_FUNCTIONS[name](x, frac_bits)
