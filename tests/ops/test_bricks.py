"""``bricks_fastrnn``, ``bricks_gru``, ``bricks_lstm``: the inner recurrent op run on every
brick. The spec equals the inner op's spec on each brick alone; the C (the inner kernel called
once per brick) equals the spec in every build on the host and Cortex-M4/M3, with a poisoned
arena; flash and buffers are one brick's, MACs the inner op's times the bricks."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.ir import quantize_model
from kiloml.ir.graph import Graph
from kiloml.models import build_model
from kiloml.nn.sharnn import ShaRNNConfig
from kiloml.ops import get_op
from kiloml.ops.base import Node, Value

from .op_harness import BUILDS, assert_c_equals_spec, extreme_inputs

STEPS, FEATURES, BRICK = 12, 3, 4


def _graph(cell: str, upper: str, bits: int, seed: int = 0) -> Graph:
    torch.manual_seed(seed)
    model = build_model(ShaRNNConfig(kind="sharnn", input_size=FEATURES, num_classes=3,
                                     brick_size=BRICK, cell=cell, hidden_size=5,
                                     upper_cell=upper, upper_hidden_size=4,
                                     readout="mean" if seed % 2 else "last"))
    model.set_normalization(torch.tensor([1.0, -2.0, 0.0]), torch.tensor([0.5, 2.0, 1.0]))
    x = np.random.default_rng(seed).normal(size=(32, STEPS, FEATURES)) * [2.0, 4.0, 1.0]
    return quantize_model(model.eval(), x + [1.0, -2.0, 0.0], bits)


@pytest.mark.parametrize("cell, upper, bits, builds", [
    ("gru", "lstm", 16, BUILDS),
    ("lstm", "fastrnn", 8, (("host", "sanitize"), ("cortex-m3", "fast"))),
    ("fastrnn", "gru", 16, (("host", "sanitize"), ("cortex-m4", "fast")))])
def test_spec_is_the_inner_spec_per_brick_and_c_equals_it(cell, upper, bits, builds, tmp_path,
                                                          require_gcc, require_cortex_m):
    graph = _graph(cell, upper, bits, seed=len(cell))
    node = graph.nodes[0]
    op, inner = get_op(node.op), get_op(cell)
    assert node.op == f"bricks_{cell}"
    x = extreme_inputs((STEPS, FEATURES), 8, seed=3)
    in_values, out_values = graph.node_values(node)
    got = op.simulate(node, [x], in_values, out_values)[0]
    brick_in = [Value("x", (BRICK, FEATURES), "int16", in_values[0].frac_bits)]
    brick_out = [Value("y", (5,), "int16", out_values[0].frac_bits)]
    for b in range(STEPS // BRICK):
        alone = inner.simulate(node, [x[:, b * BRICK:(b + 1) * BRICK]], brick_in, brick_out)[0]
        assert np.array_equal(got[:, b], alone)
    assert op.flash_bytes(node) == inner.flash_bytes(node)
    assert op.buffers(node, in_values, out_values) == inner.buffers(node, brick_in, brick_out)
    assert op.macs(node, in_values, out_values) == 3 * inner.macs(node, brick_in, brick_out)
    assert_c_equals_spec(graph, x, tmp_path, builds)


def test_a_brick_that_does_not_divide_the_steps_is_refused():
    node = Node("b", "bricks_fastrnn", ["x"], ["y"], {"brick": 5}, {}, "lower")
    with pytest.raises(KilomlError, match="lower: brick size 5 must divide the 12 steps"):
        get_op("bricks_fastrnn").infer(node, [Value("x", (12, 3))])
