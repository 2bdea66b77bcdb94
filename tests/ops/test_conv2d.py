"""``conv2d``: the C kernel (``kl_conv2d_s8``, ``kl_conv2d_s16``) equals the spec for the 3×3
stride-2 stem on an int16 input, rectangular kernels with different strides per axis and
asymmetric padding, 1×1 and unpadded windows, every requantization shift class, sums that
saturate with the bias, every clamp, and extreme maps (the largest int16 window, 516 taps, at
the int32 limit); the float forward equals torch; the quantization rule follows the float op;
unsupported kernels, strides and padding are one-line errors naming the layer."""

import numpy as np
import pytest

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.conv2d import MAX_WINDOW_S16

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

# (C_in, H, W), C_out, kernel, stride, padding [t, b, l, r], input dtype, limits
CASES = {
    "stem-3x3-s2-int16": ((3, 9, 9), 5, (3, 3), (2, 2), (1, 1, 1, 1), "int16", "relu6"),
    "5x3-stride-1x2-asymmetric": ((2, 7, 6), 3, (5, 3), (1, 2), (2, 1, 0, 2), "int8", "none"),
    "1x1-stride-3": ((4, 7, 5), 2, (1, 1), (3, 3), (0, 0, 0, 0), "int8", "relu"),
    "2x2-unpadded": ((3, 5, 6), 4, (2, 2), (1, 1), (0, 0, 0, 0), "int8", "window"),
    "int16-window-516": ((129, 2, 2), 7, (2, 2), (1, 1), (0, 0, 0, 0), "int16", "none"),
}
SANITIZED = ("5x3-stride-1x2-asymmetric", "int16-window-516")


def _graph(name: str, seed: int = 0):
    shape, cout, kernel, stride, padding, dtype, limits = CASES[name]
    node = conv_node("conv2d", (cout, shape[0], *kernel), kernel, stride, padding)
    random_stage(node, np.random.default_rng(seed), limits, 1 << 20)
    return graph_of(node, shape, dtype), shape, np.int16 if dtype == "int16" else np.int8


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape, dtype = _graph(name)
    builds = (("host", "fast"), ("host", "sanitize")) if name in SANITIZED else (("host", "fast"),)
    assert_c_equals_spec(graph, maps(shape, 8, seed=1, dtype=dtype), tmp_path, builds)


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    for name in ("stem-3x3-s2-int16", "5x3-stride-1x2-asymmetric"):
        graph, shape, dtype = _graph(name, seed=2)
        assert_c_equals_spec(graph, maps(shape, 6, seed=3, dtype=dtype), tmp_path / name,
                             BUILDS)


def test_sweep_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    for name in CASES:
        graph, shape, dtype = _graph(name, seed=4)
        assert_c_equals_spec(graph, maps(shape, 2, seed=5, dtype=dtype), tmp_path / name,
                             SWEEP_BUILDS, library=library)
    files = branch_coverage(library.coverage_objects())
    for name in ("kl_conv2d.c", "kl_window2d.h", "kl_requantize.h"):
        assert not files[name].untaken(), summary(files, (name,))


def test_the_largest_int16_window_reaches_the_int32_limit_exactly():
    graph, shape, _ = _graph("int16-window-516")
    assert shape[0] * 4 == MAX_WINDOW_S16
    node = graph.nodes[0]
    node.q["weight"].values[:] = 127
    node.q["bias"].values[:] = 0
    x = np.full((1, *shape), -32768)
    sums = 127 * -32768 * MAX_WINDOW_S16
    assert -(1 << 31) <= sums
    mult, shift = node.q["mult"].values[2], node.q["shift"].values[2]
    expected = np.clip((sums * mult + (1 << (shift - 1))) >> shift, -128, 127)
    assert simulate(graph, x)[0, 2, 0, 0] == expected


