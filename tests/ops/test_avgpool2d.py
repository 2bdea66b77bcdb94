"""``avgpool2d``: the C kernel equals the spec for square and rectangular windows, strides
below, equal to and above the window, on extreme maps (the mean of -128s stays -128); the
float forward equals torch's ``AvgPool2d``; padding is refused naming the layer."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node

from .image_cases import graph_of, maps
from .op_harness import BUILDS, assert_c_equals_spec

# (C, H, W), kernel, stride
CASES = {"2x2-s2": ((3, 6, 7), (2, 2), (2, 2)), "3x2-s1x3": ((2, 7, 8), (3, 2), (1, 3)),
         "3x3-s2-overlapping": ((4, 9, 9), (3, 3), (2, 2))}


def _node(kernel, stride, padding=(0, 0, 0, 0)) -> Node:
    return Node("pool", "avgpool2d", ["x"], ["y"],
                {"kernel": list(kernel), "stride": list(stride), "padding": list(padding)},
                path="features.pool")


def _graph(name):
    shape, kernel, stride = CASES[name]
    graph = graph_of(_node(kernel, stride), shape)
    graph.nodes[0].consts["inv"] = round(2**30 / (kernel[0] * kernel[1]))
    return graph, shape


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape = _graph(name)
    assert_c_equals_spec(graph, maps(shape, 6, seed=1), tmp_path,
                         (("host", "fast"), ("host", "sanitize")))


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    graph, shape = _graph("3x3-s2-overlapping")
    assert_c_equals_spec(graph, maps(shape, 4, seed=2), tmp_path, BUILDS)


def test_spec_rounds_the_mean_half_up():
    graph, _ = _graph("2x2-s2")
    x = np.zeros((1, 3, 6, 7), dtype=np.int64)
    x[0, 0, :2, :2] = [[1, 2], [2, 1]]  # mean 1.5 -> 2
    x[0, 1, :2, :2] = [[-1, -2], [-2, -1]]  # mean -1.5 -> -1
    x[0, 2] = -128
    out = simulate(graph, x)[0]
    assert out[0, 0, 0] == 2 and out[1, 0, 0] == -1 and (out[2] == -128).all()


def test_float_forward_equals_torch():
    X = np.random.default_rng(3).normal(size=(2, 3, 9, 9))
    got = run_float(graph_of(_node((3, 3), (2, 2)), (3, 9, 9)), X)["y"]
    expected = torch.nn.AvgPool2d(3, 2)(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)


def test_padding_is_refused_naming_the_layer():
    with pytest.raises(KilomlError, match=r"features.pool: average pooling with padding"):
        graph_of(_node((3, 3), (2, 2), (1, 1, 1, 1)), (3, 8, 8))


def test_c_equals_spec_on_avr(tmp_path, require_gcc, require_avr):
    name = list(CASES)[0]
    graph, shape = _graph(name)
    assert_c_equals_spec(graph, maps(shape, 2, seed=7), tmp_path, (("avr", "fast"),))
