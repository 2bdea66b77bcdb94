"""Global average pooling over time (``kl_global_avgpool.c``): the mean of every channel.

Input ``x`` int16 ``[T, C]`` (time-major) in Q(in); output ``y`` int16 ``[C]`` in Q(out):

``y[c] = sat16(shift_round(sum_t x[t, c] * inv_steps, s))``

with ``inv_steps = round(2**30 / T)`` (``INV_STEPS_FRAC_BITS``, as the recurrent ops' mean
readout) and ``s = 30 + in - out``. The sum is exact in int32 (``T <= 65535``, so
``|sum| < 2**31``) and the product in int64 (``< 2**61``). No scratch, no stored weights.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.constants import INV_STEPS_FRAC_BITS, MAX_STEPS
from kiloml.ops.fixed import activation_format, saturate, shift_round


def inv_steps(steps: int) -> int:
    """``round(2**30 / steps)``: the reciprocal the pooling multiplies by."""
    return round((1 << INV_STEPS_FRAC_BITS) / steps)


@register
class GlobalAvgPoolOp(Op):
    """No attributes or weights."""

    name = "global_avgpool"
    c_files = ("kl_global_avgpool.h", "kl_global_avgpool.c")

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        steps, channels = inputs[0].shape
        if not 1 <= steps <= MAX_STEPS or channels > MAX_STEPS:
            raise KilomlError(f"global average pooling needs 1 to {MAX_STEPS} time steps and "
                              f"at most {MAX_STEPS} channels, got {steps} x {channels}")
        return [Value(node.outputs[0], (channels,), "int16")]

    def float_forward(self, node, inputs, record):
        return [np.asarray(inputs[0], dtype=np.float64).mean(axis=-2)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = activation_format(ranges(node.outputs[0]))
        node.consts = {"inv_steps": inv_steps(inputs[0].shape[0]),
                       "shift": INV_STEPS_FRAC_BITS + inputs[0].frac_bits - out_format}
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        total = np.asarray(inputs[0], dtype=np.int64).sum(axis=1)
        scaled = shift_round(total * np.int64(node.consts["inv_steps"]), node.consts["shift"])
        return [saturate(scaled, 16)]

    def macs(self, node, inputs, outputs):
        return inputs[0].count

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        steps, channels = inputs[0].shape
        k = node.consts
        definitions = (f"static const kl_global_avgpool_params_t {c.symbol('params')} = "
                       f"{{ {steps}, {channels}, {k['inv_steps']}, {k['shift']} }};\n")
        call = (f"    kl_global_avgpool_s16(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
