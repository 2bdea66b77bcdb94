"""The ``rnnpool`` op: its lowering and float forward against the torch layers, its integer spec
against the float forward, its accounting, and its C (``kl_rnnpool.c`` over
``kl_fastgrnn.c``) against the spec integer for integer on a single 8×8×3 patch in every build
of the harness and on a map of overlapping rectangular patches in the instrumented builds,
which must take every branch of ``kl_rnnpool.c``."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import run_float
from kiloml.ir.graph import Graph
from kiloml.ir.lower import lower
from kiloml.ir.plan import plan_arena
from kiloml.ir.quantize import quantize_graph, quantize_input
from kiloml.ir.serialize import load_graph, save_graph
from kiloml.ir.simulate import simulate
from kiloml.nn.rnnpool import RNNPool, RNNPoolLayer
from kiloml.ops import get_op
from kiloml.ops.base import Node
from kiloml.ops.fastgrnn import FastRNNOp
from kiloml.ops.rnnpool import cell_node

from .kernel_coverage import branch_coverage, summary
from .op_harness import BUILDS, SWEEP_BUILDS, LibraryObjects, assert_c_equals_spec


def _perturbed(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(0.3 * torch.randn_like(param))
    return module.double().eval()


def _single_patch(channels=3, h1=8, h2=8) -> torch.nn.Module:
    torch.manual_seed(0)
    return _perturbed(RNNPool(channels, h1, h2), 1)


def _layer() -> torch.nn.Module:
    """Overlapping rectangular patches, a different stride per axis: 8×9 → 3×2 patches."""
    torch.manual_seed(0)
    return _perturbed(RNNPoolLayer(3, (4, 3), (2, 3), 5, 6), 2)


def _lowered(module: torch.nn.Module, shape: tuple[int, int, int]) -> Graph:
    graph = Graph(meta={"kind": "rnnpool", "num_classes": 0, "bits": 16, "frame_stack": 1})
    graph.add_input("x", shape)
    (output,) = lower(module, "pool", graph, ["x"])
    graph.set_output(output)
    graph.meta["num_classes"] = graph.values[output].count
    return graph


def _quantized(module, shape, bits, seed=0):
    """The quantized graph (calibrated on 32 normal maps) and 16 other maps."""
    X = np.random.default_rng(seed).normal(size=(48, *shape))
    graph = _lowered(module, shape)
    ranges: dict[str, float] = {}
    floats = run_float(graph, X[:32], ranges)
    return graph, quantize_graph(graph, ranges, bits), X[32:], floats


def test_float_forward_equals_the_torch_layers():
    for module, shape in ((_single_patch(), (3, 8, 8)), (_layer(), (3, 8, 9))):
        graph = _lowered(module, shape)
        X = np.random.default_rng(3).normal(size=(6, *shape))
        with torch.no_grad():
            expected = module(torch.from_numpy(X)).numpy()
        got = run_float(graph, X)[graph.output]
        assert got.shape == (6, *graph.values[graph.output].shape)
        np.testing.assert_allclose(got.reshape(expected.shape), expected, atol=1e-12)
    assert _lowered(_layer(), (3, 8, 9)).values["pool_out"].shape == (24, 3, 3)
    assert _lowered(_single_patch(), (3, 8, 8)).values["pool_out"].shape == (32,)


@pytest.mark.parametrize("bits,tolerance", [(16, 0.003), (8, 0.03)])
def test_integer_spec_follows_the_float_op(bits, tolerance):
    for module, shape in ((_single_patch(), (3, 8, 8)), (_layer(), (3, 8, 9))):
        graph, quantized, X, _ = _quantized(module, shape, bits)
        floats = run_float(graph, X)[graph.output]
        integer = simulate(quantized, quantize_input(quantized, X))
        integer = integer * 2.0 ** -quantized.values[graph.output].frac_bits
        error = np.abs(integer.reshape(floats.shape) - floats).max()
        assert error < tolerance * np.abs(floats).max(), (bits, shape, error)


def test_spec_is_the_fastrnn_spec_of_every_sweep():
    """One patch by hand: RNN1 over each row and column, RNN2 over the summaries both ways."""
    _, quantized, X, _ = _quantized(_single_patch(2, 3, 4), (2, 5, 4), 16)
    node = quantized.nodes[0]
    x = quantize_input(quantized, X[:3])
    fastrnn = FastRNNOp()
    rnn1, rnn2 = cell_node(node, "rnn1"), cell_node(node, "rnn2")
    rows = [fastrnn.simulate(rnn1, [x[:, :, i, :].transpose(0, 2, 1)], [], [])[0]
            for i in range(5)]
    cols = [fastrnn.simulate(rnn1, [x[:, :, :, j].transpose(0, 2, 1)], [], [])[0]
            for j in range(4)]
    expected = [fastrnn.simulate(rnn2, [np.stack(seq, axis=1)], [], [])[0]
                for seq in (rows, rows[::-1], cols, cols[::-1])]
    got = simulate(quantized, x).reshape(3, 16)
    assert np.array_equal(got, np.concatenate(expected, axis=1))


def test_accounting_of_scratch_flash_and_macs():
    graph, quantized, _, _ = _quantized(_layer(), (3, 8, 9), 16)
    node = quantized.nodes[0]
    op = get_op("rnnpool")
    inputs, outputs = quantized.node_values(node)
    # r=4, c=3, C=3, h1=5, h2=6
    buffers = {b.name: (b.dtype, b.count) for b in op.buffers(node, inputs, outputs)}
    assert buffers == {"summaries": ("int16", (4 + 3) * 5), "frame": ("int16", 4 * 3),
                       "pooled": ("int16", 6), "xn": ("int16", 5), "preact": ("int32", 6)}
    # the map and the pooled map are the caller's: the arena is the op's buffers, all live
    assert plan_arena(quantized).peak == 4 * 6 + 2 * (35 + 12 + 6 + 5)
    # int16 dense matrices W [5,3], U [5,5] and [6,5], [6,6]; per cell the normalisation
    # (2 x features int16), two biases [hidden] int16 + one scale byte each, 4 bytes of
    # coefficients
    storage = op.storage(node)
    matrices = sum(storage[f"{cell}.{m}"]["bytes"] for cell in ("rnn1", "rnn2") for m in "WU")
    assert [storage[f"{cell}.{m}"]["format"] for cell in ("rnn1", "rnn2") for m in "WU"] == [
        "dense"] * 4
    assert matrices >= 2 * (15 + 25 + 30 + 36)
    others = (2 * 2 * 3 + 1 + 2 * (2 * 5 + 1) + 4) + (2 * 2 * 5 + 1 + 2 * (2 * 6 + 1) + 4)
    assert op.flash_bytes(node) == matrices + others
    # per patch: RNN1 4 rows of 3 steps + 3 columns of 4 steps, each step C + W + U + 3 h1;
    # RNN2 4 sweeps (2 of 4 steps, 2 of 3), each step h1 + W + U + 3 h2
    rnn1_step, rnn2_step = 3 + 15 + 25 + 15, 5 + 30 + 36 + 18
    assert op.macs(node, inputs, outputs) == 9 * (24 * rnn1_step + 14 * rnn2_step)


def test_the_saved_quantized_graph_computes_the_same(tmp_path):
    _, quantized, X, _ = _quantized(_layer(), (3, 8, 9), 8)
    save_graph(quantized, tmp_path / "graph.npz")
    loaded = load_graph(tmp_path / "graph.npz")
    x = quantize_input(quantized, X)
    assert np.array_equal(simulate(loaded, x), simulate(quantized, x))


def test_bad_maps_are_one_line_errors():
    with pytest.raises(KilomlError, match="patch 4x3 is larger than the 3x9 map"):
        _lowered(_layer(), (3, 3, 9))
    with pytest.raises(KilomlError, match=r"needs a \[3, H, W\] map, got \[2, 8, 8\]"):
        _lowered(_single_patch(), (2, 8, 8))


def _c_inputs(quantized: Graph, X: np.ndarray) -> np.ndarray:
    """The maps quantized, then the int16 extremes (all minimum, all maximum)."""
    x = quantize_input(quantized, X)
    shape = x.shape[1:]
    return np.concatenate([x, np.full((1, *shape), -32768), np.full((1, *shape), 32767)]
                          ).astype(np.int16)


def test_c_equals_spec_on_one_patch_in_every_build(tmp_path, require_gcc, require_cortex_m):
    """8×8×3, h1 = h2 = 8, int16 weights: host (fast, reference, sanitized), Cortex-M4 (fast,
    reference) and Cortex-M3."""
    _, quantized, X, _ = _quantized(_single_patch(), (3, 8, 8), 16)
    assert_c_equals_spec(quantized, _c_inputs(quantized, X[:4]), tmp_path, BUILDS)


def test_c_equals_spec_over_patches_and_reaches_every_branch(tmp_path, require_gcc):
    """int8 weights on the map of rectangular patches, int16 on one 1-row patch (no reversal)
    and on one 8×8 patch, and an int8 map zero-padded into a saturating int8 output, in the
    shipped and instrumented host builds."""
    library = LibraryObjects(tmp_path / "library")
    cases = [(_layer(), (3, 8, 9), 8), (_perturbed(RNNPool(2, 3, 2), 3), (2, 1, 5), 16),
             (_single_patch(), (3, 8, 8), 16)]
    for i, (module, shape, bits) in enumerate(cases):
        _, quantized, X, _ = _quantized(module, shape, bits, seed=i)
        assert_c_equals_spec(quantized, _c_inputs(quantized, X[:4]), tmp_path / str(i),
                             SWEEP_BUILDS, library=library)
    _, _, quantized, X, _ = _int8_padded(out_range=0.02)  # an int8 map in, saturating out
    x = quantize_input(quantized, X)
    assert_c_equals_spec(quantized, x, tmp_path / "int8", SWEEP_BUILDS, library=library)
    files = branch_coverage(library.coverage_objects())
    assert not files["kl_rnnpool.c"].untaken(), summary(files, ("kl_rnnpool.c",))


def test_c_equals_spec_on_avr(tmp_path, require_gcc, require_avr):
    """Descriptors in program memory: the op's params and the four cell params it points to."""
    _, quantized, X, _ = _quantized(_perturbed(RNNPool(2, 3, 4), 3), (2, 4, 5), 16)
    assert_c_equals_spec(quantized, _c_inputs(quantized, X[:3]), tmp_path, (("avr", "fast"),))


