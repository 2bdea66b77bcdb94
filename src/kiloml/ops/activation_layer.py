"""Elementwise non-linearity ``y = f(x)`` as an op of its own (``kl_activation_layer.c``), for
layers that apply one between two others (an MLP's hidden layer, a convolution's output).

Input ``x`` int16 of any shape in Q(in), Q(in) in 0..24; output int16 of the same shape in
Q15 for the bounded functions (sigmoid, tanh, quantSigm, quantTanh) and in Q(in) for relu.
Integer spec: :func:`kiloml.ops.activation.apply_integer` elementwise, the functions the
recurrent kernels use.
"""

import numpy as np

from kiloml.errors import KilomlError
from kiloml.ops.activation import FLOAT_FUNCTIONS, activation_id, apply_integer, output_frac_bits
from kiloml.ops.base import EmitContext, Emitted, Node, Op, Value, register

#: Input Q-formats the kernel takes (``kl_activation_prepare``).
INPUT_FRAC_BITS = (0, 24)


@register
class ActivationOp(Op):
    """``attrs``: ``function`` (sigmoid, tanh, quantSigm, quantTanh or relu)."""

    name = "activation"
    c_files = ("kl_activation_layer.h", "kl_activation_layer.c", "kl_activation.h",
               "kl_activation.c")

    def infer(self, node: Node, inputs: list[Value]) -> list[Value]:
        if node.attrs.get("function") not in FLOAT_FUNCTIONS:
            raise KilomlError(f"{node.path or node.name}: unknown activation "
                              f"{node.attrs.get('function')!r}; choose from "
                              f"{', '.join(FLOAT_FUNCTIONS)}")
        return [Value(node.outputs[0], inputs[0].shape, "int16")]

    def float_forward(self, node, inputs, record):
        return [FLOAT_FUNCTIONS[node.attrs["function"]](np.asarray(inputs[0], dtype=np.float64))]

    def quantize(self, node, inputs, outputs, ranges, bits):
        frac_bits = inputs[0].frac_bits
        low, high = INPUT_FRAC_BITS
        if not low <= frac_bits <= high:
            raise KilomlError(f"{node.path or node.name}: activation input in Q{frac_bits}, "
                              f"the kernel takes Q{low}..Q{high}")
        node.consts = {"input_frac_bits": frac_bits}
        outputs[0].frac_bits = output_frac_bits(node.attrs["function"], frac_bits)

    def simulate(self, node, inputs, in_values, out_values):
        return [apply_integer(node.attrs["function"], np.asarray(inputs[0], dtype=np.int64),
                              node.consts["input_frac_bits"])]

    def macs(self, node, inputs, outputs):
        return 0

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        params = c.symbol("params")
        definitions = (f"static const kl_activation_layer_params_t {params} = "
                       f"{{ {activation_id(node.attrs['function'])}, "
                       f"{node.consts['input_frac_bits']}, {inputs[0].count} }};\n")
        call = (f"    kl_activation_layer_s16(&{params}, {c.pointer(node.inputs[0])}, "
                f"{c.pointer(node.outputs[0])});\n")
        return Emitted(definitions, call)
