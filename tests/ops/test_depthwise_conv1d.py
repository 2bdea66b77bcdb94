"""``depthwise_conv1d``: the C kernel equals the spec for 'same' and asymmetric padding,
windows wholly in the padding, strides, odd lengths and channel counts, int8 weights (the int32
fast path with three taps written out or a tap loop, and int64 past the int8 row limit) and
int16 weights (sums beyond int32), per-channel shifts of every class (1..31, <= 0, >= 32, also
mixed within a layer), every bias path
(int8/int16, right and left shifts, the exact one outside -16..30), clamps and saturating
inputs; the float forward equals torch and the quantization rule follows it."""

import numpy as np
import pytest

from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node
from kiloml.ops.depthwise_conv1d import quantize_per_channel
from kiloml.ops.fixed import QTensor

from .conv_cases import (
    extreme_inputs,
    quantized_error,
    random_weights,
    set_output_stage,
    torch_conv,
)
from .op_harness import BUILDS, assert_c_equals_spec, single_op_graph

# steps, channels, kernel, stride, pad_left, pad_right, weight bits, per-channel shifts (one
# value: the same for every channel), shift_bias, limits, bias bits (the int8 fast path has a
# loop per bias width and shift direction, and rescales a channel whose shift is outside 1..31
# in int64)
CASES = {
    "s8-same-k3": (9, 5, 3, 1, 1, 1, 8, (7, 1, 31, 12, 5), -3, (0, 32767), 8),
    "s8-k3-stride2-bias-right": (12, 4, 3, 2, 1, 1, 8, 12, 5, (0, 32767), 8),
    "s8-k5-s16-bias-left": (8, 3, 5, 1, 2, 2, 8, 31, -16, (-32768, 32767), 16),
    "s8-k3-s16-bias-right": (6, 6, 3, 1, 1, 1, 8, 1, 30, (-9, 9), 16),
    "s16-stride2-sums-past-int32": (10, 3, 4, 2, 2, 1, 16, 15, 0, (-32768, 32767), 16),
    "s8-all-padding-windows": (4, 2, 3, 2, 4, 5, 8, 0, -20, (-100, 2000), 8),
    "s8-k3-one-channel-shift-0": (7, 4, 3, 1, 1, 1, 8, (9, 0, 33, 4), 3, (0, 32767), 8),
    "s16-large-shift": (6, 7, 2, 1, 0, 1, 16, 40, 31, (0, 32767), 16),
    "s8-one-negative-shift": (5, 3, 3, 1, 1, 1, 8, (-4, 9, 3), 5, (-32768, 32767), 8),
    "s8-kernel-past-int8-limit": (3, 1, 513, 1, 256, 256, 8, 20, 2, (-32768, 32767), 8),
}
SANITIZED = ("s8-all-padding-windows", "s8-kernel-past-int8-limit", "s8-k3-one-channel-shift-0")


def _graph(name: str, seed: int = 0):
    (steps, channels, kernel, stride, left, right, bits, shifts, shift_b, limits,
     bias_bits) = CASES[name]
    rng = np.random.default_rng(seed)
    node = Node("dw", "depthwise_conv1d", ["x"], ["y"],
                {"kernel": kernel, "stride": stride, "pad_left": left, "pad_right": right,
                 "activation": "relu"},
                {"weight": np.zeros((channels, 1, kernel)), "bias": np.zeros(channels)})
    node.q["weight"] = random_weights(rng, (channels, kernel), bits)
    node.q["weight"].values[0] = -(1 << (bits - 1))  # channel 0 at the extreme of the range
    node.q["shift"] = QTensor(np.broadcast_to(shifts, (channels,)).astype(np.int64), 0, 8)
    set_output_stage(node, rng, channels, bias_bits, shift_b, limits)
    graph = single_op_graph(node, (steps, channels), input_frac_bits=8, bits=bits)
    graph.values["y"].frac_bits = 8
    return graph, (steps, channels)


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape = _graph(name)
    builds = (("host", "fast"), ("host", "sanitize")) if name in SANITIZED else (("host", "fast"),)
    assert_c_equals_spec(graph, extreme_inputs(*shape, 12, seed=1), tmp_path, builds)


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    graph, shape = _graph("s8-same-k3", seed=2)
    assert_c_equals_spec(graph, extreme_inputs(*shape, 12, seed=3), tmp_path, BUILDS)


