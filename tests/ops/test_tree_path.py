"""``tree_path``: the C kernel (``kl_tree_path.c``) equals the spec for int8 and int16 node
matrices in dense and CSR storage, trees of depth 0, 1 and 3, both branches (and ``theta . p
== 0``, which goes right), tanh inputs in several Q-formats, rescaling shifts of either sign
and scores that saturate; the sweep's instrumented builds reach every branch of
``kl_tree_path.c``. Also the float forward against Bonsai's evaluation-mode scores and the
quantized op against the float one."""

import numpy as np
import pytest
import torch

from kiloml.ir.calibrate import run_float
from kiloml.ir.graph import Graph
from kiloml.ir.quantize import quantize_graph, quantize_input
from kiloml.ir.simulate import simulate
from kiloml.nn.bonsai import Bonsai, BonsaiConfig
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor, quantize_weight
from kiloml.ops.tree_path import branch_weights, hard_path

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
#: (bits, depth, classes, dims, density, W shift, V shift, v_frac, shift_y)
CASES = [
    (16, 2, 3, 5, 1, 20, 18, 12, 17),
    (8, 1, 4, 40, 0.2, 8, 10, 8, 10),
    (16, 0, 2, 3, 1, 14, 20, 0, 0),
    (8, 3, 3, 6, 1, 0, 4, 20, -2),
    (16, 1, 5, 300, 0.1, 16, 22, 15, 30),
]
COVERED = ("kl_tree_path.c",)


def tree_graph(seed: int, bits: int, depth: int, classes: int, dims: int, density: float,
               shift_w: int, shift_v: int, v_frac: int, shift_y: int) -> Graph:
    rng = np.random.default_rng(seed)
    nodes, internal = 2 ** (depth + 1) - 1, 2 ** depth - 1
    node = Node("tree", "tree_path", ["x"], ["y"], {"depth": depth},
                {"W": np.zeros((nodes, classes, dims)), "V": np.zeros((nodes, classes, dims)),
                 "theta": np.zeros((max(internal, 1), dims))})
    node.consts = {"w_frac": 0, "v_frac": v_frac, "shift_y": shift_y}
    for k in range(nodes):
        for name, shift in (("W", shift_w), ("V", shift_v)):
            node.q[f"{name}.{k}"] = QTensor(random_matrix(rng, bits, classes, dims, density), 0,
                                            bits)
            node.consts[f"shift_{name}.{k}"] = shift
    if depth:
        theta = random_matrix(rng, bits, internal, dims, density)
        theta[0, :] = 0  # the shallower trees: theta . p == 0 at the root, always right
        theta[0, 0] = 0 if depth < 3 else 1
        node.q["theta"] = QTensor(theta, 0, bits)
    graph = single_op_graph(node, (dims,), bits=bits)
    graph.values["y"].frac_bits = 0
    return graph


def test_c_equals_spec_over_the_sweep_and_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    outputs = []
    for seed, case in enumerate(CASES):
        graph = tree_graph(seed, *case)
        inputs = extreme_inputs(graph.values["x"].shape, 12, seed)
        outputs.append(simulate(graph, inputs).reshape(-1))
        assert_c_equals_spec(graph, inputs, tmp_path / f"case{seed}", SWEEP_BUILDS,
                             library=library)
    assert {INT32_MIN, INT32_MAX} <= set(np.concatenate(outputs).tolist())
    files = branch_coverage(library.coverage_objects())
    assert not any(files[name].untaken() for name in COVERED), summary(files, COVERED)


@pytest.mark.parametrize("case", [0, 1, 3])
def test_c_equals_spec_in_every_build(case, tmp_path, require_gcc, require_cortex_m):
    graph = tree_graph(case, *CASES[case])
    builds = BUILDS if case == 0 else BUILDS[:1] + SANITIZED + BUILDS[3:5]
    assert_c_equals_spec(graph, extreme_inputs(graph.values["x"].shape, 8, case), tmp_path,
                         builds)


@pytest.mark.parametrize("bits,tolerance", [(16, 5e-3), (8, 0.06)])
def test_float_forward_is_bonsais_and_the_quantized_op_follows_it(bits, tolerance):
    torch.manual_seed(0)
    model = Bonsai(BonsaiConfig("bonsai", 6, 3, projection_dim=6, depth=2, sigma=0.7)).double()
    model.eval()
    P = np.random.default_rng(0).normal(size=(400, 6))
    with torch.no_grad():
        model.Z.copy_(6 * torch.eye(6, dtype=torch.float64))  # p = Z x / d = the input
        expected = model(torch.from_numpy(P)).numpy()
    graph = Graph()
    graph.add_input("x", (6,))
    graph.add_node(Node("tree", "tree_path", ["x"], ["y"], {"depth": 2},
                        {"W": model.W.detach().numpy(), "V": 0.7 * model.V.detach().numpy(),
                         "theta": model.theta.detach().numpy()}))
    graph.set_output("y")
    ranges: dict[str, float] = {}
    floats = run_float(graph, P, ranges)["y"]
    np.testing.assert_allclose(floats, expected, atol=1e-12)
    quantized = quantize_graph(graph, ranges, bits)
    integer = simulate(quantized, quantize_input(quantized, P))
    integer = integer * 2.0 ** -quantized.values["y"].frac_bits
    error = np.abs(integer - floats).max(1)
    # inputs next to a branching hyperplane may take the other branch once quantized
    assert np.mean(error < tolerance * np.abs(floats).max()) >= 0.97


@pytest.mark.parametrize("bits", [8, 16])
def test_theta_rows_keep_their_signs_when_one_row_is_far_smaller(bits):
    # ten-class MNIST gave a root row 250x smaller than the others': one scale for the matrix
    # rounded it to zeros and the deployed tree sent every input right
    theta = np.array([[0.0015, 0, 0, -0.0044], [0, -0.8167, 0.6067, 0], [-1.0959, 0, 0.5329, 0]])
    q = branch_weights(theta, bits)
    top = (1 << (bits - 1)) - 1
    np.testing.assert_array_equal(np.abs(q.values).max(1), [top, top, top])
    np.testing.assert_array_equal(np.sign(q.values), np.sign(theta))
    p = np.random.default_rng(0).normal(size=(2000, 4)) * 100
    p = np.rint(p).astype(np.int64)
    paths, exact = hard_path(q.values, p, 2), hard_path(theta, p, 2)
    assert np.mean(exact[:, 1] == 1) > 0.4  # both of the root's branches are taken
    assert np.mean((paths == exact).all(1)) > 0.99  # int8 rounds the rows' ratios
    one_scale = hard_path(quantize_weight(theta, bits).values, p, 2)
    assert (one_scale[:, 1] == 2).all() if bits == 8 else np.mean(one_scale == exact) > 0.99
    assert branch_weights(np.zeros((1, 4)), bits).values.tolist() == [[0, 0, 0, 0]]
