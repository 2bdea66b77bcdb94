"""``conv1d``: the C kernel equals the spec for strides, left/right/no padding (and windows that
lie wholly in the padding), odd lengths and channel counts, int8/int16 weights in every
storage kl_matvec reads (narrow, interleaved, dense int16, CSR, rows longer than the int8
limit), every weight shift class (1..31, <= 0, >= 32), both bias rescaling paths, clamps and
saturating inputs; the float forward equals torch and the quantization rule follows it."""

import numpy as np
import pytest

from kiloml.errors import KilomlError
from kiloml.ir.calibrate import run_float
from kiloml.ir.simulate import simulate
from kiloml.ops.base import Node
from kiloml.ops.matrix import kernel_name, matrix_storage

from .conv_cases import (
    extreme_inputs,
    quantized_error,
    random_weights,
    set_output_stage,
    torch_conv,
)
from .op_harness import BUILDS, assert_c_equals_spec, single_op_graph

# steps, in, out, kernel, stride, pad_left, pad_right, bits, keep, shift_w, shift_bias, limits
CASES = {
    "interleaved-s8-stride2": (11, 3, 5, 4, 2, 2, 1, 8, 1.0, 9, -3, (0, 32767)),
    "dense-s16-unpadded": (7, 1, 3, 3, 1, 0, 0, 16, 1.0, 14, 2, (-32768, 32767)),
    "narrow-s8-all-padding-windows": (5, 2, 4, 3, 3, 4, 6, 8, 1.0, 0, -20, (-100, 2000)),
    "csr-s16-one-step": (1, 5, 6, 3, 1, 1, 1, 16, 0.25, 40, 31, (0, 32767)),
    "rows-s8-longer-than-511": (4, 171, 3, 3, 1, 1, 0, 8, 1.0, 12, 30, (0, 32767)),
    "s16-negative-shift": (9, 4, 2, 2, 2, 0, 1, 16, 1.0, -2, -16, (-32768, 32767)),
}


def _node(case: tuple, seed: int) -> tuple[Node, tuple[int, int]]:
    (steps, cin, cout, kernel, stride, left, right, bits, keep, shift_w, shift_b,
     limits) = case
    rng = np.random.default_rng(seed)
    node = Node("conv", "conv1d", ["x"], ["y"],
                {"kernel": kernel, "stride": stride, "pad_left": left, "pad_right": right,
                 "activation": "relu"},
                {"weight": np.zeros((cout, cin, kernel)), "bias": np.zeros(cout)})
    node.q["weight"] = random_weights(rng, (cout, kernel * cin), bits, keep)
    node.consts["shift_weight"] = shift_w
    set_output_stage(node, rng, cout, bits, shift_b, limits)
    return node, (steps, cin)


def _graph(name: str, seed: int = 0):
    node, shape = _node(CASES[name], seed)
    graph = single_op_graph(node, shape, input_frac_bits=8, bits=CASES[name][7])
    graph.values["y"].frac_bits = 8
    return graph, shape


#: Cases also run under the address and undefined-behaviour sanitizers.
SANITIZED = ("narrow-s8-all-padding-windows", "rows-s8-longer-than-511")


@pytest.mark.parametrize("name", list(CASES))
def test_c_equals_spec_on_host(name, tmp_path, require_gcc):
    graph, shape = _graph(name)
    builds = (("host", "fast"), ("host", "sanitize")) if name in SANITIZED else (("host", "fast"),)
    assert_c_equals_spec(graph, extreme_inputs(*shape, 12, seed=1), tmp_path, builds)


def test_c_equals_spec_in_every_build(tmp_path, require_gcc, require_cortex_m):
    graph, shape = _graph("interleaved-s8-stride2", seed=2)
    assert_c_equals_spec(graph, extreme_inputs(*shape, 12, seed=3), tmp_path, BUILDS)


