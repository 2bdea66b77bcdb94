"""Depthwise 1-D convolution over time: one kernel per channel, with zero padding, stride, bias
and a fused activation (``kl_depthwise_conv1d.c``).

Input ``x`` int16 ``[T, C]`` (time-major) in Q(in); output ``y`` int16 ``[T_out, C]`` in Q(out),
``T_out = (T + pad_left + pad_right - K) // stride + 1``; weight ``W`` int8/int16 ``[C, K]``
(torch's ``[C, 1, K]``), always stored dense, with **one power-of-two scale per channel**:
channel ``c`` in Q(w_c), read with the int8 shift ``s_c = w_c + in - out``:

``y[t, c] = clamp(sat32(shift_round(sum_k W[c, k] x[t * stride - pad_left + k, c], s_c))
+ shift_round(b[c], s_b), act_min, act_max)``

with ``x`` zero outside ``0..T-1``, ``b`` int8/int16 in Q(b), ``s_b = b - out``; products and
sums exact in int64 (the output stage is :mod:`kiloml.ops.bias_act`). No scratch.

Why per channel: a BatchNorm folded into a depthwise kernel scales each channel by its own
``γ / sqrt(var + eps)``, and a channel whose input is almost always zero has a tiny variance,
so one channel's weights can be a hundred times larger than the others'. One int8 scale for
the tensor then rounds most channels to a few levels (a speech DS-CNN fell from 90 % to 43 %);
per channel it loses half a point. The shifts cost one byte per channel.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.bias_act import (
    BIAS_ACT_FILES,
    FLOAT_ACTIVATIONS,
    bias_act,
    bias_act_fields,
    quantize_bias_act,
)
from kiloml.ops.conv1d import check_conv_shape, padded_windows
from kiloml.ops.fixed import QTensor, activation_format, quantize_weight, saturate, shift_round
from kiloml.ops.matrix import C_WEIGHT_TYPES, c_array, emit_vector, vector_bytes


def quantize_per_channel(weight: np.ndarray, bits: int) -> tuple[QTensor, np.ndarray]:
    """``(values [C, K], frac_bits [C])``: each row of ``weight`` as ``bits``-bit integers with
    its own power-of-two scale (``quantize_weight`` per row). An all-zero row takes the largest
    nonzero row's format, so its shift stays in the range of the others. ``values.frac_bits``
    is that of the largest row."""
    rows = [quantize_weight(row, bits) for row in np.asarray(weight, dtype=np.float64)]
    largest = int(np.argmax(np.abs(weight).max(axis=1)))
    frac_bits = np.array([r.frac_bits if np.any(r.values) else rows[largest].frac_bits
                          for r in rows], dtype=np.int64)
    values = np.stack([r.values for r in rows])
    return QTensor(values, rows[largest].frac_bits, bits), frac_bits


@register
class DepthwiseConv1dOp(Op):
    """``attrs``: ``kernel``, ``stride``, ``pad_left``, ``pad_right``, ``activation``
    (none/relu); ``weights``: ``weight`` ``[C, 1, K]`` (torch layout), ``bias`` ``[C]``."""

    name = "depthwise_conv1d"
    c_files = ("kl_depthwise_conv1d.h", "kl_depthwise_conv1d.c", *BIAS_ACT_FILES,
               "kl_matvec.h")

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        steps, channels = inputs[0].shape
        shape = node.weights["weight"].shape
        if shape != (channels, 1, node.attrs["kernel"]):
            raise KilomlError(f"{node.path}: a depthwise weight of shape {list(shape)} does not "
                              f"fit {channels} channels and kernel {node.attrs['kernel']}")
        out_steps = check_conv_shape(node, steps, channels, node.attrs["kernel"])
        return [Value(node.outputs[0], (out_steps, channels), "int16")]

    def float_forward(self, node, inputs, record):
        a, t = node.attrs, node.weights
        windows = padded_windows(np.asarray(inputs[0], dtype=np.float64), a["kernel"],
                                 a["stride"], a["pad_left"], a["pad_right"])
        y = np.einsum("ntkc,ck->ntc", windows, t["weight"][:, 0]) + t["bias"]
        return [FLOAT_ACTIVATIONS[a["activation"]](y)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = activation_format(ranges(node.outputs[0]))
        weight = node.weights["weight"][:, 0]
        values, shifts = quantize_per_channel(weight, bits)
        node.q["weight"] = values
        node.q["shift"] = QTensor(shifts + inputs[0].frac_bits - out_format, 0, 8)
        quantize_bias_act(node, node.weights["bias"], out_format, bits)
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        a, q, k = node.attrs, node.q, node.consts
        windows = padded_windows(np.asarray(inputs[0], dtype=np.int64), a["kernel"],
                                 a["stride"], a["pad_left"], a["pad_right"])
        sums = np.einsum("ntkc,ck->ntc", windows, q["weight"].values)
        acc = np.stack([saturate(shift_round(sums[..., c], int(shift)), 32)
                        for c, shift in enumerate(q["shift"].values)], axis=-1)
        return [bias_act(acc, q["bias"].values, k["shift_bias"], k["act_min"], k["act_max"])]

    def storage(self, node):
        weight = node.q["weight"]
        return {"weight": {"format": "dense", "bytes": weight.nbytes + weight.values.shape[0],
                           "bits": weight.bits, "scales": "per channel"},
                "bias": {"format": "dense", "bytes": vector_bytes(node.q["bias"]),
                         "bits": node.q["bias"].bits}}

    def macs(self, node, inputs, outputs):
        return outputs[0].count * node.attrs["kernel"]

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        a, q, k = node.attrs, node.q, node.consts
        weight = q["weight"]
        bias_text, bias = emit_vector(c.symbol("bias"), q["bias"], k["shift_bias"])
        fields = {"weight": c.symbol("weight"), "shift": c.symbol("shift"),
                  "weight_bits": weight.bits, **bias_act_fields(bias, k),
                  "in_steps": inputs[0].shape[0], "channels": inputs[0].shape[1],
                  "out_steps": outputs[0].shape[0], "kernel": a["kernel"],
                  "stride": a["stride"], "pad_left": a["pad_left"]}
        members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
        definitions = (c_array(C_WEIGHT_TYPES[weight.bits], c.symbol("weight"), weight.values)
                       + c_array("int8_t", c.symbol("shift"), q["shift"].values) + bias_text
                       + f"static const kl_depthwise_conv1d_params_t {c.symbol('params')} = "
                       f"{{\n{members},\n}};\n")
        call = (f"    kl_depthwise_conv1d_s16(&{c.symbol('params')}, "
                f"{c.pointer(node.inputs[0])}, {c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
