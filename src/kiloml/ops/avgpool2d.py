"""Average pooling over a ``[C, H, W]`` int8 map, ``KH × KW`` windows without padding
(``kl_avgpool2d.c``).

Input ``x`` int8 ``[C, H, W]`` in Q(in); output ``y`` int8 ``[C, OH, OW]`` in the same Q(in)
(a mean never leaves the input's range), ``OH = (H - KH) // s_h + 1``:

``y[c, i, j] = shift_round(sum_{u,v} x[c, i·s_h + u, j·s_w + v] · inv, 30)``

with ``inv = round(2**30 / (KH·KW))`` (``INV_STEPS_FRAC_BITS``); the sum is exact in int32 and
the product in int64. Supported: kernel sides 1..11, strides 1..4, no padding (torch's
``count_include_pad`` would make the border windows' divisor differ). No scratch.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.constants import INV_STEPS_FRAC_BITS
from kiloml.ops.conv2d import check_window, params_struct, window_fields, windows
from kiloml.ops.fixed import saturate, shift_round


def inv_count(count: int) -> int:
    """``round(2**30 / count)``: the reciprocal the pooling multiplies by."""
    return round((1 << INV_STEPS_FRAC_BITS) / count)


@register
class AvgPool2dOp(Op):
    """``attrs``: ``kernel``, ``stride``, ``padding`` (all zero) as ``conv2d``."""

    name = "avgpool2d"
    c_files = ("kl_avgpool2d.h", "kl_avgpool2d.c")

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        if any(node.attrs["padding"]):
            raise KilomlError(f"{node.path}: average pooling with padding "
                              f"{list(node.attrs['padding'])} is not supported; use padding 0")
        out_h, out_w = check_window(node, inputs[0].shape, "average pooling")
        if inputs[0].dtype != "int8":
            raise KilomlError(f"{node.path}: average pooling reads int8 maps, got "
                              f"{inputs[0].dtype}")
        return [Value(node.outputs[0], (inputs[0].shape[0], out_h, out_w), "int8")]

    def float_forward(self, node, inputs, record):
        return [windows(np.asarray(inputs[0], dtype=np.float64), node).mean(axis=(-2, -1))]

    def quantize(self, node, inputs, outputs, ranges, bits):
        kh, kw = node.attrs["kernel"]
        node.consts["inv"] = inv_count(kh * kw)
        outputs[0].frac_bits = inputs[0].frac_bits

    def simulate(self, node, inputs, in_values, out_values):
        sums = windows(np.asarray(inputs[0], dtype=np.int64), node).sum(axis=(-2, -1))
        scaled = shift_round(sums * np.int64(node.consts["inv"]), INV_STEPS_FRAC_BITS)
        return [saturate(scaled, 8)]

    def macs(self, node, inputs, outputs):
        kh, kw = node.attrs["kernel"]
        return outputs[0].count * kh * kw

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        fields = {"inv": node.consts["inv"], "channels": inputs[0].shape[0],
                  **window_fields(node, inputs, outputs)}
        for key in ("pad_top", "pad_left"):
            fields.pop(key)
        definitions = params_struct("kl_avgpool2d_params_t", c.symbol("params"), fields)
        call = (f"    kl_avgpool2d_s8(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
