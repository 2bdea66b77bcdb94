"""Schedules of an image graph (``ir/schedule.py``, ``ir/tiled.py``): the planner against
hand-counted small networks for layer-by-layer, patch-based and RNNPool schedules; the patch
schedule gives the layer-by-layer integers; C equals the simulator on host, Cortex-M4 and
Cortex-M3 under each schedule, with the M4's painted stack within the stated one; bad
schedules are one-line errors."""

import numpy as np
import pytest
import torch
from torch import nn

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import calibrate
from kiloml.ir.lower import lower_image_model
from kiloml.ir.quantize import quantize_graph, quantize_input
from kiloml.ir.schedule import apply_schedule, schedule_figures
from kiloml.ir.simulate import simulate_values
from kiloml.ir.tiled import input_span, patch_plan
from kiloml.nn.rnnpool import RNNPoolLayer
from tests.ops.op_harness import assert_c_equals_spec

SHAPE = (3, 12, 12)


def tiny_cnn() -> nn.Sequential:
    """3x12x12 → stem 4x6x6 → depthwise 4x6x6 → pointwise 8x6x6 → max pool 8x3x3 → head."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4), nn.ReLU6(),
        nn.Conv2d(4, 4, 3, 1, 1, groups=4, bias=False), nn.BatchNorm2d(4), nn.ReLU6(),
        nn.Conv2d(4, 8, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6(),
        nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


def tiny_rnnpool() -> nn.Sequential:
    """3x12x12 → RNNPool (patch 4, stride 4, h1 4, h2 2) int16 8x3x3 → conv 1x1 8x3x3 →
    head."""
    return nn.Sequential(RNNPoolLayer(3, 4, 4, 4, 2), nn.Conv2d(8, 8, 1), nn.ReLU6(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))


def quantized(model: nn.Module, seed: int = 0):
    """The int8 graph of ``model`` (random weights, seed ``seed``) calibrated on 64 random
    images, and 6 integer test inputs."""
    torch.manual_seed(seed)
    model = model.eval()
    rng = np.random.default_rng(seed)
    graph = lower_image_model(model, SHAPE, 2)
    q = quantize_graph(graph, calibrate(graph, rng.normal(size=(64, *SHAPE))), bits=8)
    return q, quantize_input(q, rng.normal(size=(6, *SHAPE)))


@pytest.fixture(scope="module")
def cnn():
    return quantized(tiny_cnn())


@pytest.fixture(scope="module")
def pooled():
    return quantized(tiny_rnnpool(), seed=1)


def test_input_span_is_the_receptive_field_clipped_to_the_map():
    # output rows [0, 3) of a 3x3 stride-2 padding-1 conv read rows -1..5 of 12: 0..5, 1 pad
    assert input_span(0, 3, 3, 2, 1, 12) == (0, 6, 1, 0)
    assert input_span(3, 6, 3, 2, 1, 12) == (5, 12, 0, 0)
    assert input_span(3, 6, 3, 1, 1, 6) == (2, 6, 0, 1)


def test_layer_by_layer_peak_is_the_hand_counted_pair(cnn):
    """stem 144 B + depthwise 144 B, depthwise + pointwise 288 B (432), pointwise + pool 72 B:
    the peak is the depthwise and pointwise maps, 432 B."""
    q, _ = cnn
    assert schedule_figures(q)["arena_bytes"] == 432


def test_patch_plan_is_the_hand_counted_tile_working_set(cnn):
    """Patch 3x3 of the 6x6 pointwise map: 4 tiles. The bottom-right tile reads input rows
    3..11 (9 rows: the stem's rows 2..5 for the depthwise's rows 3..5 with one zero row), so
    the patch area holds the int16 input window 3x9x9 (486 B) and the stem's 4x4x4 (64 B)
    alive together: 550 B, 552 rounded. The stage output (288 B) lives with it: 840 B."""
    q, _ = cnn
    tiled = apply_schedule(q, "patches", stage=3, patch=(3, 3))
    node = tiled.nodes[0]
    envelope, plan = patch_plan(node)
    assert [envelope.values[n].shape for n in envelope.values] == [
        (3, 9, 9), (4, 4, 4), (4, 3, 3), (8, 3, 3)]
    assert plan.peak == 552
    assert schedule_figures(tiled)["arena_bytes"] == 288 + 552
    # recomputation: the stem computes 4x4 outputs per tile (16·4 = 64 of its 36 pixels), the
    # depthwise exactly its 36; the pointwise 36
    stem, dw, pw = (n.q["weight"].values for n in node.attrs["nodes"])
    per_pixel = [np.count_nonzero(w) for w in (stem, dw, pw)]
    assert tiled.macs() - q.macs() == (64 - 36) * per_pixel[0]


@pytest.mark.parametrize("stage,patch", [(3, (3, 3)), (2, (4, 5)), (3, (6, 1)), (1, (6, 6))])
def test_patches_give_the_layer_by_layer_integers(cnn, stage, patch):
    q, x = cnn
    tiled = apply_schedule(q, "patches", stage=stage, patch=patch)
    expected = simulate_values(q, x)
    got = simulate_values(tiled, x)
    assert np.array_equal(got[q.output], expected[q.output])
    assert np.array_equal(got["class"], expected["class"])
    assert tiled.flash_bytes() == q.flash_bytes() and tiled.macs() >= q.macs()


def test_rnnpool_schedule_peak_is_one_patch_working_set_and_its_output(pooled):
    """RNNPool over the caller's input (patch 4x4, h1 4, h2 2): its int16 output 8x3x3
    (144 B) and one patch's buffers alive together: summaries (4 + 4)·4 int16 (64 B), one
    gathered row of 4 pixels x 3 channels (24 B), pooled h2 (4 B), the cell's normalised
    input (4 int16, 8 B) and pre-activations (4 int32, 16 B): 260 B, more than the RNNPool
    output with the 1x1 conv's int8 8x3x3 (216 B)."""
    q, x = pooled
    scheduled = apply_schedule(q, "rnnpool")
    assert schedule_figures(scheduled)["arena_bytes"] == 144 + 64 + 24 + 4 + 8 + 16
    assert scheduled.meta["schedule"] == {"kind": "rnnpool"}
    assert np.array_equal(simulate_values(scheduled, x)["class"], simulate_values(q, x)["class"])


