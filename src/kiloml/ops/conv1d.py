"""1-D convolution over time with zero padding, stride, bias and a fused activation
(``kl_conv1d.c``).

Input ``x`` int16 ``[T, C_in]`` (time-major) in Q(in); output ``y`` int16 ``[T_out, C_out]`` in
Q(out), ``T_out = (T + pad_left + pad_right - K) // stride + 1``. The weight is stored as the
matrix ``W`` int8/int16 ``[C_out, K * C_in]`` in Q(w) with ``W[o, k * C_in + c] = w[o, c, k]``
(``w`` in torch's ``[C_out, C_in, K]`` layout), so that the window of output step ``t``,
``xw = x[t * stride - pad_left + k, c]`` for ``k < K``, ``c < C_in`` (zero outside ``0..T-1``),
is ``K * C_in`` consecutive values of the time-major input:

``y[t] = clamp(sat32(shift_round(W xw, s_W)) + shift_round(b, s_b), act_min, act_max)``

with ``s_W = w + in - out``, ``b`` int8/int16 in Q(b), ``s_b = b - out``; products and sums
exact in int64 (see :mod:`kiloml.ops.bias_act` for the output stage). The kernel runs
``kl_matvec`` on each window: windows inside the input are read in place, windows that reach
into the padding are first copied into a zero-padded ``window`` buffer (``K * C_in`` int16).
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
from kiloml.ops.constants import MAX_STEPS
from kiloml.ops.fixed import activation_format, quantize_weight
from kiloml.ops.matrix import (
    MATVEC_FILES,
    emit_matrix,
    emit_vector,
    matrix_storage,
    matvec,
    vector_bytes,
)

#: Largest time length, channel count and window (``K * C_in``) the kernels' uint16 fields hold.
MAX_DIMENSION = MAX_STEPS


def conv_out_steps(steps: int, kernel: int, stride: int, pad_left: int, pad_right: int) -> int:
    """Output time steps of a convolution (0 or less: the input is too short)."""
    return (steps + pad_left + pad_right - kernel) // stride + 1


def check_conv_shape(node: Node, steps: int, channels: int, kernel: int) -> int:
    """``T_out`` of ``node`` on ``[steps, channels]``, or a one-line error naming the module."""
    a = node.attrs
    if min(a["stride"], kernel) < 1 or min(a["pad_left"], a["pad_right"]) < 0:
        raise KilomlError(f"{node.path}: kernel and stride must be positive, padding >= 0")
    out_steps = conv_out_steps(steps, kernel, a["stride"], a["pad_left"], a["pad_right"])
    if out_steps < 1:
        raise KilomlError(f"{node.path}: {steps} time steps are fewer than the kernel of "
                          f"{kernel} with padding {a['pad_left']}+{a['pad_right']}")
    if max(steps, channels, kernel * channels, a["pad_left"], a["pad_right"],
           a["stride"]) > MAX_DIMENSION:
        raise KilomlError(f"{node.path}: time steps, channels and kernel x channels must be "
                          f"at most {MAX_DIMENSION} for deployment")
    return out_steps


def padded_windows(x: np.ndarray, kernel: int, stride: int, pad_left: int, pad_right: int
                   ) -> np.ndarray:
    """``[N, T_out, K, C]`` windows of ``x`` ``[N, T, C]`` zero-padded in time (any dtype)."""
    padded = np.pad(x, ((0, 0), (pad_left, pad_right), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, kernel, axis=1)
    return windows[:, ::stride].transpose(0, 1, 3, 2)


def weight_rows(weight: np.ndarray) -> np.ndarray:
    """torch's ``[C_out, C_in, K]`` → the stored ``[C_out, K * C_in]`` (``k``-major rows)."""
    return np.asarray(weight).transpose(0, 2, 1).reshape(weight.shape[0], -1)


