"""Global average pooling of a ``[C, H, W]`` int8 map into an int16 vector
(``kl_global_avgpool2d.c``): the mean of every channel, for a classifier head.

Input ``x`` int8 ``[C, H, W]`` in Q(in); output ``y`` int16 ``[C]`` in Q(out) (calibrated,
Q0..Q20; the extra bits keep the mean's resolution for the head):

``y[c] = sat16(shift_round(sum_{i,j} x[c, i, j] · inv, 30 + in - out))``

with ``inv = round(2**30 / (H·W))``. The sum is exact in int32 (``H·W <= 65535``) and the
product in int64 (``< 2**54``). No scratch, no constants.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.avgpool2d import inv_count
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.constants import INV_STEPS_FRAC_BITS, MAX_STEPS
from kiloml.ops.conv2d import params_struct
from kiloml.ops.fixed import activation_format, saturate, shift_round


@register
class GlobalAvgPool2dOp(Op):
    """No attributes or weights."""

    name = "global_avgpool2d"
    c_files = ("kl_global_avgpool2d.h", "kl_global_avgpool2d.c")

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        shape = inputs[0].shape
        if len(shape) != 3 or inputs[0].dtype != "int8":
            raise KilomlError(f"{node.path}: global average pooling needs an int8 [C, H, W] "
                              f"map, got {inputs[0].dtype} {list(shape)}")
        if shape[1] * shape[2] > MAX_STEPS or shape[0] > MAX_STEPS:
            raise KilomlError(f"{node.path}: global average pooling needs H x W and C at most "
                              f"{MAX_STEPS}, got {list(shape)}")
        return [Value(node.outputs[0], (shape[0],), "int16")]

    def float_forward(self, node, inputs, record):
        return [np.asarray(inputs[0], dtype=np.float64).mean(axis=(-2, -1))]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = activation_format(ranges(node.outputs[0]))
        _, height, width = inputs[0].shape
        node.consts = {"inv": inv_count(height * width),
                       "shift": INV_STEPS_FRAC_BITS + inputs[0].frac_bits - out_format}
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        total = np.asarray(inputs[0], dtype=np.int64).sum(axis=(-2, -1))
        return [saturate(shift_round(total * np.int64(node.consts["inv"]),
                                     node.consts["shift"]), 16)]

    def macs(self, node, inputs, outputs):
        return inputs[0].count

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        channels, height, width = inputs[0].shape
        fields = {"channels": channels, "pixels": height * width, "inv": node.consts["inv"],
                  "shift": node.consts["shift"]}
        definitions = params_struct("kl_global_avgpool2d_params_t", c.symbol("params"), fields)
        call = (f"    kl_global_avgpool2d_s8(&{c.symbol('params')}, "
                f"{c.pointer(node.inputs[0])}, {c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
