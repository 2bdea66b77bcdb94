"""``rbf``: the C kernel (``kl_rbf.c``) equals the spec for int8 and int16 prototypes, both
alignments (the input or the prototypes shifted to the coarser format), exponent shifts
``shift_u > 0`` and ``<= 0`` (with and without the clamp), distances of 0, inside the table and
beyond it, and saturating inputs; the sweep's instrumented builds reach every branch of
``kl_rbf.c``. The exp tables in ``kl_rbf.c`` are the spec's, the documented error bound holds
over every exponent, and the float forward and quantization follow ProtoNN's similarities."""

import re

import numpy as np
import pytest
import torch

from kiloml.deploy.codegen import library_file
from kiloml.ir.calibrate import run_float
from kiloml.ir.graph import Graph
from kiloml.ir.quantize import quantize_graph, quantize_input
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor
from kiloml.ops.rbf import E_HI, E_INT, E_LO, OUTPUT_FRAC_BITS, U_LIMIT, exp_neg_q8

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

#: (prototype bits, count, dims, shift_p, shift_b, shift_u, gamma2)
CASES = [
    (16, 4, 7, 0, 2, 44, 20000),
    (8, 5, 5, 3, 0, 30, 300),
    (16, 3, 9, 0, 0, 0, 1),
    (8, 6, 4, 0, 0, -3, 2),
    (16, 2, 1, 5, 0, 12, 32767),
]
COVERED = ("kl_rbf.c",)


def rbf_graph(seed: int, bits: int, count: int, dims: int, shift_p: int, shift_b: int,
              shift_u: int, gamma2: int) -> Graph:
    rng = np.random.default_rng(seed)
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    node = Node("rbf", "rbf", ["x"], ["y"], weights={"prototypes": np.zeros((count, dims)),
                                                     "gamma2": np.ones(1)})
    node.q = {"prototypes": QTensor(rng.integers(low, high + 1, (count, dims)), 0, bits),
              "gamma2": QTensor(np.array([gamma2]), 0, 16)}
    node.consts = {"shift_p": shift_p, "shift_b": shift_b, "shift_u": shift_u}
    graph = single_op_graph(node, (dims,), bits=bits)
    graph.values["y"].frac_bits = OUTPUT_FRAC_BITS
    return graph


def rbf_inputs(graph: Graph, seed: int) -> np.ndarray:
    """Extreme and random inputs, each prototype itself (distance 0 when nothing is shifted)
    and each prototype plus small noise (distances inside the table)."""
    rng = np.random.default_rng(seed)
    prototypes = graph.nodes[0].q["prototypes"].values
    near = [prototypes + rng.integers(-k, k + 1, prototypes.shape) for k in (1, 3, 20)]
    inputs = np.concatenate([prototypes, *near]).clip(-32768, 32767)
    return np.concatenate([extreme_inputs(graph.values["x"].shape, 4, seed),
                           inputs.astype(np.int16)])


def test_c_equals_spec_over_the_sweep_and_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    outputs = []
    for seed, case in enumerate(CASES):
        graph = rbf_graph(seed, *case)
        inputs = rbf_inputs(graph, seed)
        outputs.append(simulate(graph, inputs).reshape(-1))
        assert_c_equals_spec(graph, inputs, tmp_path / f"case{seed}", SWEEP_BUILDS,
                             library=library)
    values = np.concatenate(outputs)
    assert 0 in values and 16384 in values and ((values > 0) & (values < 16384)).sum() > 20
    files = branch_coverage(library.coverage_objects())
    assert not any(files[name].untaken() for name in COVERED), summary(files, COVERED)


@pytest.mark.parametrize("case", [0, 3])
def test_c_equals_spec_in_every_build(case, tmp_path, require_gcc, require_cortex_m):
    graph = rbf_graph(case, *CASES[case])
    builds = BUILDS if case == 0 else BUILDS[:1] + SANITIZED + BUILDS[3:5]
    assert_c_equals_spec(graph, rbf_inputs(graph, case), tmp_path, builds)


def test_the_c_tables_are_the_specs():
    text = library_file("kl_rbf.c").read_text()
    for name, table in (("kl_exp_int", E_INT), ("kl_exp_hi", E_HI), ("kl_exp_lo", E_LO)):
        body = re.search(rf"{name}\[\d+\] KL_CONST = \{{([^}}]*)\}}", text).group(1)
        assert [int(v) for v in body.replace("\n", " ").split(",")] == table.tolist()


def test_the_documented_error_bound_holds_over_every_exponent():
    q12 = np.arange(0, 2 * U_LIMIT * 16)  # exponents in Q12, rescaled to Q8 as the op does
    u = (q12 + 8) >> 4
    got = exp_neg_q8(u) * 2.0**-OUTPUT_FRAC_BITS
    exact = np.exp(-q12 / 4096.0)
    error = np.abs(got - exact)
    assert np.all(error <= 0.002 * exact + 2.0**-13)
    assert error.max() > 0.001  # the bound is not loose by an order of magnitude
    assert exp_neg_q8(np.array([0]))[0] == 16384 and exp_neg_q8(np.array([U_LIMIT]))[0] == 0


@pytest.mark.parametrize("bits,tolerance", [(16, 2e-3), (8, 0.05)])
def test_float_forward_is_protonns_similarity_and_the_quantized_op_follows_it(bits, tolerance):
    rng = np.random.default_rng(1)
    prototypes, gamma = rng.normal(size=(6, 4)), 0.4
    P = prototypes[rng.integers(0, 6, 300)] + rng.normal(size=(300, 4)) * 0.8
    graph = Graph()
    graph.add_input("x", (4,))
    graph.add_node(Node("rbf", "rbf", ["x"], ["s"], {},
                        {"prototypes": prototypes, "gamma2": np.array([gamma**2])}))
    graph.set_output("s")
    ranges: dict[str, float] = {}
    floats = run_float(graph, P, ranges)["s"]
    p, b = torch.from_numpy(P), torch.from_numpy(prototypes)
    expected = torch.exp(-gamma**2 * ((p[:, :, None] - b.T[None]) ** 2).sum(1))
    np.testing.assert_allclose(floats, expected.numpy(), atol=1e-12)
    quantized = quantize_graph(graph, ranges, bits)
    integer = simulate(quantized, quantize_input(quantized, P)) * 2.0**-OUTPUT_FRAC_BITS
    assert np.abs(integer - floats).max() < tolerance
