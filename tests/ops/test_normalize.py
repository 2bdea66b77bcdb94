"""``normalize``: the C kernel equals the spec for every shift class (the 32-bit common path
1..31, multiplying shifts <= 0 with and without saturation, shifts >= 32 that give 0), odd
widths and saturating inputs; the op's float forward and quantization rule."""

import numpy as np
import pytest

from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor
from kiloml.ops.normalize import normalize_spec

from .op_harness import BUILDS, assert_c_equals_spec, quantize_node, single_op_graph

SHIFTS = (-20, -15, -9, -1, 0, 1, 2, 14, 30, 31, 32, 33, 45)


def _extreme_inputs(frames: int, features: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (frames, features)
    fixed = [np.full(shape, -32768), np.full(shape, 32767), np.zeros(shape),
             np.where(np.indices(shape).sum(0) % 2 == 0, -32768, 32767)]
    return np.concatenate([np.stack(fixed), rng.integers(-32768, 32768, size=(count, *shape))
                           ]).astype(np.int16)


def _random_node(features: int, shift: int, seed: int) -> Node:
    rng = np.random.default_rng(seed)
    node = Node("norm", "normalize", ["x"], ["y"],
                weights={"mean": np.zeros(features), "std": np.ones(features)})
    node.q = {"mean": QTensor(rng.integers(-32768, 32768, features), 8, 16),
              "inv_std": QTensor(rng.integers(-32768, 32768, features), 12, 16)}
    node.consts = {"shift": shift}
    return node


@pytest.mark.parametrize("shift", SHIFTS)
def test_c_equals_spec_for_every_shift_class(shift, tmp_path, require_gcc):
    graph = single_op_graph(_random_node(7, shift, seed=shift + 50), (5, 7), input_frac_bits=8)
    graph.values["y"].frac_bits = 8
    assert_c_equals_spec(graph, _extreme_inputs(5, 7, 12, seed=shift + 50), tmp_path,
                         (("host", "fast"), ("host", "sanitize")))


@pytest.mark.parametrize("features,shift", [(1, 1), (3, 1), (3, -15), (1, 32)])
def test_c_equals_spec_in_every_build(features, shift, tmp_path, require_gcc,
                                      require_cortex_m):
    graph = single_op_graph(_random_node(features, shift, seed=features), (5, features),
                            input_frac_bits=8)
    graph.values["y"].frac_bits = 8
    assert_c_equals_spec(graph, _extreme_inputs(5, features, 12, seed=features), tmp_path,
                         BUILDS)


def test_spec_is_the_equation_in_int64():
    x = np.array([[-32768, 32767, 5]])
    mean, inv_std = np.array([32767, -32768, 5]), np.array([-32768, -32768, 100])
    product = (x - mean) * inv_std  # exact in int64
    assert normalize_spec(x, mean, inv_std, 3).tolist() == np.clip(
        (product + 4) >> 3, -32768, 32767).tolist()
    assert normalize_spec(x, mean, inv_std, 40).tolist() == [[0, 0, 0]]
    assert normalize_spec(x, mean, inv_std, -2).tolist() == [[32767, -32768, 0]]


def test_quantized_op_follows_the_float_op():
    rng = np.random.default_rng(0)
    mean, std = rng.normal(size=4) * 10, rng.uniform(0.1, 30, size=4)
    X = rng.normal(size=(64, 6, 4)) * std + mean
    node = Node("norm", "normalize", ["x"], ["y"], weights={"mean": mean, "std": std})
    graph = single_op_graph(node, (6, 4), input_frac_bits=8)
    ranges = {}
    floats = run_float(graph, X, ranges)["y"]
    quantize_node(graph, ranges, 16)
    out_format = graph.values["y"].frac_bits
    assert abs(floats).max() * 1.25 * 2 ** out_format <= 32767
    x = np.clip(np.round(X * 2 ** 8), -32768, 32767).astype(np.int16)
    integer = simulate(graph, x) * 2.0 ** -out_format
    assert np.abs(integer - floats).max() < 0.01 * np.abs(floats).max()