def test_rnnpool_followed_by_a_tiled_stage_gives_the_same_integers(pooled):
    q, x = pooled
    tiled = apply_schedule(q, "rnnpool", stage=2, patch=(1, 3))
    assert np.array_equal(simulate_values(tiled, x)[q.output], simulate_values(q, x)[q.output])


@pytest.mark.parametrize("which,schedule,stage,patch", [
    ("cnn", "layers", None, None), ("cnn", "patches", 3, (3, 3)),
    ("cnn", "patches", 2, (2, 4)), ("rnnpool", "rnnpool", None, None),
    ("rnnpool", "rnnpool", 2, (2, 2))])
def test_c_equals_the_simulator_under_each_schedule(cnn, pooled, which, schedule, stage, patch,
                                                    tmp_path, require_gcc, require_cortex_m):
    q, x = cnn if which == "cnn" else pooled
    scheduled = apply_schedule(q, schedule, stage=stage, patch=patch)
    assert_c_equals_spec(scheduled, x, tmp_path,
                         (("host", "fast"), ("host", "sanitize"), ("cortex-m4", "fast"),
                          ("cortex-m3", "fast")))


def test_measured_m4_ram_is_within_the_statement(cnn, tmp_path, require_cortex_m):
    """Arena + logits + the painted stack on Cortex-M4 under the patch schedule is at most
    the stated RAM (arena + logits + the call graph's deepest stack)."""
    from kiloml.deploy.codegen import c_sources, generate_model
    from kiloml.deploy.export import cortex_m4_stack, write_sources
    from kiloml.deploy.targets import TARGETS, Build
    from kiloml.deploy.verify import run_model

    q, x = cnn
    tiled = apply_schedule(q, "patches", stage=3, patch=(3, 3))
    stack = cortex_m4_stack(generate_model(tiled, "tiled"), tmp_path / "stack")
    generated = generate_model(tiled, "tiled", stack)
    assert f"#define KILOML_RAM_BYTES {generated.ram_bytes}" in generated.header
    assert "(schedule: patches, nodes 0-2 on 3x3-pixel tiles)" in generated.header
    assert generated.ram_bytes == 840 + 2 * 4 + stack  # arena, int32 logits [2], stack
    files = write_sources(generated, tmp_path / "src")
    build = Build(TARGETS["cortex-m4"], [tmp_path / "src" / "model.c",
                                         *(tmp_path / "src" / f for f in c_sources(files))],
                  [tmp_path / "src"], tmp_path / "m4", "fast").compile()
    returned, _, run = run_model(build, x, tiled.values[tiled.output].count, poison=0xA5)
    assert np.array_equal(returned, simulate_values(q, x)["class"])
    measured = generated.scratch_bytes + tiled.values[tiled.output].nbytes \
        + run.stack_bytes_measured
    assert 0 < run.stack_bytes_measured <= stack and measured <= generated.ram_bytes