def _int8_padded(seed: int = 0, out_range: float | None = None):
    """RNNPool over an int8 map (a stem's output), zero-padded by 1/2/1/1 rows and columns:
    6×7 → patches 4×3 every 2×3 → 3×3 outputs, quantized with int8 weights (``out_range``:
    the output's calibrated range replaced, so that the int8 output saturates)."""
    module = _perturbed(RNNPoolLayer(3, (4, 3), (2, 3), 5, 6), 4)
    graph = Graph(meta={"kind": "rnnpool", "num_classes": 0, "bits": 8, "frame_stack": 1})
    graph.add_input("x", (3, 6, 7))
    (stem,) = graph.add_node(Node("stem", "conv2d", ["x"], ["stem_out"],
                                  {"kernel": [1, 1], "stride": [1, 1], "padding": [0] * 4,
                                   "activation": "relu6"},
                                  {"weight": np.eye(3)[:, :, None, None] * 0.8,
                                   "bias": np.full(3, 0.1)}, "stem"))
    (output,) = lower(module, "pool", graph, [stem], padding=(1, 2, 1, 1))
    graph.set_output(output)
    graph.meta["num_classes"] = graph.values[output].count
    X = np.random.default_rng(seed).uniform(-1, 3, size=(20, 3, 6, 7))
    ranges: dict[str, float] = {}
    floats = run_float(graph, X[:16], ranges)
    if out_range is not None:
        ranges["pool_out"] = out_range
    return module, graph, quantize_graph(graph, ranges, 8), X[16:], floats


