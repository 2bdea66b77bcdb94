"""``pointwise_conv2d``: the C kernel equals the spec with and without the residual add
(residual shifts right, left and zero), for pixel counts that are and are not multiples of the
four-pixel pass, every requantization shift class, saturating sums and every clamp on extreme
maps; the float forward equals torch plus the residual; the quantization rule follows the
float op with the residual's own rescaling."""

import numpy as np
import pytest

from kiloml.ir.calibrate import run_float
from kiloml.ir.graph import Graph
from kiloml.ir.simulate import simulate

from .image_cases import conv_node, graph_of, maps, quantized_error, random_stage, torch_conv2d
from .kernel_coverage import branch_coverage, summary
from .op_harness import BUILDS, SWEEP_BUILDS, LibraryObjects, assert_c_equals_spec, quantize_node

# (C_in, H, W), C_out, limits, residual shift (None: no residual; the residual is the input,
# so C_out = C_in)
CASES = {
    "expand-relu6-9-pixels": ((3, 3, 3), 8, "relu6", None),
    "project-residual-right": ((6, 4, 5), 6, "none", 2),
    "project-residual-left": ((5, 2, 2), 5, "window", -3),
    "project-residual-same-q": ((4, 3, 1), 4, "relu", 0),
}


def residual_graph(node, shape) -> Graph:
    """``y = pointwise(x) + x``: the node reads the input twice."""
    graph = Graph(meta={"kind": node.op, "num_classes": 0, "bits": 8, "frame_stack": 1})
    graph.add_input("x", shape, "int8")
    graph.values["x"].frac_bits = 4
    graph.add_node(node)
    graph.set_output("y")
    graph.values["y"].frac_bits = 4
    graph.meta["num_classes"] = graph.values["y"].count
    return graph


def _graph(name: str, seed: int = 0):
    shape, cout, limits, shift = CASES[name]
    inputs = ("x",) if shift is None else ("x", "x")
    node = conv_node("pointwise_conv2d", (cout, shape[0], 1, 1), inputs=inputs)
    random_stage(node, np.random.default_rng(seed), limits, 1 << 14)
    if shift is None:
        return graph_of(node, shape), shape
    node.consts["shift_residual"] = shift
    return residual_graph(node, shape), shape


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape = _graph(name)
    assert_c_equals_spec(graph, maps(shape, 8, seed=1), tmp_path,
                         (("host", "fast"), ("host", "sanitize")))


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    for name in ("expand-relu6-9-pixels", "project-residual-right"):
        graph, shape = _graph(name, seed=2)
        assert_c_equals_spec(graph, maps(shape, 6, seed=3), tmp_path / name, BUILDS)


def test_sweep_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    for name in CASES:
        graph, shape = _graph(name, seed=4)
        assert_c_equals_spec(graph, maps(shape, 2, seed=5), tmp_path / name, SWEEP_BUILDS,
                             library=library)
    files = branch_coverage(library.coverage_objects())
    assert not files["kl_pointwise_conv2d.c"].untaken(), summary(files,
                                                                 ("kl_pointwise_conv2d.c",))


def test_spec_is_the_equation_with_the_residual():
    graph, shape = _graph("project-residual-right")
    q = graph.nodes[0].q
    x = np.random.default_rng(6).integers(-128, 128, size=(1, *shape))
    out = simulate(graph, x)[0]
    for o in range(6):
        for i in range(4):
            for j in range(5):
                total = int(q["weight"].values[o] @ x[0, :, i, j]) + int(q["bias"].values[o])
                acc = min(max(total, -(1 << 31)), (1 << 31) - 1)
                shift = int(q["shift"].values[o])
                value = (acc * int(q["mult"].values[o]) + (1 << (shift - 1))) >> shift
                value += (int(x[0, o, i, j]) + 2) >> 2
                assert out[o, i, j] == min(max(value, -128), 127)


def test_float_forward_equals_torch_plus_the_residual():
    rng = np.random.default_rng(7)
    node = conv_node("pointwise_conv2d", (4, 4, 1, 1), activation="none", inputs=("x", "x"))
    node.weights = {"weight": rng.normal(size=(4, 4, 1, 1)), "bias": rng.normal(size=4)}
    X = rng.normal(size=(2, 4, 3, 5))
    got = run_float(residual_graph(node, (4, 3, 5)), X)["y"]
    expected = torch_conv2d(X, node.weights["weight"], node.weights["bias"], (1, 1),
                            (0, 0, 0, 0)) + X
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_quantized_op_follows_the_float_op():
    rng = np.random.default_rng(8)
    node = conv_node("pointwise_conv2d", (8, 3, 1, 1), activation="relu6")
    node.weights = {"weight": rng.normal(size=(8, 3, 1, 1)), "bias": rng.normal(size=8) * 0.3}
    floats, integer, step = quantized_error(node, rng.normal(size=(16, 3, 5, 5)), 5)
    assert np.abs(integer - floats).max() <= 2 * step


def test_the_residual_is_rescaled_to_the_output_format():
    """The sum's calibrated range sets Q(out); the residual (the input, Q5) is shifted into it."""
    rng = np.random.default_rng(9)
    node = conv_node("pointwise_conv2d", (4, 4, 1, 1), activation="none", inputs=("x", "x"))
    node.weights = {"weight": rng.normal(size=(4, 4, 1, 1)) * 2, "bias": np.zeros(4)}
    graph = residual_graph(node, (4, 4, 4))
    graph.values["x"].frac_bits = 5
    X = rng.normal(size=(32, 4, 4, 4))
    ranges: dict[str, float] = {}
    floats = run_float(graph, X, ranges)["y"]
    quantize_node(graph, ranges, 8)
    out = graph.values["y"].frac_bits
    assert node.consts["shift_residual"] == 5 - out > 0
    x = np.clip(np.round(X * 32), -128, 127).astype(np.int64)
    integer = simulate(graph, x) * 2.0 ** -out
    assert np.abs(integer - floats).max() <= 2 * 2.0 ** -out


def test_c_equals_spec_on_avr(tmp_path, require_gcc, require_avr):
    for name in ("expand-relu6-9-pixels", "project-residual-right"):
        graph, shape = _graph(name, seed=6)
        assert_c_equals_spec(graph, maps(shape, 2, seed=7), tmp_path / name,
                             (("avr", "fast"), ("avr", "reference")))