@pytest.mark.parametrize("schedule,stage,patch,message", [
    ("patches", 3, (7, 3), r"^patch 7x3 does not fit the stage's 6x6 output map"),
    ("patches", 3, (0, 3), r"^patch 0x3 does not fit"),
    ("patches", 5, (1, 1), r"^the patch schedule does not apply to node 10 \(global_avgpool2d\)"),
    ("patches", 3, None, r"^the patches schedule needs the number of tiled nodes"),
    ("rnnpool", None, None, r"^the rnnpool schedule does not apply: the graph's first node is "
                            r"conv2d"),
    ("tiles", None, None, r"^unknown schedule 'tiles'"),
    ("patches", 0, (1, 1), r"^a tiled stage holds 1 to 7 nodes of the graph from node 0, got 0"),
])
def test_bad_schedules_are_one_line_errors(cnn, schedule, stage, patch, message):
    q, _ = cnn
    with pytest.raises(KilomlError, match=message) as error:
        apply_schedule(q, schedule, stage=stage, patch=patch)
    assert "\n" not in str(error.value)


@pytest.fixture(scope="module")
def residual():
    """stem 3→4 stride 2 (4x6x6), 1x1 expansion to 8, 3x3 depthwise, 1x1 projection to 4
    plus the stem's map, global pooling: the integer graph and 6 test inputs."""
    from kiloml.ir.graph import Graph
    from kiloml.ir.lower import lower, lower_conv2d

    torch.manual_seed(0)
    graph = Graph(meta={"kind": "image", "num_classes": 0, "frame_stack": 1})
    graph.add_input("x", SHAPE)
    x = lower(nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.ReLU6()), "stem", graph, ["x"])
    y = lower(nn.Sequential(nn.Conv2d(4, 8, 1), nn.ReLU6()), "expand", graph, x)
    y = lower(nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1, groups=8), nn.ReLU6()), "dw", graph, y)
    y = lower_conv2d(nn.Conv2d(8, 4, 1), "project", graph, y, residual=x[0])
    (out,) = lower(nn.AdaptiveAvgPool2d(1), "pool", graph, y)
    graph.set_output(out)
    rng = np.random.default_rng(0)
    q = quantize_graph(graph, calibrate(graph, rng.normal(size=(16, *SHAPE))), bits=8)
    return q, quantize_input(q, rng.normal(size=(6, *SHAPE)))


def test_a_residual_inside_the_stage_is_cropped_to_the_tile(residual):
    """Patch 2x2 of the 6x6 projection: the stem's tile for the middle tile is rows 1..4
    (the depthwise's halo), and the projection adds its crop rows 1..2 of it: 4x2x2 int8."""
    from kiloml.ir.tiled import crops, tiles

    q, x = residual
    tiled = apply_schedule(q, "patches", stage=4, patch=(2, 2))
    node = tiled.nodes[0]
    middle = tiles(node)[4]  # row tile 1, column tile 1
    assert middle[0].out_rows == (1, 5) and middle[-1].out_rows == (2, 4)
    cut = crops(node.attrs["nodes"], middle)["project"]
    assert (cut.channels, cut.in_rows, cut.row0, cut.rows, cut.col0, cut.cols) == (
        4, 4, 1, 2, 1, 2)
    assert np.array_equal(simulate_values(tiled, x)[q.output], simulate_values(q, x)[q.output])


def test_a_residual_stage_in_c_equals_the_simulator(residual, tmp_path, require_gcc,
                                                    require_cortex_m):
    q, x = residual
    tiled = apply_schedule(q, "patches", stage=4, patch=(2, 2))
    assert_c_equals_spec(tiled, x, tmp_path, (("host", "fast"), ("host", "sanitize"),
                                              ("cortex-m4", "fast"), ("cortex-m3", "fast")))


def test_a_stage_ending_inside_a_residual_block_is_an_error(residual):
    """Tiling stem, expansion and depthwise leaves the stem's map, read by the projection
    after the stage, existing only tile by tile."""
    q, _ = residual
    with pytest.raises(KilomlError, match=r"^the patch schedule does not apply: stem_0_out "
                                          r"inside the tiled stage is read after it$"):
        apply_schedule(q, "patches", stage=3, patch=(2, 2))


def test_a_tiled_graph_is_not_saved(cnn, tmp_path):
    from kiloml.ir.serialize import save_graph

    tiled = apply_schedule(cnn[0], "patches", stage=3, patch=(3, 3))
    with pytest.raises(KilomlError, match=r"^a graph with a tiled stage cannot be saved"):
        save_graph(tiled, tmp_path / "graph.npz")
