"""The arena planner: blocks whose lifetimes overlap never share bytes, every block is aligned
to its element size, memory is reused when lifetimes do not overlap, and the planned size is
what the generated C's arena is."""

import itertools

import numpy as np
import pytest

from kiloml.deploy.codegen import generate_model
from kiloml.ir import quantize_model
from kiloml.ir.graph import Graph
from kiloml.ir.plan import arena_blocks, plan_arena
from kiloml.ops.base import Node

from .conftest import synthetic_inputs, synthetic_model


def _chain(sizes: list[int]) -> Graph:
    """x -> n0 -> n1 -> ...: normalize nodes (int16 values) alternating with fully connected
    ones (int32 values) of the given widths; each value is read by the next node only."""
    graph = Graph()
    graph.add_input("x", (sizes[0],))
    previous, width = "x", sizes[0]
    for i, size in enumerate(sizes):
        if i % 2:
            node = Node(f"n{i}", "fully_connected", [previous], [f"v{i}"],
                        weights={"weight": np.zeros((size, width)), "bias": np.zeros(size)})
            width = size
        else:
            node = Node(f"n{i}", "normalize", [previous], [f"v{i}"],
                        weights={"mean": np.zeros(width), "std": np.ones(width)})
        graph.add_node(node)
        previous = f"v{i}"
    graph.set_output(previous)
    return graph


def _assert_valid(graph: Graph) -> None:
    plan = plan_arena(graph)
    blocks = plan.blocks
    for block in blocks:
        offset = plan.offsets[(block.owner, block.buffer)]
        assert offset % block.align == 0
        assert offset + block.nbytes <= plan.peak
    for a, b in itertools.combinations(blocks, 2):
        if a.first <= b.last and b.first <= a.last:
            oa, ob = plan.offsets[(a.owner, a.buffer)], plan.offsets[(b.owner, b.buffer)]
            assert oa + a.nbytes <= ob or ob + b.nbytes <= oa, (a, b)
    assert plan.peak % 4 == 0


def test_values_that_do_not_live_together_share_memory():
    graph = _chain([10, 10, 10, 10, 10])
    plan = plan_arena(graph)
    _assert_valid(graph)
    # v0..v3 (int16, int32, int16, int32) live in the arena, v4 is the caller's output; only
    # two consecutive values are ever alive at once
    assert plan.peak == 20 + 40


@pytest.mark.parametrize("config", [dict(), dict(w_rank=3, u_rank=5, readout="mean"),
                                    dict(kind="fastrnn", hidden_size=7, u_rank=3),
                                    dict(frame_stack=4, w_rank=2, u_rank=4)])
def test_recurrent_models_plan_no_more_than_their_working_set(config):
    X = synthetic_inputs(8, 16, seed=0)
    graph = quantize_model(synthetic_model(X, **config), X)
    _assert_valid(graph)
    blocks = arena_blocks(graph)
    # the recurrent node's buffers and its output are alive together: nothing can be shared
    assert plan_arena(graph).peak == -(-sum(b.nbytes for b in blocks) // 4) * 4


def test_the_generated_arena_is_the_planned_size():
    X = synthetic_inputs(8, 16, seed=0)
    graph = quantize_model(synthetic_model(X, hidden_size=9, u_rank=3, readout="mean"), X)
    generated = generate_model(graph, "test")
    assert generated.scratch_bytes == plan_arena(graph).peak
    assert f"#define KILOML_SCRATCH_BYTES {generated.scratch_bytes}\n" in generated.header
    assert "sizeof(kiloml_scratch_t) == KILOML_SCRATCH_BYTES" in generated.source


def test_random_lifetimes_are_packed_without_overlap():
    rng = np.random.default_rng(0)
    for _ in range(30):
        sizes = [int(s) for s in rng.integers(1, 40, size=rng.integers(2, 9))]
        _assert_valid(_chain(sizes))


def test_a_residual_blocks_input_is_packed_below_its_maps():
    """A block's input x (4 B) lives across the block: stem s → x, expansion e (12 B),
    depthwise d (12 B), projection p (4 B) adding x, then q (12 B). The largest set alive
    together is x + e + d = 28 B. Largest-first puts e and d at 0 and 12, so x (placed
    after) goes to 24 and p to 28, a 32 B arena. The longest-lived-first order puts x at 0
    and packs the block in 28 B."""
    from kiloml.ir.plan import Block, plan_blocks

    blocks = [Block("s", "", 4, 1, 0, 1), Block("x", "", 4, 1, 1, 4),
              Block("e", "", 12, 1, 2, 3), Block("d", "", 12, 1, 3, 4),
              Block("p", "", 4, 1, 4, 5), Block("q", "", 12, 1, 5, 6)]
    plan = plan_blocks(blocks)
    assert plan.peak == 28 and plan.offsets[("x", "")] == 0
