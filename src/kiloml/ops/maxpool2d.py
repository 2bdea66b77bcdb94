"""Max pooling over a ``[C, H, W]`` int8 map (``kl_maxpool2d.c``).

Input ``x`` int8 ``[C, H, W]`` in Q(in); output ``y`` int8 ``[C, OH, OW]`` in Q(in) (the
geometry of :mod:`kiloml.ops.conv2d`):

``y[c, i, j] = max_{u,v} x[c, i·s_h - pad_top + u, j·s_w - pad_left + v]``

over the taps inside the map (padding never wins, as torch's ``-inf`` padding). Supported:
kernel sides 1..11, strides 1..4, padding at most half the kernel (torch's own limit, so every
window holds a tap of the map). No scratch, no constants.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.conv2d import check_window, params_struct, window_fields, windows


@register
class MaxPool2dOp(Op):
    """``attrs``: ``kernel``, ``stride``, ``padding`` as ``conv2d``."""

    name = "maxpool2d"
    c_files = ("kl_maxpool2d.h", "kl_maxpool2d.c", "kl_window2d.h")

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        kh, kw = node.attrs["kernel"]
        top, bottom, left, right = node.attrs["padding"]
        if max(top, bottom) > kh // 2 or max(left, right) > kw // 2:
            raise KilomlError(f"{node.path}: max pooling padding {list(node.attrs['padding'])} "
                              f"is not supported with kernel {kh}x{kw}; at most half the kernel")
        out_h, out_w = check_window(node, inputs[0].shape, "max pooling")
        if inputs[0].dtype != "int8":
            raise KilomlError(f"{node.path}: max pooling reads int8 maps, got "
                              f"{inputs[0].dtype}")
        return [Value(node.outputs[0], (inputs[0].shape[0], out_h, out_w), "int8")]

    def float_forward(self, node, inputs, record):
        patches = windows(np.asarray(inputs[0], dtype=np.float64), node, fill=-np.inf)
        return [patches.max(axis=(-2, -1))]

    def quantize(self, node, inputs, outputs, ranges, bits):
        outputs[0].frac_bits = inputs[0].frac_bits

    def simulate(self, node, inputs, in_values, out_values):
        x = np.asarray(inputs[0], dtype=np.int64)
        return [windows(x, node, fill=np.iinfo(np.int64).min).max(axis=(-2, -1))]

    def macs(self, node, inputs, outputs):
        return 0

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        fields = {"channels": inputs[0].shape[0], **window_fields(node, inputs, outputs)}
        definitions = params_struct("kl_maxpool2d_params_t", c.symbol("params"), fields)
        call = (f"    kl_maxpool2d_s8(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
