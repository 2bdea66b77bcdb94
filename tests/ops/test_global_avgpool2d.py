"""``global_avgpool2d``: the C kernel equals the spec (int8 map → int16 means) for odd and
square maps and every shift the rule can choose, on extreme maps; the float forward is the
mean; the quantization rule keeps the mean within one int16 step."""

import numpy as np
import pytest

from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node

from .image_cases import maps
from .op_harness import BUILDS, assert_c_equals_spec, quantize_node, single_op_graph


def _graph(shape, shift, in_frac=4):
    node = Node("pool", "global_avgpool2d", ["x"], ["y"], path="pool")
    graph = single_op_graph(node, shape, input_frac_bits=in_frac, input_dtype="int8")
    node.consts = {"inv": round(2**30 / (shape[1] * shape[2])), "shift": shift}
    graph.values["y"].frac_bits = 30 + in_frac - shift
    return graph


@pytest.mark.parametrize("shape,shift", [((5, 3, 7), 22), ((3, 4, 4), 34), ((2, 1, 1), 2)])
def test_c_equals_spec_on_host(shape, shift, tmp_path, require_gcc):
    assert_c_equals_spec(_graph(shape, shift), maps(shape, 6, seed=1), tmp_path,
                         (("host", "fast"), ("host", "sanitize")))


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    assert_c_equals_spec(_graph((6, 5, 5), 20), maps((6, 5, 5), 4, seed=2), tmp_path, BUILDS)


def test_a_small_shift_saturates_the_int16_mean():
    graph = _graph((2, 1, 1), 2)
    out = simulate(graph, np.full((1, 2, 1, 1), -128))[0]
    assert out.tolist() == [-32768, -32768]


def test_quantized_mean_is_within_one_step():
    rng = np.random.default_rng(3)
    node = Node("pool", "global_avgpool2d", ["x"], ["y"], path="pool")
    graph = single_op_graph(node, (4, 6, 6), input_frac_bits=4, input_dtype="int8")
    x = rng.integers(-128, 128, size=(16, 4, 6, 6))
    ranges: dict[str, float] = {}
    floats = run_float(graph, x / 16.0, ranges)["y"]
    quantize_node(graph, ranges, 8)
    step = 2.0 ** -graph.values["y"].frac_bits
    assert np.abs(simulate(graph, x) * step - floats).max() <= step


def test_c_equals_spec_on_avr(tmp_path, require_gcc, require_avr):
    assert_c_equals_spec(_graph((5, 3, 7), 22), maps((5, 3, 7), 2, seed=7), tmp_path,
                         (("avr", "fast"),))
