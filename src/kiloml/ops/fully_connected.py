"""Fully connected layer ``y = W x + b`` with an int32 output (``kl_fc.c``), e.g. the logits of
a classifier head.

Input ``x`` int16 ``[K]`` in Q(in); output ``y`` int32 ``[C]`` in Q(out):
``y = sat32(sat32(shift_round(W x, s_W)) + shift_round(b, s_b))`` with ``W`` int8/int16
``[C, K]`` in Q(w), ``s_W = w + in - out``, ``b`` int8/int16 in Q(b), ``s_b = b - out``; the
product is exact in int64. Q(out) is chosen from the calibrated output range (Q0..Q16).
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


@register
class FullyConnectedOp(Op):
    """``weights``: ``weight`` ``[C, K]``, ``bias`` ``[C]``."""

    name = "fully_connected"
    c_files = ("kl_fc.h", "kl_fc.c", *MATVEC_FILES)
    #: the output's width in bits, the bias's (``None``: the weights'), the C kernel and the
    #: type of its params struct; a subclass with other widths reuses everything else
    output_bits = 32
    bias_bits: int | None = None
    kernel = "kl_fc_s16_s32"
    params_type = "kl_fc_params_t"
    #: whether the weight may be stored blocked (not when the kernel reads single rows)
    blocked_storage = True

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        rows, cols = node.weights["weight"].shape
        if inputs[0].shape != (cols,):
            raise ValueError(f"{node.path}: expects {cols} inputs, got {inputs[0].shape}")
        return [Value(node.outputs[0], (rows,), f"int{self.output_bits}")]

    def float_forward(self, node, inputs, record):
        return [np.asarray(inputs[0], dtype=np.float64) @ node.weights["weight"].T
                + node.weights["bias"]]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = activation_format(ranges(node.outputs[0]), self.output_bits)
        node.q = {"weight": quantize_weight(node.weights["weight"], bits),
                  "bias": quantize_weight(node.weights["bias"], self.bias_bits or bits)}
        node.consts = {"shift_weight": node.q["weight"].frac_bits + inputs[0].frac_bits
                       - out_format,
                       "shift_bias": node.q["bias"].frac_bits - out_format}
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        q, k = node.q, node.consts
        product = matvec(inputs[0], q["weight"].values, k["shift_weight"])
        return [saturate(product + shift_round(q["bias"].values, k["shift_bias"]),
                         self.output_bits)]

    def storage(self, node):
        return {"weight": matrix_storage(node.q["weight"], self.blocked_storage),
                "bias": {"format": "dense", "bytes": vector_bytes(node.q["bias"]),
                         "bits": node.q["bias"].bits}}

    def macs(self, node, inputs, outputs):
        return int(np.count_nonzero(node.q["weight"].values))

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        stored = emit_matrix(c.symbol("weight"), node.q["weight"], node.consts["shift_weight"],
                             self.blocked_storage)
        bias_text, bias = emit_vector(c.symbol("bias"), node.q["bias"], node.consts["shift_bias"])
        definitions = (stored.text + bias_text
                       + f"static const {self.params_type} {c.symbol('params')} KL_CONST = "
                       f"{{ &{c.symbol('weight')}, {bias} }};\n")
        call = (f"    {self.kernel}(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
