"""The output stage the convolution ops share (``kl_bias_act.h``): a rescaled int32 sum plus
the bias, clamped by the fused activation into int16.

For an output in Q(out) and a bias ``b`` int8/int16 in Q(b):
``y = clamp(acc + shift_round(b, s_b), act_min, act_max)`` with ``s_b = b - out`` and
``act_min``/``act_max`` int16 limits (ReLU: ``[0, 32767]``; none: ``[-32768, 32767]``). The sum
is exact in int64; clamping to a sub-range of int16 makes a saturation to int32 before it
irrelevant.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.fixed import INT16_MAX, INT16_MIN, quantize_weight, shift_round

#: Fused activations of the convolution ops: float function and integer limits.
FLOAT_ACTIVATIONS = {"none": lambda x: x, "relu": lambda x: np.maximum(x, 0.0)}
LIMITS = {"none": (INT16_MIN, INT16_MAX), "relu": (0, INT16_MAX)}
#: Files of the stage (with kl_matvec.h, whose kl_vector_t holds the bias).
BIAS_ACT_FILES = ("kl_bias_act.h",)


def check_activation(name: str, path: str) -> None:
    """A one-line error unless ``name`` is a fused activation of the convolution ops."""
    if name not in LIMITS:
        raise KilomlError(f"{path}: no integer convolution with the activation {name!r}; "
                          f"choose one of {', '.join(LIMITS)}")


def bias_act(acc: np.ndarray, bias: np.ndarray, shift_bias: int, act_min: int, act_max: int
             ) -> np.ndarray:
    """``clamp(acc + shift_round(bias, shift_bias), act_min, act_max)`` over the last axis
    (int64 ``acc`` ``[..., C]``, integer ``bias`` ``[C]``)."""
    total = np.asarray(acc, dtype=np.int64) + shift_round(bias, shift_bias)
    return np.clip(total, act_min, act_max)


def quantize_bias_act(node, bias: np.ndarray, out_frac_bits: int, bits: int) -> None:
    """Store the node's quantized bias (``node.q["bias"]``) and the stage's constants
    ``shift_bias``, ``act_min`` and ``act_max`` (activation ``node.attrs["activation"]``)."""
    check_activation(node.attrs["activation"], node.path)
    node.q["bias"] = quantize_weight(bias, bits)
    act_min, act_max = LIMITS[node.attrs["activation"]]
    node.consts.update(shift_bias=node.q["bias"].frac_bits - out_frac_bits, act_min=act_min,
                       act_max=act_max)


def bias_act_fields(bias_initializer: str, consts: dict) -> dict[str, object]:
    """The params-struct members of the stage: ``bias`` (a ``kl_vector_t`` initializer),
    ``act_min``, ``act_max``."""
    return {"bias": bias_initializer, "act_min": consts["act_min"], "act_max": consts["act_max"]}