def test_int16_sums_leave_int32_on_extreme_inputs():
    """The kernel's int64 path is reached: on the all -32768 input, channel 0's sums of an
    inner window are 4 * 2**30."""
    graph, shape = _graph("s16-stride2-sums-past-int32")
    weight = graph.nodes[0].q["weight"].values
    x = extreme_inputs(*shape, 0, seed=0)[0].astype(np.int64)
    assert int(weight[0] @ x[2:6, 0]) == 1 << 32
    assert simulate(graph, x[None])[0, 2, 0] == 32767  # saturated, not wrapped


def test_spec_is_the_equation_in_int64():
    graph, _ = _graph("s8-same-k3")
    node = graph.nodes[0]
    rng = np.random.default_rng(4)
    x = rng.integers(-32768, 32768, size=(2, 9, 5))
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)))
    weight, bias = node.q["weight"].values, node.q["bias"].values * 8
    expected = np.zeros((2, 9, 5), dtype=np.int64)
    for t in range(9):
        for c, shift in enumerate((7, 1, 31, 12, 5)):
            total = padded[:, t:t + 3, c] @ weight[c]
            rounded = np.clip((total + (1 << (shift - 1))) >> shift, -(1 << 31), (1 << 31) - 1)
            expected[:, t, c] = np.clip(rounded + bias[c], 0, 32767)
    assert np.array_equal(simulate(graph, x), expected)


@pytest.mark.parametrize("kernel,stride,left,right", [(3, 1, 1, 1), (4, 2, 0, 3)])
def test_float_forward_equals_torch(kernel, stride, left, right):
    rng = np.random.default_rng(kernel)
    weight, bias = rng.normal(size=(5, 1, kernel)), rng.normal(size=5)
    node = Node("dw", "depthwise_conv1d", ["x"], ["y"],
                {"kernel": kernel, "stride": stride, "pad_left": left, "pad_right": right,
                 "activation": "relu"}, {"weight": weight, "bias": bias})
    X = rng.normal(size=(4, 12, 5))
    got = run_float(single_op_graph(node, (12, 5)), X)["y"]
    np.testing.assert_allclose(got, torch_conv(X, weight, bias, stride, left, right, groups=5),
                               atol=1e-12)


@pytest.mark.parametrize("bits,tolerance", [(16, 0.003), (8, 0.03)])
def test_quantized_op_follows_the_float_op(bits, tolerance):
    rng = np.random.default_rng(5)
    node = Node("dw", "depthwise_conv1d", ["x"], ["y"],
                {"kernel": 3, "stride": 1, "pad_left": 1, "pad_right": 1, "activation": "relu"},
                {"weight": rng.normal(size=(8, 1, 3)), "bias": rng.normal(size=8) * 0.5})
    floats, integer = quantized_error(node, rng.normal(size=(32, 15, 8)) * 2, 11, bits)
    assert np.abs(integer - floats).max() < tolerance * np.abs(floats).max()


@pytest.mark.parametrize("bits", [8, 16])
def test_every_channel_uses_its_own_range(bits):
    """Channels whose weights differ by 10**6 (as BatchNorm folding can make them) each fill
    at least half of the integer range, so each is rounded to 2**-(bits - 2) of its largest
    weight at worst."""
    rng = np.random.default_rng(6)
    weight = rng.normal(size=(7, 3)) * np.logspace(-3, 3, 7)[:, None]
    values, frac_bits = quantize_per_channel(weight, bits)
    for c in range(7):
        largest = np.abs(values.values[c]).max()
        assert 2 ** (bits - 2) <= largest <= 2 ** (bits - 1) - 1
        error = np.abs(values.values[c] * 2.0 ** -frac_bits[c] - weight[c]).max()
        assert error <= 2.0 ** (-frac_bits[c] - 1) + 1e-15


def test_each_channel_gets_its_own_scale_and_a_zero_channel_the_largest():
    weight = np.array([[0.01, -0.02, 0.005], [300.0, 1.0, -2.0], [0.0, 0.0, 0.0]])
    values, frac_bits = quantize_per_channel(weight, 8)
    assert frac_bits.tolist() == [12, -2, -2]
    assert values.values[0].tolist() == [41, -82, 20] and values.values[1, 0] == 75
    assert values.frac_bits == -2 and not values.values[2].any()
