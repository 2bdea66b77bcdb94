"""Pointwise (1×1) 2-D convolution over a ``[C, H, W]`` map with an optional residual add:
int8 weights, int32 sums, per-output-channel requantization to int8 (``kl_pointwise_conv2d.c``):
MobileNetV2's expansion (ReLU6) and projection (linear, plus the block's input) layers.

Input ``x`` int8 ``[C_in, H, W]`` in Q(in); optional residual ``r`` int8 ``[C_out, H, W]`` in
Q(r); output ``y`` int8 ``[C_out, H, W]`` in Q(out); weight ``W`` int8 ``[C_out, C_in]``
(torch's ``[C_out, C_in, 1, 1]``), one real scale per output channel:

``y[o, p] = clamp(shift_round(sat32(sum_c W[o, c] · x[c, p] + bias[o]) · mult[o], shift[o])
+ shift_round(r[o, p], s_r), act_min, act_max)``

with ``s_r = r - out`` (the residual's own rescaling: a power of two, exact for ``s_r <= 0``,
rounding half up for ``s_r > 0``, ``|s_r| <= 15``); without a residual the second term is 0
(output stage :mod:`kiloml.ops.requantize`). The sum is exact in int32 (``C_in <= 65535``,
``|w x| <= 127 · 128``). No scratch.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.constants import MAX_STEPS
from kiloml.ops.conv2d import params_struct
from kiloml.ops.fixed import shift_round
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

#: Largest magnitude of the residual's shift.
MAX_RESIDUAL_SHIFT = 15


@register
class PointwiseConv2dOp(Op):
    """Inputs: ``x`` and optionally the residual; ``attrs``: ``activation``;
    ``weights``: ``weight`` ``[C_out, C_in, 1, 1]`` (BatchNorm folded), ``bias`` ``[C_out]``."""

    name = "pointwise_conv2d"
    c_files = ("kl_pointwise_conv2d.h", "kl_pointwise_conv2d.c", *REQUANTIZE_FILES)

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        shape = inputs[0].shape
        if len(shape) != 3:
            raise KilomlError(f"{node.path}: the pointwise convolution needs a [C, H, W] map, "
                              f"got {list(shape)}")
        out_channels, in_channels, kh, kw = node.weights["weight"].shape
        if (in_channels, kh, kw) != (shape[0], 1, 1):
            raise KilomlError(f"{node.path}: a pointwise weight of shape "
                              f"{list(node.weights['weight'].shape)} does not fit "
                              f"{shape[0]} input channels")
        out = (out_channels, *shape[1:])
        if any(v.dtype != "int8" for v in inputs):
            raise KilomlError(f"{node.path}: the pointwise convolution reads int8 maps")
        if len(inputs) > 1 and inputs[1].shape != out:
            raise KilomlError(f"{node.path}: the residual {list(inputs[1].shape)} does not fit "
                              f"the output {list(out)}")
        if max(*out, in_channels, shape[1] * shape[2]) > MAX_STEPS:
            raise KilomlError(f"{node.path}: channels and map size must be at most {MAX_STEPS}")
        return [Value(node.outputs[0], out, "int8")]

    def float_forward(self, node, inputs, record):
        t = node.weights
        y = (np.einsum("nchw,oc->nohw", np.asarray(inputs[0], dtype=np.float64),
                       t["weight"][:, :, 0, 0]) + t["bias"][:, None, None])
        if len(inputs) > 1:
            y = y + inputs[1]
        return [FLOAT_ACTIVATIONS[node.attrs["activation"]](y)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = int8_format(ranges(node.outputs[0]))
        quantize_conv(node, node.weights["weight"][:, :, 0, 0], node.weights["bias"],
                      inputs[0].frac_bits, out_format)
        if len(inputs) > 1:
            shift = inputs[1].frac_bits - out_format
            if abs(shift) > MAX_RESIDUAL_SHIFT:
                raise KilomlError(f"{node.path}: the residual's Q{inputs[1].frac_bits} is too "
                                  f"far from the output's Q{out_format}")
            node.consts["shift_residual"] = shift
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        sums = np.einsum("nchw,oc->nohw", np.asarray(inputs[0], dtype=np.int64),
                         node.q["weight"].values)
        y = requantize(sums, node)
        if len(inputs) > 1:
            y = y + shift_round(np.asarray(inputs[1], dtype=np.int64),
                                node.consts["shift_residual"])
        return [clamp(y, node)]

    def storage(self, node):
        return conv_storage(node)

    def macs(self, node, inputs, outputs):
        _, height, width = outputs[0].shape
        return height * width * int(np.count_nonzero(node.q["weight"].values))

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        stage, fields = emit_stage(node, c.symbol)
        channels, height, width = inputs[0].shape
        fields = {"weight": c.symbol("weight"), **fields, "in_channels": channels,
                  "out_channels": outputs[0].shape[0], "pixels": height * width,
                  "shift_residual": node.consts.get("shift_residual", 0)}
        definitions = (c_array("int8_t", c.symbol("weight"), node.q["weight"].values) + stage
                       + params_struct("kl_pointwise_conv2d_params_t", c.symbol("params"),
                                       fields))
        residual = c.pointer(node.inputs[1]) if len(node.inputs) > 1 else "0"
        call = (f"    kl_pointwise_conv2d_s8(&{c.symbol('params')}, "
                f"{c.pointer(node.inputs[0])}, {residual}, {c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
