"""``activation``: the C non-linearities (``kl_activation.c``, the planned forms of
``kl_activation.h`` and the layer kernel ``kl_activation_layer.c``) equal their numpy twins
(``kiloml.ops.activation``) on every int16 input at representative input Q-formats, in the
shipped host build and the instrumented fast and reference builds (which must reach every
branch of those files), and on a spread of inputs in every build of the harness. A test op
applies the layer kernel once per (function, Q-format) in one program. Also the op's float
forward against torch, its quantization rule and its errors."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.ir.quantize import quantize_graph
from kiloml.ir.simulate import simulate
from kiloml.ops.activation import apply_integer, output_frac_bits
from kiloml.ops.activation_layer import ActivationOp
from kiloml.ops.base import OPS, EmitContext, Emitted, Node, Op, Value
from kiloml.ops.constants import ACTIVATION_IDS

from .kernel_coverage import branch_coverage, summary
from .op_harness import (
    BUILDS,
    SANITIZED,
    SWEEP_BUILDS,
    LibraryObjects,
    assert_c_equals_spec,
    extreme_inputs,
    single_op_graph,
)

FUNCTIONS = tuple(ACTIVATION_IDS)
#: Input Q-formats: the ends of the kernel's range, and around the tables' Q11/Q12 and Q15.
FORMATS = (0, 4, 11, 12, 15, 20, 24)
ALL_INT16 = np.arange(-32768, 32768)
COVERED = ("kl_activation.c", "kl_activation.h", "kl_activation_layer.c")


class ActivationProbeOp(Op):
    """Test op: the int16 input through ``kl_activation_layer_s16`` once per (function,
    Q-format) of ``attrs["functions"]``, the outputs one after the other."""

    name = "activation_probe"
    c_files = ActivationOp.c_files

    def infer(self, node, inputs):
        return [Value(node.outputs[0], (len(node.attrs["functions"]) * inputs[0].count,),
                      "int16")]

    def simulate(self, node, inputs, in_values, out_values):
        x = np.asarray(inputs[0], dtype=np.int64)
        return [np.concatenate([apply_integer(f, x, q) for f, q in node.attrs["functions"]],
                               axis=1)]

    def flash_bytes(self, node):
        return 0

    def macs(self, node, inputs, outputs):
        return 0

    def emit(self, node, inputs, outputs, c: EmitContext) -> Emitted:
        count, definitions, calls = inputs[0].count, [], []
        for i, (function, frac_bits) in enumerate(node.attrs["functions"]):
            params = c.symbol(f"params{i}")
            definitions.append(f"static const kl_activation_layer_params_t {params} = "
                               f"{{ {ACTIVATION_IDS[function]}, {frac_bits}, {count} }};\n")
            calls.append(f"    kl_activation_layer_s16(&{params}, x, y + {i * count});\n")
        return Emitted("".join(definitions), "".join(calls))


@pytest.fixture
def probe(monkeypatch):
    monkeypatch.setitem(OPS, ActivationProbeOp.name, ActivationProbeOp())

    def graph(inputs: int, functions: list[tuple[str, int]]):
        node = Node("act", ActivationProbeOp.name, ["x"], ["y"], {"functions": functions})
        graph = single_op_graph(node, (inputs,))
        graph.values["y"].frac_bits = 0
        return graph

    return graph


def test_c_equals_spec_on_every_int16_input_and_reaches_every_branch(probe, tmp_path,
                                                                     require_gcc):
    library = LibraryObjects(tmp_path / "library")
    graph = probe(ALL_INT16.size, [(f, q) for f in FUNCTIONS for q in FORMATS])
    assert_c_equals_spec(graph, ALL_INT16[None].astype(np.int16), tmp_path, SWEEP_BUILDS,
                         library=library)
    files = branch_coverage(library.coverage_objects())
    assert not any(files[name].untaken() for name in COVERED), summary(files, COVERED)


def test_c_equals_spec_in_every_build(probe, tmp_path, require_gcc, require_cortex_m):
    inputs = np.concatenate([np.arange(-32768, -32000, 7), np.arange(-600, 600),
                             np.arange(32000, 32768, 7), [32767]])
    graph = probe(inputs.size, [(f, q) for f in FUNCTIONS for q in (0, 12, 15, 24)])
    assert_c_equals_spec(graph, np.stack([inputs, inputs[::-1]]).astype(np.int16), tmp_path,
                         BUILDS)


@pytest.mark.parametrize("function,frac_bits", [("sigmoid", 11), ("relu", 3)])
def test_op_c_equals_spec(function, frac_bits, tmp_path, require_gcc):
    node = Node("act", "activation", ["x"], ["y"], {"function": function})
    graph = single_op_graph(node, (5, 7), input_frac_bits=frac_bits)
    quantized = quantize_graph(graph, {"x": 2.0 ** (14 - frac_bits)})
    assert quantized.values["x"].frac_bits == frac_bits
    assert_c_equals_spec(quantized, extreme_inputs((5, 7), 8, 0), tmp_path,
                         (("host", "fast"), ("host", "reference")) + SANITIZED)


TORCH = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
         "quantTanh": torch.nn.functional.hardtanh,
         "quantSigm": lambda x: torch.nn.functional.hardtanh((x + 1) / 2, 0.0, 1.0)}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_float_forward_equals_torch_and_the_quantized_op_follows_it(function):
    X = np.random.default_rng(0).normal(size=(200, 6)) * 3
    graph = single_op_graph(Node("act", "activation", ["x"], ["y"], {"function": function}),
                            (6,))
    floats = ActivationOp().float_forward(graph.nodes[0], [X], lambda key, value: None)[0]
    np.testing.assert_allclose(floats, TORCH[function](torch.from_numpy(X)).numpy(),
                               atol=1e-12)
    quantized = quantize_graph(graph, {"x": float(np.abs(X).max()), "y": 1.0})
    in_format = quantized.values["x"].frac_bits
    assert quantized.values["y"].frac_bits == output_frac_bits(function, in_format)
    x = np.round(X * 2.0**in_format).astype(np.int64)
    integer = simulate(quantized, x) * 2.0 ** -quantized.values["y"].frac_bits
    reference = TORCH[function](torch.from_numpy(x * 2.0**-in_format)).numpy()
    assert np.abs(integer - reference).max() < 5e-4


def test_unknown_function_and_unsupported_format_are_errors():
    with pytest.raises(KilomlError, match="unknown activation 'gelu'"):
        single_op_graph(Node("act", "activation", ["x"], ["y"], {"function": "gelu"}), (3,))
    node = Node("act", "activation", ["x"], ["y"], {"function": "tanh"})
    graph = single_op_graph(node, (3,), input_frac_bits=25)
    inputs, outputs = graph.node_values(node)
    with pytest.raises(KilomlError, match="Q25, the kernel takes Q0..Q24"):
        ActivationOp().quantize(node, inputs, outputs, lambda key: 0.0, 16)
