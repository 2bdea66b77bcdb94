"""``maxpool2d``: the C kernel equals the spec for windows with and without padding (padding
never wins: an all -128 map stays -128), rectangular windows and strides, on extreme maps; the
float forward equals torch's ``MaxPool2d``; padding above half the kernel names the layer."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import run_float
from kiloml.ops.base import Node

from .image_cases import graph_of, maps
from .kernel_coverage import branch_coverage, summary
from .op_harness import BUILDS, SWEEP_BUILDS, LibraryObjects, assert_c_equals_spec

# (C, H, W), kernel, stride, padding
CASES = {"3x3-s2-pad1": ((3, 7, 8), (3, 3), (2, 2), (1, 1, 1, 1)),
         "2x2-s2": ((2, 6, 6), (2, 2), (2, 2), (0, 0, 0, 0)),
         "3x2-s1x2-pad-rows": ((2, 5, 7), (3, 2), (1, 2), (1, 1, 0, 0))}


def _node(kernel, stride, padding) -> Node:
    return Node("pool", "maxpool2d", ["x"], ["y"],
                {"kernel": list(kernel), "stride": list(stride), "padding": list(padding)},
                path="features.pool")


def _graph(name):
    shape, kernel, stride, padding = CASES[name]
    return graph_of(_node(kernel, stride, padding), shape), shape


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape = _graph(name)
    assert_c_equals_spec(graph, maps(shape, 6, seed=1), tmp_path,
                         (("host", "fast"), ("host", "sanitize")))


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    graph, shape = _graph("3x3-s2-pad1")
    assert_c_equals_spec(graph, maps(shape, 4, seed=2), tmp_path, BUILDS)


def test_sweep_reaches_every_branch(tmp_path, require_gcc):
    library = LibraryObjects(tmp_path / "library")
    for name in CASES:
        graph, shape = _graph(name)
        assert_c_equals_spec(graph, maps(shape, 2, seed=3), tmp_path / name, SWEEP_BUILDS,
                             library=library)
    files = branch_coverage(library.coverage_objects())
    assert not files["kl_maxpool2d.c"].untaken(), summary(files, ("kl_maxpool2d.c",))


def test_float_forward_equals_torch():
    X = np.random.default_rng(4).normal(size=(2, 3, 7, 8))
    got = run_float(graph_of(_node((3, 3), (2, 2), (1, 1, 1, 1)), (3, 7, 8)), X)["y"]
    expected = torch.nn.MaxPool2d(3, 2, 1)(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(got, expected, atol=0)


def test_padding_above_half_the_kernel_names_the_layer():
    with pytest.raises(KilomlError, match=r"features.pool: max pooling padding \[2, 2, 2, 2\]"):
        graph_of(_node((3, 3), (1, 1), (2, 2, 2, 2)), (3, 8, 8))


def test_c_equals_spec_on_avr(tmp_path, require_gcc, require_avr):
    name = list(CASES)[0]
    graph, shape = _graph(name)
    assert_c_equals_spec(graph, maps(shape, 2, seed=7), tmp_path, (("avr", "fast"),))
