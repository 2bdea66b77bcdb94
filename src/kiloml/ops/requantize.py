"""The output stage of the int8 image convolutions (``kl_requantize.h``): an int32 sum plus an
int32 bias, rescaled per output channel by a fixed-point multiplier and a shift, clamped by the
fused activation into int8.

Weights are int8 with one real scale per output channel, ``w_q = round(w / s_o)`` with
``s_o = max|w_o| / 127`` (symmetric, ``|w_q| <= 127``); activations are int8 in a Q-format
Q(in)/Q(out) (a power-of-two scale, as every kiloml value). For output channel ``o``:

``acc = sat32(sum + bias[o])``, ``bias[o] = sat32(round(b[o] * 2**in / s_o))``

``y = clamp(shift_round(acc * mult[o], shift[o]), act_min, act_max)``

with ``mult[o]`` int32 and ``shift[o]`` in ``1..62`` such that ``mult · 2**-shift`` is
``s_o · 2**(out - in)`` to a relative ``2**-31`` (``mult`` in ``[2**30, 2**31)`` unless the
factor is below ``2**-32``). ``|acc · mult| < 2**62``: the product and its rounding are exact
in int64. The activation limits are int8: none ``[-128, 127]``, ReLU ``[0, 127]``, ReLU6
``[0, min(127, round(6 · 2**out))]``. The pointwise op adds a residual before the clamp
(:mod:`kiloml.ops.pointwise_conv2d`).
"""

import math

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.fixed import INT32_MAX, INT32_MIN, QTensor, frac_bits_for, saturate, shift_round
from kiloml.ops.matrix import c_array

#: Fused activations of the image ops: float function.
FLOAT_ACTIVATIONS = {"none": lambda x: x, "relu": lambda x: np.maximum(x, 0.0),
                     "relu6": lambda x: np.clip(x, 0.0, 6.0)}
#: Range of the int8 activations' fractional bits.
INT8_FRAC_BITS = (-8, 14)
#: Range of the requantization shift.
SHIFT_RANGE = (1, 62)
#: Largest magnitude of an int8 weight (symmetric: -128 is never stored).
WEIGHT_LIMIT = 127
#: C files of the stage.
REQUANTIZE_FILES = ("kl_requantize.h",)


def int8_format(max_abs: float) -> int:
    """Q-format of an int8 activation whose calibrated largest magnitude is ``max_abs``: the
    most fractional bits that hold it (Q-8..Q14). No headroom: the output stage saturates,
    and at eight bits every bit of resolution counts."""
    return frac_bits_for(max_abs, 8, *INT8_FRAC_BITS)


def check_activation(name: str, path: str) -> None:
    """A one-line error unless ``name`` is a fused activation of the image ops."""
    if name not in FLOAT_ACTIVATIONS:
        raise KilomlError(f"{path}: no integer image convolution with the activation {name!r}; "
                          f"choose one of {', '.join(FLOAT_ACTIVATIONS)}")


def activation_limits(name: str, out_frac_bits: int) -> tuple[int, int]:
    """``(act_min, act_max)`` int8 limits of activation ``name`` for an output in Q(out)."""
    if name == "relu6":
        return 0, int(min(127, round(6.0 * 2.0**out_frac_bits)))
    return (0, 127) if name == "relu" else (-128, 127)


def channel_scales(weight: np.ndarray) -> np.ndarray:
    """``s_o = max|w_o| / 127`` per output channel of ``weight`` ``[C_out, ...]``; an all-zero
    channel takes the largest scale (1.0 if every channel is zero)."""
    peaks = np.abs(np.asarray(weight, dtype=np.float64)).reshape(len(weight), -1).max(axis=1)
    scales = peaks / WEIGHT_LIMIT
    fallback = scales.max() if scales.max() > 0 else 1.0
    return np.where(scales > 0, scales, fallback)