def test_an_int8_map_padded_is_read_as_the_torch_layer_reads_it_and_c_equals_spec(
        tmp_path, require_gcc, require_cortex_m):
    """The float op on the padded int8 map equals the torch layer on ``F.pad``; the output is
    int8 in the format of its range; C == spec on the host (fast, reference, sanitized),
    Cortex-M4 and Cortex-M3."""
    module, graph, quantized, X, floats = _int8_padded()
    assert graph.values["pool_out"].shape == (24, 3, 3)
    with torch.no_grad():
        stem = torch.clamp(torch.as_tensor(X[:0]).new_tensor(floats["stem_out"]), 0, 6)
        expected = module(torch.nn.functional.pad(stem, (1, 1, 1, 2))).numpy()
    np.testing.assert_allclose(floats["pool_out"], expected, atol=1e-9)
    pool = next(n for n in quantized.nodes if n.op == "rnnpool")
    assert quantized.values["pool_out"].dtype == "int8" and pool.consts["out_shift"] > 0
    x = quantize_input(quantized, X)
    spec = simulate(quantized, x)
    assert np.abs(spec).max() <= 127
    assert_c_equals_spec(quantized, x, tmp_path, BUILDS)


def test_padding_of_a_patch_or_more_is_a_one_line_error():
    module = _perturbed(RNNPoolLayer(3, (4, 3), (2, 3), 5, 6), 4)
    graph = Graph(meta={"kind": "rnnpool", "num_classes": 0, "bits": 8, "frame_stack": 1})
    graph.add_input("x", (3, 6, 7))
    with pytest.raises(KilomlError, match=r"padding \[4, 0, 0, 0\] must be below the patch 4x3"):
        lower(module, "pool", graph, ["x"], padding=(4, 0, 0, 0))
