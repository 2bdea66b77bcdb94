"""2-D convolution over a ``[C, H, W]`` map: int8 weights, int32 sums, per-output-channel
requantization to int8 with a fused activation (``kl_conv2d.c``), e.g. the 3×3 stride-2 stem
of a MobileNetV2.

Input ``x`` int8 ``[C_in, H, W]`` in Q(in) — or int16, for a network's first layer reading
the caller's input; output ``y`` int8 ``[C_out, OH, OW]`` in Q(out) with
``OH = (H + pad_top + pad_bottom - KH) // stride_h + 1`` (``OW`` likewise); weight ``W`` int8
``[C_out, C_in, KH, KW]`` (torch's layout), one real scale per output channel:

``y[o, i, j] = clamp(shift_round(sat32(sum_{c,u,v} W[o,c,u,v] · x[c, i·s_h - pad_top + u,
j·s_w - pad_left + v] + bias[o]) · mult[o], shift[o]), act_min, act_max)``

with ``x`` zero outside the map (the output stage is :mod:`kiloml.ops.requantize`). The sum is
exact in int32: ``C_in·KH·KW`` is at most :data:`MAX_WINDOW_S16` for an int16 input
(``|w x| <= 127 · 2**15``) and 65535 for int8. The kernel computes every output from the
window's taps inside the map (no per-tap test, no scratch). Supported: kernel sides 1..11,
strides 1..4, padding 0..kernel - 1 on each side.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.constants import MAX_STEPS
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

#: Kernel sides, strides the image kernels support.
KERNEL_RANGE = (1, 11)
STRIDE_RANGE = (1, 4)
#: Largest ``C_in·KH·KW`` of an int16 input whose int32 sum is exact (127 · 2**15 · 516 < 2**31).
MAX_WINDOW_S16 = 516
#: Input dtypes of the kernel (``kl_conv2d_s8``, ``kl_conv2d_s16``).
INPUT_DTYPES = ("int8", "int16")


def check_window(node: Node, shape: tuple[int, ...], what: str) -> tuple[int, int]:
    """``(OH, OW)`` of ``node`` (``attrs`` ``kernel [KH, KW]``, ``stride [s_h, s_w]``,
    ``padding [top, bottom, left, right]``) on a ``[C, H, W]`` map, or a one-line error naming
    the layer."""
    if len(shape) != 3:
        raise KilomlError(f"{node.path}: {what} needs a [C, H, W] map, got {list(shape)}")
    a = node.attrs
    (kh, kw), (sh, sw), pads = a["kernel"], a["stride"], a["padding"]
    if not all(KERNEL_RANGE[0] <= k <= KERNEL_RANGE[1] for k in (kh, kw)):
        raise KilomlError(f"{node.path}: {what} kernel {kh}x{kw} is not supported; sides must "
                          f"be {KERNEL_RANGE[0]} to {KERNEL_RANGE[1]}")
    if not all(STRIDE_RANGE[0] <= s <= STRIDE_RANGE[1] for s in (sh, sw)):
        raise KilomlError(f"{node.path}: {what} stride {sh}x{sw} is not supported; strides "
                          f"must be {STRIDE_RANGE[0]} to {STRIDE_RANGE[1]}")
    limits = (kh, kh, kw, kw)
    if any(not 0 <= p < k for p, k in zip(pads, limits, strict=True)):
        raise KilomlError(f"{node.path}: {what} padding {list(pads)} is not supported with "
                          f"kernel {kh}x{kw}; each side must be 0 to kernel - 1")
    _, height, width = shape
    out_h = (height + pads[0] + pads[1] - kh) // sh + 1
    out_w = (width + pads[2] + pads[3] - kw) // sw + 1
    if out_h < 1 or out_w < 1:
        raise KilomlError(f"{node.path}: a {height}x{width} map is smaller than the {what} "
                          f"kernel {kh}x{kw} with padding {list(pads)}")
    if max(shape) > MAX_STEPS:
        raise KilomlError(f"{node.path}: {what} map sides and channels must be at most "
                          f"{MAX_STEPS}")
    return out_h, out_w


def windows(x: np.ndarray, node: Node, fill=0) -> np.ndarray:
    """``[N, C, OH, OW, KH, KW]`` windows of ``x`` ``[N, C, H, W]``, padded with ``fill``."""
    a = node.attrs
    top, bottom, left, right = a["padding"]
    padded = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=fill)
    view = np.lib.stride_tricks.sliding_window_view(padded, tuple(a["kernel"]), axis=(2, 3))
    return view[:, :, ::a["stride"][0], ::a["stride"][1]]


def window_fields(node: Node, inputs: list[Value], outputs: list[Value]) -> dict[str, int]:
    """The geometry members of the 2-D kernels' params structs."""
    a = node.attrs
    channels, height, width = inputs[0].shape
    return {"in_height": height, "in_width": width, "out_height": outputs[0].shape[1],
            "out_width": outputs[0].shape[2], "kernel_h": a["kernel"][0],
            "kernel_w": a["kernel"][1], "stride_h": a["stride"][0], "stride_w": a["stride"][1],
            "pad_top": a["padding"][0], "pad_left": a["padding"][2]}


