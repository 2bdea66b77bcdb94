"""``depthwise_conv2d``: the C kernel equals the spec for 3×3 windows at stride 1 and 2 with
'same' padding (the nine taps written out inside the map, the tap loop at the border),
rectangular and 5×5 kernels, unpadded maps, every requantization shift class, saturating sums and
every clamp on extreme maps; the float forward equals torch's grouped convolution; the
quantization rule follows the float op; unsupported geometry names the layer."""

import numpy as np
import pytest

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate

from .image_cases import (
    conv_node,
    graph_of,
    maps,
    quantized_error,
    random_stage,
    torch_conv2d,
)
from .kernel_coverage import branch_coverage, summary
from .op_harness import BUILDS, SWEEP_BUILDS, LibraryObjects, assert_c_equals_spec

# (C, H, W), kernel, stride, padding, limits
CASES = {
    "3x3-s1-same": ((7, 6, 7), (3, 3), (1, 1), (1, 1, 1, 1), "relu6"),
    "3x3-s2-same": ((4, 9, 8), (3, 3), (2, 2), (1, 1, 1, 1), "relu"),
    "3x5-asymmetric": ((3, 8, 7), (3, 5), (1, 2), (2, 1, 0, 2), "none"),
    "5x5-same": ((2, 6, 6), (5, 5), (1, 1), (2, 2, 2, 2), "relu"),
    "3x3-unpadded": ((2, 5, 5), (3, 3), (1, 1), (0, 0, 0, 0), "window"),
    "3x3-two-columns": ((2, 5, 2), (3, 3), (1, 1), (1, 1, 1, 1), "relu6"),
    "3x3-one-column": ((2, 4, 1), (3, 3), (1, 1), (1, 1, 1, 1), "none"),
}


def _graph(name: str, seed: int = 0):
    shape, kernel, stride, padding, limits = CASES[name]
    node = conv_node("depthwise_conv2d", (shape[0], 1, *kernel), kernel, stride, padding)
    random_stage(node, np.random.default_rng(seed), limits, 1 << 14)
    return graph_of(node, shape), shape


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape = _graph(name)
    assert_c_equals_spec(graph, maps(shape, 8, seed=1), tmp_path,
                         (("host", "fast"), ("host", "sanitize")))


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    for name in ("3x3-s1-same", "3x3-s2-same"):
        graph, shape = _graph(name, seed=2)
        assert_c_equals_spec(graph, maps(shape, 6, seed=3), tmp_path / name, BUILDS)


def test_sweep_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    for name in CASES:
        graph, shape = _graph(name, seed=4)
        assert_c_equals_spec(graph, maps(shape, 2, seed=5), tmp_path / name, SWEEP_BUILDS,
                             library=library)
    files = branch_coverage(library.coverage_objects())
    assert not files["kl_depthwise_conv2d.c"].untaken(), summary(files,
                                                                 ("kl_depthwise_conv2d.c",))


def test_spec_is_the_equation():
    graph, shape = _graph("3x3-s2-same")
    node = graph.nodes[0]
    x = np.random.default_rng(6).integers(-128, 128, size=(1, *shape))
    padded = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    q = node.q
    out = simulate(graph, x)[0]
    assert out.shape == (4, 5, 4)
    for c in range(4):
        for i in range(5):
            for j in range(4):
                total = int(np.sum(padded[c, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
                                   * q["weight"].values[c])) + int(q["bias"].values[c])
                acc = min(max(total, -(1 << 31)), (1 << 31) - 1)
                shift = int(q["shift"].values[c])
                value = (acc * int(q["mult"].values[c]) + (1 << (shift - 1))) >> shift
                assert out[c, i, j] == min(max(value, 0), 127)


def test_float_forward_equals_torch():
    rng = np.random.default_rng(7)
    node = conv_node("depthwise_conv2d", (5, 1, 3, 3), (3, 3), (2, 2), (1, 1, 1, 1), "none")
    node.weights = {"weight": rng.normal(size=(5, 1, 3, 3)), "bias": rng.normal(size=5)}
    X = rng.normal(size=(2, 5, 9, 10))
    got = run_float(graph_of(node, (5, 9, 10)), X)["y"]
    np.testing.assert_allclose(got, torch_conv2d(X, node.weights["weight"],
                                                 node.weights["bias"], (2, 2), (1, 1, 1, 1),
                                                 groups=5), atol=1e-12)


def test_quantized_op_follows_the_float_op():
    """Channels whose weights differ by 10**3 (as a folded BatchNorm makes them) each use the
    whole int8 range, and the output is within two int8 steps of the float op."""
    rng = np.random.default_rng(8)
    node = conv_node("depthwise_conv2d", (6, 1, 3, 3), (3, 3), (1, 1), (1, 1, 1, 1), "relu6")
    scale = np.logspace(-3, 0, 6)[:, None, None, None]
    node.weights = {"weight": rng.normal(size=(6, 1, 3, 3)) * 0.3 * scale,
                    "bias": rng.normal(size=6) * 0.1}
    floats, integer, step = quantized_error(node, rng.normal(size=(16, 6, 8, 8)), 4)
    assert np.abs(node.q["weight"].values).max(axis=(1, 2)).tolist() == [127] * 6
    assert np.abs(integer - floats).max() <= 2 * step


def test_a_weight_that_does_not_fit_names_the_layer():
    node = conv_node("depthwise_conv2d", (3, 1, 5, 5), (3, 3), path="features.3.conv.0")
    with pytest.raises(KilomlError, match=r"features.3.conv.0: a depthwise weight of shape "):
        graph_of(node, (3, 8, 8))


def test_c_equals_spec_on_avr(tmp_path, require_gcc, require_avr):
    for name in ("3x3-s1-same", "3x3-s2-same"):
        graph, shape = _graph(name, seed=6)
        assert_c_equals_spec(graph, maps(shape, 2, seed=7), tmp_path / name,
                             (("avr", "fast"), ("avr", "reference")))
