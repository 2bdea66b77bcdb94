"""Arg-max of int32 scores: the class ``kiloml_predict`` returns (``kl_argmax.c``).

Input int32 ``[C]``; the result is the index of the largest value, the lowest index on ties.
"""

import numpy as np

from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register


@register
class ArgmaxOp(Op):
    name = "argmax"
    c_files = ("kl_argmax.h",)

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        return [Value(node.outputs[0], (), "int32", 0, storage="return")]

    def float_forward(self, node, inputs, record):
        return [np.argmax(inputs[0], axis=-1)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        outputs[0].frac_bits = 0

    def simulate(self, node, inputs, in_values, out_values):
        return [np.argmax(np.asarray(inputs[0]), axis=-1).astype(np.int64)]

    def macs(self, node, inputs, outputs):
        return 0

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        return Emitted("", f"    result = kl_argmax_s32({c.pointer(node.inputs[0])}, "
                           f"{inputs[0].count});\n")