def test_cases_reach_every_matrix_kernel_and_shift_class():
    kernels, shifts = set(), set()
    for name in CASES:
        weight = _graph(name)[0].nodes[0].q["weight"]
        storage = matrix_storage(weight)
        cols = weight.values.shape[1]
        kernels.add(kernel_name(storage["format"], weight.bits, cols, 8 if cols <= 256 else 16))
        shift = CASES[name][9]
        shifts.add("fast" if 1 <= shift <= 31 else ("multiply" if shift <= 0 else "large"))
    assert kernels == {"kl_kernel_dense_s8_interleaved", "kl_kernel_dense_s16",
                       "kl_kernel_dense_s16_narrow", "kl_kernel_dense_s8_narrow",
                       "kl_kernel_csr_s16_u8", "kl_kernel_rows"}
    assert shifts == {"fast", "multiply", "large"}


def test_spec_is_the_equation_in_int64():
    graph, _ = _graph("interleaved-s8-stride2")
    node = graph.nodes[0]
    rng = np.random.default_rng(4)
    x = rng.integers(-32768, 32768, size=(3, 11, 3))
    weight = node.q["weight"].values.reshape(5, 4, 3)  # [out, k, in]
    padded = np.pad(x, ((0, 0), (2, 1), (0, 0)))
    expected = np.zeros((3, 6, 5), dtype=np.int64)
    for t in range(6):
        window = padded[:, 2 * t:2 * t + 4]  # [N, k, in]
        sums = np.einsum("nkc,okc->no", window, weight)
        acc = np.clip((sums + (1 << 8)) >> 9, -(1 << 31), (1 << 31) - 1)
        bias = node.q["bias"].values * 8  # shift -3 multiplies
        expected[:, t] = np.clip(acc + bias, 0, 32767)
    assert np.array_equal(simulate(graph, x), expected)


@pytest.mark.parametrize("kernel,stride,left,right", [(5, 2, 2, 2), (3, 1, 0, 0), (4, 3, 3, 1)])
def test_float_forward_equals_torch(kernel, stride, left, right):
    rng = np.random.default_rng(kernel)
    weight, bias = rng.normal(size=(6, 3, kernel)), rng.normal(size=6)
    node = Node("conv", "conv1d", ["x"], ["y"],
                {"kernel": kernel, "stride": stride, "pad_left": left, "pad_right": right,
                 "activation": "relu"}, {"weight": weight, "bias": bias})
    X = rng.normal(size=(4, 13, 3))
    graph = single_op_graph(node, (13, 3))
    got = run_float(graph, X)["y"]
    np.testing.assert_allclose(got, torch_conv(X, weight, bias, stride, left, right),
                               atol=1e-12)
    assert got.shape == (4, graph.values["y"].shape[0], 6)


@pytest.mark.parametrize("bits,tolerance", [(16, 0.003), (8, 0.03)])
def test_quantized_op_follows_the_float_op(bits, tolerance):
    rng = np.random.default_rng(5)
    node = Node("conv", "conv1d", ["x"], ["y"],
                {"kernel": 5, "stride": 2, "pad_left": 2, "pad_right": 2, "activation": "relu"},
                {"weight": rng.normal(size=(8, 4, 5)) * 0.3, "bias": rng.normal(size=8) * 0.5})
    floats, integer = quantized_error(node, rng.normal(size=(32, 21, 4)) * 2, 11, bits)
    assert np.abs(integer - floats).max() < tolerance * np.abs(floats).max()


def test_a_too_short_input_names_the_module():
    node = Node("conv", "conv1d", ["x"], ["y"],
                {"kernel": 7, "stride": 1, "pad_left": 1, "pad_right": 1, "activation": "relu"},
                {"weight": np.zeros((2, 3, 7)), "bias": np.zeros(2)}, path="stem")
    with pytest.raises(KilomlError, match="stem: 4 time steps are fewer than the kernel of 7"):
        single_op_graph(node, (4, 3))
