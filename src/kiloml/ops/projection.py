"""Sparse projection ``p = W x + b`` with an int16 output (``kl_projection.c``): the first
layer of ProtoNN and Bonsai, with the input normalisation folded into ``W`` and ``b``.

Input ``x`` int16 ``[K]`` in Q(in); output ``p`` int16 ``[D]`` in Q(out):
``p = sat16(sat32(shift_round(W x, s_W)) + shift_round(b, s_b))`` with ``W`` int8/int16
``[D, K]`` in Q(w) in any :mod:`kiloml.ops.matrix` storage (CSR when sparse), ``s_W = w + in -
out``, ``b`` int16 (whatever the weights' width: it carries a folded mean) in Q(b),
``s_b = b - out``; products and sums are exact in int64.
Q(out) is chosen from the calibrated output range (int16, Q0..Q20).
"""

import numpy as np

from kiloml.ops.base import Node, Value, register
from kiloml.ops.fully_connected import FullyConnectedOp
from kiloml.ops.matrix import MATVEC_FILES

PROJECTION_FILES = ("kl_projection.h", "kl_projection.c", *MATVEC_FILES)


@register
class ProjectionOp(FullyConnectedOp):
    """``weights``: ``weight`` ``[D, K]``, ``bias`` ``[D]``; the fully connected op with an
    int16 output and an int16 bias, on any input shape of ``K`` values."""

    name = "projection"
    c_files = PROJECTION_FILES
    output_bits = 16
    bias_bits = 16
    kernel = "kl_projection_s16_s16"
    params_type = "kl_projection_params_t"
    blocked_storage = False  # kl_projection.c reads W one row at a time

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        rows, cols = node.weights["weight"].shape
        if inputs[0].count != cols:
            raise ValueError(f"{node.path}: expects {cols} inputs, got {inputs[0].shape}")
        return [Value(node.outputs[0], (rows,), "int16")]

    def float_forward(self, node, inputs, record):
        x = np.asarray(inputs[0], dtype=np.float64)
        return super().float_forward(node, [x.reshape(len(x), -1)], record)

    def simulate(self, node, inputs, in_values, out_values):
        x = np.asarray(inputs[0], dtype=np.int64)
        return super().simulate(node, [x.reshape(len(x), -1)], in_values, out_values)