def params_struct(ctype: str, name: str, fields: dict[str, object]) -> str:
    """``static const <ctype> <name> = {...};`` with designated members."""
    members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
    return f"static const {ctype} {name} = {{\n{members},\n}};\n"


@register
class Conv2dOp(Op):
    """``attrs``: ``kernel [KH, KW]``, ``stride [s_h, s_w]``, ``padding [top, bottom, left,
    right]``, ``activation`` (none/relu/relu6); ``weights``: ``weight`` ``[C_out, C_in, KH,
    KW]`` (BatchNorm folded), ``bias`` ``[C_out]``."""

    name = "conv2d"
    c_files = ("kl_conv2d.h", "kl_conv2d.c", "kl_window2d.h", *REQUANTIZE_FILES)

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        out_h, out_w = check_window(node, inputs[0].shape, "convolution")
        out_channels, in_channels, kh, kw = node.weights["weight"].shape
        if in_channels != inputs[0].shape[0] or [kh, kw] != list(node.attrs["kernel"]):
            raise KilomlError(f"{node.path}: a weight of shape "
                              f"{list(node.weights['weight'].shape)} does not fit a "
                              f"[{inputs[0].shape[0]}, H, W] input and kernel "
                              f"{node.attrs['kernel']}")
        if inputs[0].dtype not in INPUT_DTYPES:
            raise KilomlError(f"{node.path}: the convolution reads int8 or int16 maps, got "
                              f"{inputs[0].dtype}")
        window = in_channels * kh * kw
        if inputs[0].dtype == "int16" and window > MAX_WINDOW_S16:
            raise KilomlError(f"{node.path}: a convolution over an int16 input needs channels x "
                              f"kernel at most {MAX_WINDOW_S16}, got {window}")
        if max(window, out_channels) > MAX_STEPS:
            raise KilomlError(f"{node.path}: channels x kernel and output channels must be at "
                              f"most {MAX_STEPS}")
        return [Value(node.outputs[0], (out_channels, out_h, out_w), "int8")]

    def float_forward(self, node, inputs, record):
        t = node.weights
        patches = windows(np.asarray(inputs[0], dtype=np.float64), node)
        y = np.einsum("nchwij,ocij->nohw", patches, t["weight"]) + t["bias"][:, None, None]
        return [FLOAT_ACTIVATIONS[node.attrs["activation"]](y)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = int8_format(ranges(node.outputs[0]))
        quantize_conv(node, node.weights["weight"], node.weights["bias"], inputs[0].frac_bits,
                      out_format)
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        patches = windows(np.asarray(inputs[0], dtype=np.int64), node)
        sums = np.einsum("nchwij,ocij->nohw", patches, node.q["weight"].values)
        return [clamp(requantize(sums, node), node)]

    def storage(self, node):
        return conv_storage(node)

    def macs(self, node, inputs, outputs):
        _, out_h, out_w = outputs[0].shape
        return out_h * out_w * int(np.count_nonzero(node.q["weight"].values))

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        stage, fields = emit_stage(node, c.symbol)
        weight = node.q["weight"].values
        fields = {"weight": c.symbol("weight"), **fields,
                  "in_channels": inputs[0].shape[0], "out_channels": outputs[0].shape[0],
                  **window_fields(node, inputs, outputs)}
        definitions = (c_array("int8_t", c.symbol("weight"), weight) + stage
                       + params_struct("kl_conv2d_params_t", c.symbol("params"), fields))
        kernel = "kl_conv2d_s16" if inputs[0].dtype == "int16" else "kl_conv2d_s8"
        call = (f"    {kernel}(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