def quantize_multiplier(factor: float, path: str) -> tuple[int, int]:
    """``(mult, shift)`` with ``mult · 2**-shift`` = ``factor`` > 0 to a relative ``2**-31``,
    ``shift`` in ``1..62``; a one-line error naming ``path`` if ``factor >= 2**30``."""
    fraction, exponent = math.frexp(factor)
    mult = round(fraction * 2.0**31)
    if mult == 1 << 31:
        mult, exponent = 1 << 30, exponent + 1
    shift = 31 - exponent
    if shift < SHIFT_RANGE[0]:
        raise KilomlError(f"{path}: an output rescaling factor of {factor:.3g} is too large for "
                          "the int8 kernels; the layer's input range is far below its output's")
    if shift > SHIFT_RANGE[1]:
        mult, shift = round(factor * 2.0**SHIFT_RANGE[1]), SHIFT_RANGE[1]
    return int(mult), int(shift)


def quantize_conv(node, weight: np.ndarray, bias: np.ndarray, in_frac_bits: int,
                  out_frac_bits: int) -> None:
    """Store ``node.q``'s ``weight`` (int8, per-channel scales), ``bias`` (int32), ``mult``
    (int32) and ``shift`` (int8) per output channel, and the activation limits
    ``act_min``/``act_max`` in ``node.consts`` (activation ``node.attrs["activation"]``)."""
    check_activation(node.attrs["activation"], node.path)
    weight = np.asarray(weight, dtype=np.float64)
    scales = channel_scales(weight)
    shape = (-1,) + (1,) * (weight.ndim - 1)
    values = np.clip(np.round(weight / scales.reshape(shape)), -WEIGHT_LIMIT, WEIGHT_LIMIT)
    bias_values = np.round(np.asarray(bias, dtype=np.float64) * 2.0**in_frac_bits / scales)
    pairs = [quantize_multiplier(s * 2.0 ** (out_frac_bits - in_frac_bits), node.path)
             for s in scales]
    node.q["weight"] = QTensor(values.astype(np.int64), 0, 8)
    node.q["bias"] = QTensor(np.clip(bias_values, INT32_MIN, INT32_MAX).astype(np.int64), 0, 32)
    node.q["mult"] = QTensor(np.array([m for m, _ in pairs], dtype=np.int64), 0, 32)
    node.q["shift"] = QTensor(np.array([s for _, s in pairs], dtype=np.int64), 0, 8)
    act_min, act_max = activation_limits(node.attrs["activation"], out_frac_bits)
    node.consts.update(act_min=act_min, act_max=act_max)


def requantize(sums: np.ndarray, node, axis: int = 1) -> np.ndarray:
    """``shift_round(sat32(sums + bias) · mult, shift)`` per output channel along ``axis`` of
    int64 ``sums`` (before the clamp, int64)."""
    q = node.q
    shape = [1] * sums.ndim
    shape[axis] = -1
    acc = saturate(np.asarray(sums, dtype=np.int64) + q["bias"].values.reshape(shape), 32)
    product = acc * q["mult"].values.reshape(shape)
    out = np.empty_like(product)
    for o, shift in enumerate(q["shift"].values):
        index = [slice(None)] * sums.ndim
        index[axis] = o
        out[tuple(index)] = shift_round(product[tuple(index)], int(shift))
    return out


def clamp(values: np.ndarray, node) -> np.ndarray:
    """The activation's int8 clamp ``[act_min, act_max]``."""
    return np.clip(values, node.consts["act_min"], node.consts["act_max"])


def conv_storage(node) -> dict[str, dict]:
    """The stored tensors of an image conv node: its int8 weights (one scale per output
    channel) and the stage's per-channel constants (bias and mult int32, shift int8)."""
    return {"weight": {"format": "dense", "bytes": node.q["weight"].nbytes, "bits": 8,
                       "scales": "per channel"},
            "requantize": {"format": "dense", "bytes": 9 * len(node.q["shift"].values),
                           "bits": 32}}


def emit_stage(node, symbol) -> tuple[str, dict[str, object]]:
    """The stage's constant arrays and its params-struct members (``bias``, ``mult``,
    ``shift``, ``act_min``, ``act_max``)."""
    q = node.q
    text = (c_array("int32_t", symbol("bias"), q["bias"].values)
            + c_array("int32_t", symbol("mult"), q["mult"].values)
            + c_array("int8_t", symbol("shift"), q["shift"].values))
    fields = {"bias": symbol("bias"), "mult": symbol("mult"), "shift": symbol("shift"),
              "act_min": node.consts["act_min"], "act_max": node.consts["act_max"]}
    return text, fields
