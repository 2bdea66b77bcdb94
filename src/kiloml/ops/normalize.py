"""Per-feature input normalisation ``(x - mean) / std`` in integers (``kl_normalize.c``).

Input ``x`` int16 ``[T, F]`` in Q(in), output int16 ``[T, F]`` in Q(out):
``y = sat16(shift_round((x - mean) * inv_std, s))`` with ``mean`` int16 in Q(in), ``inv_std``
(``1/std``) int16 in its own Q(i) and ``s = in + i - out``; the product is exact in int64 (and
in int32, since ``|x - mean| < 2**16``).

The recurrent ops normalise one frame per step inside their kernels with the same code
(``kl_normalize_frame_s16``), so a recurrent model never holds the normalised sequence.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.fixed import (
    QTensor,
    activation_format,
    frac_bits_for,
    saturate,
    shift_round,
    to_fixed,
)
from kiloml.ops.matrix import c_array, vector_bytes

NORMALIZE_FILES = ("kl_normalize.h", "kl_normalize.c")


def normalize_spec(x: np.ndarray, mean: np.ndarray, inv_std: np.ndarray, shift: int
                   ) -> np.ndarray:
    """``sat16(shift_round((x - mean) * inv_std, shift))`` over the last axis (int64)."""
    x = np.asarray(x, dtype=np.int64)
    return saturate(shift_round((x - mean) * inv_std, shift), 16)


def quantize_normalization(mean: np.ndarray, std: np.ndarray, input_frac_bits: int
                           ) -> tuple[QTensor, QTensor]:
    """``(mean in Q(in), 1/std in its own Q)`` as int16 tensors."""
    if not np.all(np.isfinite(std) & (std > 0)):
        raise KilomlError("input_std must be positive and finite for every feature; refit the "
                          "normalisation on the training split")
    inv_std = 1.0 / std
    inv_frac = frac_bits_for(float(np.abs(inv_std).max()), 16, lowest=-8, highest=30)
    return (QTensor(to_fixed(mean, input_frac_bits, 16), input_frac_bits, 16),
            QTensor(to_fixed(inv_std, inv_frac, 16), inv_frac, 16))


@register
class NormalizeOp(Op):
    """``weights``: ``mean``, ``std`` ``[F]`` (float)."""

    name = "normalize"
    c_files = NORMALIZE_FILES

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        return [Value(node.outputs[0], inputs[0].shape, "int16")]

    def float_forward(self, node, inputs, record):
        return [(np.asarray(inputs[0], dtype=np.float64) - node.weights["mean"])
                / node.weights["std"]]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = activation_format(ranges(node.outputs[0]))
        mean, inv_std = quantize_normalization(node.weights["mean"], node.weights["std"],
                                               inputs[0].frac_bits)
        node.q = {"mean": mean, "inv_std": inv_std}
        node.consts = {"shift": inputs[0].frac_bits + inv_std.frac_bits - out_format}
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        return [normalize_spec(inputs[0], node.q["mean"].values, node.q["inv_std"].values,
                               node.consts["shift"])]

    def storage(self, node):
        return {"mean": {"format": "dense", "bytes": node.q["mean"].nbytes, "bits": 16},
                "inv_std": {"format": "dense", "bytes": vector_bytes(node.q["inv_std"]),
                            "bits": 16}}

    def macs(self, node, inputs, outputs):
        return inputs[0].count

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        features = inputs[0].shape[-1]
        frames = inputs[0].count // features
        definitions = (c_array("int16_t", c.symbol("mean"), node.q["mean"].values)
                       + c_array("int16_t", c.symbol("inv_std"), node.q["inv_std"].values)
                       + f"static const kl_normalize_params_t {c.symbol('params')} KL_CONST = "
                       f"{{ {c.symbol('mean')}, {c.symbol('inv_std')}, {features}, "
                       f"{node.consts['shift']} }};\n")
        call = (f"    kl_normalize_s16(&{c.symbol('params')}, {frames}, "
                f"{c.pointer(node.inputs[0])}, {c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
