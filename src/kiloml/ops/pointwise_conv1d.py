"""Pointwise (1×1) convolution: the same matrix applied to every time step, with bias and a
fused activation (``kl_pointwise_conv1d.c``).

Input ``x`` int16 ``[T, C_in]`` (time-major) in Q(in); output ``y`` int16 ``[T, C_out]`` in
Q(out); weight ``W`` int8/int16 ``[C_out, C_in]`` in Q(w) (torch's ``[C_out, C_in, 1]``), in any
storage ``kl_matvec`` reads:

``y[t] = clamp(sat32(shift_round(W x[t], s_W)) + shift_round(b, s_b), act_min, act_max)``

with ``s_W = w + in - out``, ``b`` int8/int16 in Q(b), ``s_b = b - out``; products and sums
exact in int64 (the output stage is :mod:`kiloml.ops.bias_act`). Scratch: ``acc`` int32
``[C_out]``, one time step's rescaled sums.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.base import Buffer, EmitContext, Emitted, Node, Op, Value, register
from kiloml.ops.bias_act import (
    BIAS_ACT_FILES,
    FLOAT_ACTIVATIONS,
    bias_act,
    bias_act_fields,
    quantize_bias_act,
)
from kiloml.ops.conv1d import MAX_DIMENSION
from kiloml.ops.fixed import activation_format, quantize_weight
from kiloml.ops.matrix import (
    MATVEC_FILES,
    emit_matrix,
    emit_vector,
    matrix_storage,
    matvec,
    vector_bytes,
)


@register
class PointwiseConv1dOp(Op):
    """``attrs``: ``activation`` (none/relu); ``weights``: ``weight`` ``[C_out, C_in, 1]``
    (torch layout), ``bias`` ``[C_out]``."""

    name = "pointwise_conv1d"
    c_files = ("kl_pointwise_conv1d.h", "kl_pointwise_conv1d.c", *BIAS_ACT_FILES,
               *MATVEC_FILES)

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        steps, channels = inputs[0].shape
        out_channels, in_channels, kernel = node.weights["weight"].shape
        if (in_channels, kernel) != (channels, 1):
            raise KilomlError(f"{node.path}: a pointwise weight of shape "
                              f"{list(node.weights['weight'].shape)} does not fit {channels} "
                              "input channels")
        if max(steps, channels, out_channels) > MAX_DIMENSION:
            raise KilomlError(f"{node.path}: time steps and channels must be at most "
                              f"{MAX_DIMENSION} for deployment")
        return [Value(node.outputs[0], (steps, out_channels), "int16")]

    def float_forward(self, node, inputs, record):
        t = node.weights
        y = np.asarray(inputs[0], dtype=np.float64) @ t["weight"][:, :, 0].T + t["bias"]
        return [FLOAT_ACTIVATIONS[node.attrs["activation"]](y)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = activation_format(ranges(node.outputs[0]))
        node.q["weight"] = quantize_weight(node.weights["weight"][:, :, 0], bits)
        node.consts["shift_weight"] = (node.q["weight"].frac_bits + inputs[0].frac_bits
                                       - out_format)
        quantize_bias_act(node, node.weights["bias"], out_format, bits)
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        q, k = node.q, node.consts
        x = np.asarray(inputs[0], dtype=np.int64)
        count, steps, channels = x.shape
        acc = matvec(x.reshape(count * steps, channels), q["weight"].values, k["shift_weight"])
        y = bias_act(acc, q["bias"].values, k["shift_bias"], k["act_min"], k["act_max"])
        return [y.reshape(count, steps, -1)]

    def buffers(self, node, inputs, outputs):
        return [Buffer("acc", "int32", outputs[0].shape[1])]

    def storage(self, node):
        return {"weight": matrix_storage(node.q["weight"]),
                "bias": {"format": "dense", "bytes": vector_bytes(node.q["bias"]),
                         "bits": node.q["bias"].bits}}

    def macs(self, node, inputs, outputs):
        return inputs[0].shape[0] * int(np.count_nonzero(node.q["weight"].values))

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        q, k = node.q, node.consts
        stored = emit_matrix(c.symbol("weight"), q["weight"], k["shift_weight"])
        bias_text, bias = emit_vector(c.symbol("bias"), q["bias"], k["shift_bias"])
        fields = {"weight": f"&{c.symbol('weight')}", **bias_act_fields(bias, k),
                  "steps": inputs[0].shape[0]}
        members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
        definitions = (stored.text + bias_text
                       + f"static const kl_pointwise_conv1d_params_t {c.symbol('params')} = "
                       f"{{\n{members},\n}};\n")
        call = (f"    kl_pointwise_conv1d_s16(&{c.symbol('params')}, "
                f"{c.pointer(node.inputs[0])}, {c.buffer('acc')}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