def test_spec_is_the_equation():
    graph, shape, _ = _graph("5x3-stride-1x2-asymmetric")
    node = graph.nodes[0]
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, size=(2, *shape))
    padded = np.pad(x, ((0, 0), (0, 0), (2, 1), (0, 2)))
    w, q = node.q["weight"].values, node.q
    out = simulate(graph, x)
    assert out.shape == (2, 3, 6, 3)
    for i in range(6):
        for j in range(3):
            window = padded[:, :, i:i + 5, 2 * j:2 * j + 3]
            for o in range(3):
                total = int(np.sum(window[0] * w[o])) + int(q["bias"].values[o])
                acc = min(max(total, -(1 << 31)), (1 << 31) - 1)
                shift = int(q["shift"].values[o])
                value = (acc * int(q["mult"].values[o]) + (1 << (shift - 1))) >> shift
                assert out[0, o, i, j] == min(max(value, -128), 127)


@pytest.mark.parametrize("kernel,stride,padding", [((3, 3), (2, 2), (1, 1, 1, 1)),
                                                   ((5, 3), (1, 2), (2, 1, 0, 2))])
def test_float_forward_equals_torch(kernel, stride, padding):
    rng = np.random.default_rng(kernel[0])
    node = conv_node("conv2d", (4, 3, *kernel), kernel, stride, padding, activation="none")
    node.weights = {"weight": rng.normal(size=(4, 3, *kernel)), "bias": rng.normal(size=4)}
    X = rng.normal(size=(2, 3, 10, 9))
    graph = graph_of(node, (3, 10, 9))
    got = run_float(graph, X)["y"]
    np.testing.assert_allclose(got, torch_conv2d(X, node.weights["weight"],
                                                 node.weights["bias"], stride, padding),
                               atol=1e-12)


@pytest.mark.parametrize("dtype,activation", [("int16", "relu6"), ("int8", "none")])
def test_quantized_op_follows_the_float_op(dtype, activation):
    """Within two int8 steps of the output's Q-format."""
    rng = np.random.default_rng(7)
    node = conv_node("conv2d", (6, 3, 3, 3), (3, 3), (2, 2), (1, 1, 1, 1), activation)
    node.weights = {"weight": rng.normal(size=(6, 3, 3, 3)) * 0.3,
                    "bias": rng.normal(size=6) * 0.3}
    floats, integer, step = quantized_error(node, rng.normal(size=(16, 3, 12, 12)),
                                            10 if dtype == "int16" else 5, dtype)
    assert np.abs(integer - floats).max() <= 2 * step


@pytest.mark.parametrize("kernel,stride,padding,message", [
    ((13, 3), (1, 1), (0, 0, 0, 0), "layer: convolution kernel 13x3 is not supported"),
    ((3, 3), (5, 1), (1, 1, 1, 1), "layer: convolution stride 5x1 is not supported"),
    ((3, 3), (1, 1), (3, 3, 1, 1), r"layer: convolution padding \[3, 3, 1, 1\] is not "),
])
def test_unsupported_geometry_is_a_one_line_error_naming_the_layer(kernel, stride, padding,
                                                                   message):
    node = conv_node("conv2d", (2, 3, *kernel), kernel, stride, padding)
    with pytest.raises(KilomlError, match=message):
        graph_of(node, (3, 16, 16))


def test_a_too_long_int16_window_is_refused():
    node = conv_node("conv2d", (2, 130, 2, 2), (2, 2))
    with pytest.raises(KilomlError, match="int16 input needs channels x kernel at most 516"):
        graph_of(node, (130, 4, 4), "int16")


def test_c_equals_spec_on_avr(tmp_path, require_gcc, require_avr):
    """16-bit int: every product is widened to 32 bits before it is summed."""
    for name in ("stem-3x3-s2-int16", "5x3-stride-1x2-asymmetric"):
        graph, shape, dtype = _graph(name, seed=6)
        assert_c_equals_spec(graph, maps(shape, 2, seed=7, dtype=dtype), tmp_path / name,
                             (("avr", "fast"), ("avr", "reference")))
