"""Depthwise 2-D convolution: one ``KH × KW`` kernel per channel of a ``[C, H, W]`` map, int8
weights, int32 sums, per-channel requantization to int8 with a fused activation
(``kl_depthwise_conv2d.c``): MobileNetV2's 3×3 depthwise layers, stride 1 or 2.

Input ``x`` int8 ``[C, H, W]`` in Q(in); output ``y`` int8 ``[C, OH, OW]`` in Q(out) (the
geometry of :mod:`kiloml.ops.conv2d`); weight ``W`` int8 ``[C, KH, KW]`` (torch's
``[C, 1, KH, KW]``), one real scale per channel:

``y[c, i, j] = clamp(shift_round(sat32(sum_{u,v} W[c,u,v] · x[c, i·s_h - pad_top + u,
j·s_w - pad_left + v] + bias[c]) · mult[c], shift[c]), act_min, act_max)``

with ``x`` zero outside the map (output stage :mod:`kiloml.ops.requantize`). The sum is exact
in int32 (at most 121 taps of ``|w x| <= 127 · 128``). Only the taps inside the map are read;
a 3×3 window wholly inside has its nine taps written out. No scratch.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.conv2d import check_window, params_struct, window_fields, windows
from kiloml.ops.matrix import c_array
from kiloml.ops.requantize import (
    FLOAT_ACTIVATIONS,
    REQUANTIZE_FILES,
    clamp,
    conv_storage,
    emit_stage,
    int8_format,
    quantize_conv,
    requantize,
)


@register
class DepthwiseConv2dOp(Op):
    """``attrs``: ``kernel``, ``stride``, ``padding`` (as ``conv2d``), ``activation``;
    ``weights``: ``weight`` ``[C, 1, KH, KW]`` (BatchNorm folded), ``bias`` ``[C]``."""

    name = "depthwise_conv2d"
    c_files = ("kl_depthwise_conv2d.h", "kl_depthwise_conv2d.c", "kl_window2d.h",
               *REQUANTIZE_FILES)

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        out_h, out_w = check_window(node, inputs[0].shape, "depthwise convolution")
        channels = inputs[0].shape[0]
        shape = node.weights["weight"].shape
        if shape != (channels, 1, *node.attrs["kernel"]):
            raise KilomlError(f"{node.path}: a depthwise weight of shape {list(shape)} does not "
                              f"fit {channels} channels and kernel {node.attrs['kernel']}")
        if inputs[0].dtype != "int8":
            raise KilomlError(f"{node.path}: the depthwise convolution reads int8 maps, got "
                              f"{inputs[0].dtype}")
        return [Value(node.outputs[0], (channels, out_h, out_w), "int8")]

    def float_forward(self, node, inputs, record):
        t = node.weights
        patches = windows(np.asarray(inputs[0], dtype=np.float64), node)
        y = np.einsum("nchwij,cij->nchw", patches, t["weight"][:, 0]) + t["bias"][:, None, None]
        return [FLOAT_ACTIVATIONS[node.attrs["activation"]](y)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = int8_format(ranges(node.outputs[0]))
        quantize_conv(node, node.weights["weight"][:, 0], node.weights["bias"],
                      inputs[0].frac_bits, out_format)
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        patches = windows(np.asarray(inputs[0], dtype=np.int64), node)
        sums = np.einsum("nchwij,cij->nchw", patches, node.q["weight"].values)
        return [clamp(requantize(sums, node), node)]

    def storage(self, node):
        return conv_storage(node)

    def macs(self, node, inputs, outputs):
        kh, kw = node.attrs["kernel"]
        return outputs[0].count * kh * kw

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        stage, fields = emit_stage(node, c.symbol)
        fields = {"weight": c.symbol("weight"), **fields, "channels": inputs[0].shape[0],
                  **window_fields(node, inputs, outputs)}
        definitions = (c_array("int8_t", c.symbol("weight"), node.q["weight"].values) + stage
                       + params_struct("kl_depthwise_conv2d_params_t", c.symbol("params"),
                                       fields))
        call = (f"    kl_depthwise_conv2d_s8(&{c.symbol('params')}, "
                f"{c.pointer(node.inputs[0])}, {c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