@register
class Conv1dOp(Op):
    """``attrs``: ``kernel``, ``stride``, ``pad_left``, ``pad_right``, ``activation``
    (none/relu);
    ``weights``: ``weight`` ``[C_out, C_in, K]`` (torch layout), ``bias`` ``[C_out]``."""

    name = "conv1d"
    c_files = ("kl_conv1d.h", "kl_conv1d.c", *BIAS_ACT_FILES, *MATVEC_FILES)

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        steps, channels = inputs[0].shape
        out_channels, in_channels, kernel = node.weights["weight"].shape
        if (in_channels, kernel) != (channels, node.attrs["kernel"]):
            raise KilomlError(f"{node.path}: a kernel of {kernel} over {in_channels} channels "
                              f"does not fit kernel {node.attrs['kernel']}, input {channels} "
                              "channels")
        out_steps = check_conv_shape(node, steps, channels, kernel)
        return [Value(node.outputs[0], (out_steps, out_channels), "int16")]

    def float_forward(self, node, inputs, record):
        a, t = node.attrs, node.weights
        windows = padded_windows(np.asarray(inputs[0], dtype=np.float64), a["kernel"],
                                 a["stride"], a["pad_left"], a["pad_right"])
        y = np.einsum("ntkc,ock->nto", windows, t["weight"]) + t["bias"]
        return [FLOAT_ACTIVATIONS[a["activation"]](y)]

    def quantize(self, node, inputs, outputs, ranges, bits):
        out_format = activation_format(ranges(node.outputs[0]))
        node.q["weight"] = quantize_weight(weight_rows(node.weights["weight"]), bits)
        node.consts["shift_weight"] = (node.q["weight"].frac_bits + inputs[0].frac_bits
                                       - out_format)
        quantize_bias_act(node, node.weights["bias"], out_format, bits)
        outputs[0].frac_bits = out_format

    def simulate(self, node, inputs, in_values, out_values):
        a, q, k = node.attrs, node.q, node.consts
        x = np.asarray(inputs[0], dtype=np.int64)
        windows = padded_windows(x, a["kernel"], a["stride"], a["pad_left"],
                                 a["pad_right"])
        count, out_steps = windows.shape[:2]
        acc = matvec(windows.reshape(count * out_steps, -1), q["weight"].values,
                     k["shift_weight"])
        y = bias_act(acc, q["bias"].values, k["shift_bias"], k["act_min"], k["act_max"])
        return [y.reshape(count, out_steps, -1)]

    def buffers(self, node, inputs, outputs):
        out = [Buffer("acc", "int32", outputs[0].shape[1])]
        if node.attrs["pad_left"] or node.attrs["pad_right"]:
            out.append(Buffer("window", "int16", node.attrs["kernel"] * inputs[0].shape[1]))
        return out

    def storage(self, node):
        return {"weight": matrix_storage(node.q["weight"]),
                "bias": {"format": "dense", "bytes": vector_bytes(node.q["bias"]),
                         "bits": node.q["bias"].bits}}

    def macs(self, node, inputs, outputs):
        return outputs[0].shape[0] * int(np.count_nonzero(node.q["weight"].values))

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        a, q, k = node.attrs, node.q, node.consts
        stored = emit_matrix(c.symbol("weight"), q["weight"], k["shift_weight"])
        bias_text, bias = emit_vector(c.symbol("bias"), q["bias"], k["shift_bias"])
        fields = {"weight": f"&{c.symbol('weight')}", **bias_act_fields(bias, k),
                  "in_steps": inputs[0].shape[0], "in_channels": inputs[0].shape[1],
                  "out_steps": outputs[0].shape[0], "kernel": a["kernel"],
                  "stride": a["stride"], "pad_left": a["pad_left"]}
        members = ",\n".join(f"    .{key} = {value}" for key, value in fields.items())
        definitions = (stored.text + bias_text
                       + f"static const kl_conv1d_params_t {c.symbol('params')} = {{\n"
                       f"{members},\n}};\n")
        buffers = {b.name: c.buffer(b.name) for b in self.buffers(node, inputs, outputs)}
        call = (f"    kl_conv1d_s16(&{c.symbol('params')}, {c.pointer(node.inputs[0])}, "
                f"{buffers.get('window', '0')}, {buffers['acc']}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
