"""``global_avgpool``: the C kernel equals the spec for one and many steps, odd channel
counts, the whole range of shifts its Q-formats allow and saturating inputs; the float forward
is the mean and the quantization rule follows it."""

import numpy as np
import pytest

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node
from kiloml.ops.constants import INV_STEPS_FRAC_BITS
from kiloml.ops.global_avgpool import inv_steps

from .conv_cases import extreme_inputs
from .op_harness import BUILDS, assert_c_equals_spec, quantize_node, single_op_graph

# steps, channels, input Q, output Q: shifts 30 + in - out from 10 to 50
CASES = {"one-step": (1, 3, 0, 20), "odd": (13, 5, 8, 8), "long-q20-in": (300, 2, 20, 0),
         "q12-to-q14": (7, 4, 12, 14)}


def _graph(name: str):
    steps, channels, in_format, out_format = CASES[name]
    graph = single_op_graph(Node("pool", "global_avgpool", ["x"], ["y"]), (steps, channels),
                            input_frac_bits=in_format)
    quantize_node(graph, {"y": 2.0 ** (14 - out_format)}, 16)
    assert graph.values["y"].frac_bits == out_format
    return graph, (steps, channels)


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape = _graph(name)
    builds = (("host", "fast"), ("host", "sanitize")) if name == "long-q20-in" else (
        ("host", "fast"),)
    assert_c_equals_spec(graph, extreme_inputs(*shape, 12, seed=1), tmp_path, builds)


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    graph, shape = _graph("odd")
    assert_c_equals_spec(graph, extreme_inputs(*shape, 12, seed=3), tmp_path, BUILDS)


def test_spec_is_the_equation_in_int64():
    graph, _ = _graph("long-q20-in")
    x = extreme_inputs(300, 2, 4, seed=2).astype(np.int64)
    shift = INV_STEPS_FRAC_BITS + 20 - 0
    expected = np.clip((x.sum(axis=1) * round(2**30 / 300) + (1 << (shift - 1))) >> shift,
                       -32768, 32767)
    assert np.array_equal(simulate(graph, x), expected)
    assert inv_steps(300) == 3579139
    assert simulate(graph, np.full((1, 300, 2), -32768))[0].tolist() == [0, 0]  # -0.03 -> 0


def test_the_mean_of_a_constant_is_exact():
    graph, _ = _graph("odd")
    assert simulate(graph, np.full((1, 13, 5), 1000)).tolist() == [[1000] * 5]
    assert simulate(graph, np.full((1, 13, 5), -32768)).tolist() == [[-32768] * 5]


def test_quantized_op_follows_the_float_op():
    X = np.random.default_rng(0).normal(size=(16, 20, 6)) + 0.5
    graph = single_op_graph(Node("pool", "global_avgpool", ["x"], ["y"]), (20, 6),
                            input_frac_bits=12)
    ranges: dict[str, float] = {}
    floats = run_float(graph, X, ranges)["y"]
    np.testing.assert_allclose(floats, X.mean(axis=1))
    quantize_node(graph, ranges, 16)
    x = np.round(X * 2**12).astype(np.int16)
    integer = simulate(graph, x) * 2.0 ** -graph.values["y"].frac_bits
    assert np.abs(integer - floats).max() < 2e-4


def test_too_many_steps_are_refused():
    with pytest.raises(KilomlError, match="1 to 65535 time steps"):
        single_op_graph(Node("pool", "global_avgpool", ["x"], ["y"]), (70000, 2))
