"""``projection``: the C kernel (``kl_projection.c``) equals the spec for int8 and int16
weights in every storage (dense, interleaved, narrow, CSR with uint8 and uint16 indices, rows
longer than the int8 limit), weight shifts inside and outside 1..31, int16 bias shifts on both
sides of ``kl_vector_get``'s 32-bit range, and outputs that saturate int16 both ways; the
sweep's instrumented builds reach every branch of ``kl_projection.c``. Also the float forward
and the quantization rule against a float projection."""

import numpy as np
import pytest

from kiloml.ir.calibrate import run_float
from kiloml.ir.graph import Graph
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

#: (weight bits, rows, cols, density, weight shift, bias shift, kernel the matrix names)
CASES = [
    (16, 5, 7, 1, 12, -20, "kl_kernel_dense_s16_narrow"),
    (8, 3, 9, 1, 14, 31, "kl_kernel_dense_s8_interleaved"),
    (8, 4, 3, 1, 10, -16, "kl_kernel_dense_s8_narrow"),
    (16, 6, 40, 0.2, 20, 30, "kl_kernel_csr_s16_u8"),
    (8, 2, 600, 1, 0, 5, "kl_kernel_rows"),
    (16, 3, 11, 1, -4, -17, "kl_kernel_dense_s16"),
    (8, 4, 300, 0.1, 3, -8, "kl_kernel_csr_s8_u16"),
]
COVERED = ("kl_projection.c",)


def projection_graph(seed: int, bits: int, rows: int, cols: int, density: float,
                     weight_shift: int, bias_shift: int) -> Graph:
    rng = np.random.default_rng(seed)
    node = Node("projection", "projection", ["x"], ["y"],
                weights={"weight": np.zeros((rows, cols)), "bias": np.zeros(rows)})
    node.q = {"weight": QTensor(random_matrix(rng, bits, rows, cols, density), 0, bits),
              "bias": QTensor(rng.integers(-32768, 32768, rows), 0, 16)}
    node.consts = {"shift_weight": weight_shift, "shift_bias": bias_shift}
    graph = single_op_graph(node, (cols,), bits=bits)
    graph.values["y"].frac_bits = 0
    return graph


def test_c_equals_spec_over_the_sweep_and_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    outputs = []
    for seed, (*settings, kernel) in enumerate(CASES):
        graph = projection_graph(seed, *settings)
        assert emit_matrix("w", graph.nodes[0].q["weight"], 1).kernel == kernel
        inputs = extreme_inputs(graph.values["x"].shape, 6, seed)
        outputs.append(simulate(graph, inputs).reshape(-1))
        assert_c_equals_spec(graph, inputs, tmp_path / f"case{seed}", SWEEP_BUILDS,
                             library=library)
    assert {-32768, 32767} <= set(np.concatenate(outputs).tolist())
    files = branch_coverage(library.coverage_objects())
    assert not any(files[name].untaken() for name in COVERED), summary(files, COVERED)


@pytest.mark.parametrize("case", [0, 3, 6])
def test_c_equals_spec_in_every_build(case, tmp_path, require_gcc, require_cortex_m):
    graph = projection_graph(case, *CASES[case][:-1])
    builds = BUILDS if case == 0 else BUILDS[:1] + SANITIZED + BUILDS[3:5]
    assert_c_equals_spec(graph, extreme_inputs(graph.values["x"].shape, 6, case), tmp_path,
                         builds)


@pytest.mark.parametrize("bits,tolerance", [(16, 1e-3), (8, 0.03)])
def test_float_forward_is_the_affine_map_and_the_quantized_op_follows_it(bits, tolerance):
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(5, 30)) * (rng.random((5, 30)) < 0.3)
    bias = rng.normal(size=5) * 20  # a folded mean: larger than the products
    X = rng.uniform(0, 1, size=(200, 1, 30))
    graph = Graph()
    graph.add_input("x", (1, 30))
    graph.add_node(Node("projection", "projection", ["x"], ["p"], {},
                        {"weight": weight, "bias": bias}))
    graph.set_output("p")
    ranges: dict[str, float] = {}
    floats = run_float(graph, X, ranges)["p"]
    np.testing.assert_allclose(floats, X[:, 0] @ weight.T + bias, atol=1e-12)
    quantized = quantize_graph(graph, ranges, bits)
    assert quantized.nodes[0].q["bias"].bits == 16  # the bias stays int16 at int8 weights
    integer = simulate(quantized, quantize_input(quantized, X))
    integer = integer * 2.0 ** -quantized.values["p"].frac_bits
    assert np.abs(integer - floats).max() < tolerance * np.abs(floats).max()
