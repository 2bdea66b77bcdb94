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

from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.fixed import activation_format, quantize_weight, saturate, shift_round
from kiloml.ops.matrix import (
    MATVEC_FILES,
    emit_matrix,
    emit_vector,
    matrix_storage,
    matvec,
    vector_bytes,
)

PROJECTION_FILES = ("kl_projection.h", "kl_projection.c", *MATVEC_FILES)


@register
class ProjectionOp(Op):
    """``weights``: ``weight`` ``[D, K]``, ``bias`` ``[D]``."""

    name = "projection"
    c_files = PROJECTION_FILES

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        rows, cols = node.weights["weight"].shape
        if inputs[0].count != cols:
            raise ValueError(f"{node.path}: expects {cols} inputs, got {inputs[0].shape}")
        return [Value(node.outputs[0], (rows,), "int16")]

    def float_forward(self, node, inputs, record):
        x = np.asarray(inputs[0], dtype=np.float64)
        return [x.reshape(len(x), -1) @ node.weights["weight"].T + node.weights["bias"]]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = activation_format(ranges(node.outputs[0]))
        node.q = {"weight": quantize_weight(node.weights["weight"], bits),
                  "bias": quantize_weight(node.weights["bias"], 16)}
        node.consts = {"shift_weight": node.q["weight"].frac_bits + inputs[0].frac_bits
                       - out_format,
                       "shift_bias": node.q["bias"].frac_bits - out_format}
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        q, k = node.q, node.consts
        x = np.asarray(inputs[0], dtype=np.int64)
        product = matvec(x.reshape(len(x), -1), q["weight"].values, k["shift_weight"])
        return [saturate(product + shift_round(q["bias"].values, k["shift_bias"]), 16)]

    def storage(self, node):
        return {"weight": matrix_storage(node.q["weight"]),
                "bias": {"format": "dense", "bytes": vector_bytes(node.q["bias"]),
                         "bits": node.q["bias"].bits}}

    def flash_bytes(self, node):
        return sum(entry["bytes"] for entry in self.storage(node).values())

    def macs(self, node, inputs, outputs):
        return int(np.count_nonzero(node.q["weight"].values))

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        stored = emit_matrix(c.symbol("weight"), node.q["weight"], node.consts["shift_weight"])
        bias_text, bias = emit_vector(c.symbol("bias"), node.q["bias"], node.consts["shift_bias"])
        definitions = (stored.text + bias_text
                       + f"static const kl_projection_params_t {c.symbol('params')} = "
                       f"{{ &{c.symbol('weight')}, {bias} }};\n")
        call = (f"    kl_projection_s16_s16(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
