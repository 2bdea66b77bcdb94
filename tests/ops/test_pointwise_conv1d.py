"""``pointwise_conv1d``: the C kernel equals the spec for odd lengths and channel counts, int8/int16
weights in every storage kl_matvec reads, every weight shift class (1..31, <= 0, >= 32), every
bias path of the output stage (int8/int16, right and left shifts, and the exact int64 one for
shifts outside -16..30), clamps and saturating inputs; the float forward equals torch and the
quantization rule follows it."""

import numpy as np
import pytest

from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node

from .conv_cases import (
    extreme_inputs,
    quantized_error,
    random_weights,
    set_output_stage,
    torch_conv,
)
from .op_harness import BUILDS, assert_c_equals_spec, single_op_graph

# steps, in, out, bits, keep, shift_w, shift_bias, limits
CASES = {
    "interleaved-s8": (7, 12, 5, 8, 1.0, 9, -3, (0, 32767)),
    "narrow-s8-one-step": (1, 3, 4, 8, 1.0, 1, 30, (-32768, 32767)),
    "dense-s16-odd": (5, 9, 7, 16, 1.0, 31, -16, (0, 32767)),
    "dense-s16-bias-right": (4, 6, 5, 16, 1.0, 20, 7, (0, 32767)),
    "csr-s8-negative-shift": (6, 11, 6, 8, 0.2, -3, -17, (-500, 500)),
    "s16-large-shift": (3, 5, 3, 16, 1.0, 45, 31, (-32768, 32767)),
}


def _graph(name: str, seed: int = 0):
    steps, cin, cout, bits, keep, shift_w, shift_b, limits = CASES[name]
    rng = np.random.default_rng(seed)
    node = Node("pw", "pointwise_conv1d", ["x"], ["y"], {"activation": "relu"},
                {"weight": np.zeros((cout, cin, 1)), "bias": np.zeros(cout)})
    node.q["weight"] = random_weights(rng, (cout, cin), bits, keep)
    node.consts["shift_weight"] = shift_w
    set_output_stage(node, rng, cout, bits, shift_b, limits)
    graph = single_op_graph(node, (steps, cin), input_frac_bits=8, bits=bits)
    graph.values["y"].frac_bits = 8
    return graph, (steps, cin)


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape = _graph(name)
    builds = ((("host", "fast"), ("host", "sanitize")) if name == "csr-s8-negative-shift"
              else (("host", "fast"),))
    assert_c_equals_spec(graph, extreme_inputs(*shape, 12, seed=1), tmp_path, builds)


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    graph, shape = _graph("interleaved-s8", seed=2)
    assert_c_equals_spec(graph, extreme_inputs(*shape, 12, seed=3), tmp_path, BUILDS)


def test_spec_is_the_equation_in_int64():
    graph, _ = _graph("interleaved-s8")
    node = graph.nodes[0]
    x = np.random.default_rng(4).integers(-32768, 32768, size=(2, 7, 12))
    sums = x @ node.q["weight"].values.T
    acc = np.clip((sums + (1 << 8)) >> 9, -(1 << 31), (1 << 31) - 1)
    expected = np.clip(acc + node.q["bias"].values * 8, 0, 32767)
    assert np.array_equal(simulate(graph, x), expected)


def test_float_forward_equals_torch():
    rng = np.random.default_rng(0)
    weight, bias = rng.normal(size=(6, 4, 1)), rng.normal(size=6)
    node = Node("pw", "pointwise_conv1d", ["x"], ["y"], {"activation": "relu"},
                {"weight": weight, "bias": bias})
    X = rng.normal(size=(3, 9, 4))
    got = run_float(single_op_graph(node, (9, 4)), X)["y"]
    np.testing.assert_allclose(got, torch_conv(X, weight, bias, 1, 0, 0), atol=1e-12)


@pytest.mark.parametrize("bits,tolerance", [(16, 0.003), (8, 0.03)])
def test_quantized_op_follows_the_float_op(bits, tolerance):
    rng = np.random.default_rng(5)
    node = Node("pw", "pointwise_conv1d", ["x"], ["y"], {"activation": "relu"},
                {"weight": rng.normal(size=(8, 16, 1)) * 0.3, "bias": rng.normal(size=8) * 0.5})
    floats, integer = quantized_error(node, rng.normal(size=(32, 10, 16)) * 2, 11, bits)
    assert np.abs(integer - floats).max() < tolerance * np.abs(floats).max()
