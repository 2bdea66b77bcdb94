"""``fully_connected``: the C kernel (``kl_fc.c``) equals the spec for int8 and int16 weights in
every storage, weight shifts inside and outside 1..31, bias shifts on both sides of the 32-bit
range of ``kl_vector_get`` (-16..30) and outputs that saturate int32 both ways; the sweep's
instrumented builds must reach every branch of ``kl_fc.c`` and ``kl_matvec.h``. Also the
op's float forward against ``nn.Linear`` and its quantization rule."""

import numpy as np
import pytest
import torch

from kiloml.ir.calibrate import run_float
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower
from kiloml.ir.quantize import quantize_graph, quantize_input
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor
from kiloml.ops.matrix import emit_matrix

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
from .test_matvec import random_matrix

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
#: (weight bits, bias bits, rows, cols, density, weight shift, bias shift, kernel)
CASES = [
    (16, 16, 5, 7, 1, 1, -20, "kl_kernel_dense_s16_narrow"),
    (8, 8, 3, 9, 1, 14, 31, "kl_kernel_dense_s8_interleaved"),
    (8, 16, 4, 3, 1, 10, -16, "kl_kernel_dense_s8_narrow"),
    (16, 8, 6, 40, 0.2, 20, 30, "kl_kernel_csr_s16_u8"),
    (8, 8, 2, 600, 1, 0, 5, "kl_kernel_rows"),
    (16, 16, 3, 11, 1, -4, -17, "kl_kernel_dense_s16"),
    (8, 16, 4, 300, 0.1, 3, -8, "kl_kernel_csr_s8_u16"),
]
COVERED = ("kl_fc.c", "kl_matvec.h")


def fc_graph(seed: int, weight_bits: int, bias_bits: int, rows: int, cols: int,
             density: float, weight_shift: int, bias_shift: int):
    rng = np.random.default_rng(seed)
    node = Node("fc", "fully_connected", ["x"], ["y"],
                weights={"weight": np.zeros((rows, cols)), "bias": np.zeros(rows)})
    low, high = -(1 << (bias_bits - 1)), 1 << (bias_bits - 1)
    node.q = {"weight": QTensor(random_matrix(rng, weight_bits, rows, cols, density), 0,
                                weight_bits),
              "bias": QTensor(rng.integers(low, high, rows), 0, bias_bits)}
    node.consts = {"shift_weight": weight_shift, "shift_bias": bias_shift}
    graph = single_op_graph(node, (cols,), bits=weight_bits)
    graph.values["y"].frac_bits = 0
    return graph


def test_c_equals_spec_over_the_sweep_and_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    outputs = []
    for seed, (*settings, kernel) in enumerate(CASES):
        graph = fc_graph(seed, *settings)
        node = graph.nodes[0]
        assert emit_matrix("w", node.q["weight"], 1).kernel == kernel
        inputs = extreme_inputs(graph.values["x"].shape, 6, seed)
        outputs.append(simulate(graph, inputs).reshape(-1))
        assert_c_equals_spec(graph, inputs, tmp_path / f"case{seed}", SWEEP_BUILDS,
                             library=library)
    assert {INT32_MIN, INT32_MAX} <= set(np.concatenate(outputs).tolist())
    files = branch_coverage(library.coverage_objects())
    assert not any(files[name].untaken() for name in COVERED), summary(files, COVERED)


@pytest.mark.parametrize("case", [0, 1, 5])
def test_c_equals_spec_in_every_build(case, tmp_path, require_gcc, require_cortex_m):
    graph = fc_graph(case, *CASES[case][:-1])
    builds = BUILDS if case == 0 else BUILDS[:1] + SANITIZED + BUILDS[3:5]
    assert_c_equals_spec(graph, extreme_inputs(graph.values["x"].shape, 6, case), tmp_path,
                         builds)


def _linear_graph(layer: torch.nn.Linear) -> Graph:
    graph = Graph()
    graph.add_input("x", (layer.in_features,))
    (output,) = lower(layer, "head", graph, ["x"], output="logits")
    graph.set_output(output)
    return graph


@pytest.mark.parametrize("bits,tolerance", [(16, 2e-4), (8, 0.03)])
def test_float_forward_equals_the_linear_layer_and_the_quantized_op_follows_it(bits,
                                                                               tolerance):
    torch.manual_seed(0)
    layer = torch.nn.Linear(9, 4).double()
    X = np.random.default_rng(0).normal(size=(100, 9)) * 2
    graph = _linear_graph(layer)
    ranges: dict[str, float] = {}
    floats = run_float(graph, X, ranges)["logits"]
    with torch.no_grad():
        np.testing.assert_allclose(floats, layer(torch.from_numpy(X)).numpy(), atol=1e-12)
    quantized = quantize_graph(graph, ranges, bits)
    integer = simulate(quantized, quantize_input(quantized, X))
    integer = integer * 2.0 ** -quantized.values["logits"].frac_bits
    assert np.abs(integer - floats).max() < tolerance * np.abs(floats).max()
