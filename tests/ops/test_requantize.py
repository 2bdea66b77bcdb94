"""The image ops' output stage (``ops/requantize.py``): the multiplier and shift reproduce the
rescaling factor to 2**-31, tiny factors keep the largest shift, an impossible factor is a
one-line error naming the layer, per-channel scales give every channel the whole int8 range
(an all-zero channel borrows the largest scale), ReLU6's clamp follows the output's Q-format,
and the spec saturates ``sum + bias`` before the product."""

import numpy as np
import pytest

from kiloml.errors import KilomlError
from kiloml.ops.base import Node
from kiloml.ops.fixed import QTensor
from kiloml.ops.requantize import (
    activation_limits,
    channel_scales,
    int8_format,
    quantize_conv,
    quantize_multiplier,
    requantize,
)


def test_the_multiplier_reproduces_the_factor():
    for factor in np.exp(np.random.default_rng(0).uniform(np.log(2.0**-30), np.log(2.0**29),
                                                          500)):
        mult, shift = quantize_multiplier(float(factor), "layer")
        assert (1 << 30) <= mult < (1 << 31) and 1 <= shift <= 62
        assert abs(mult * 2.0**-shift / factor - 1) <= 2.0**-30


def test_a_factor_that_rounds_up_to_two_to_the_31_moves_to_the_next_exponent():
    mult, shift = quantize_multiplier(1 - 2.0**-40, "layer")
    assert (mult, shift) == (1 << 30, 30)


def test_tiny_factors_keep_the_largest_shift():
    assert quantize_multiplier(2.0**-40, "layer") == (1 << 22, 62)
    assert quantize_multiplier(2.0**-70, "layer") == (0, 62)


def test_a_factor_too_large_names_the_layer():
    with pytest.raises(KilomlError, match=r"^features.0: an output rescaling factor of 2.15e\+09"):
        quantize_multiplier(2.0**31, "features.0")


def test_every_channel_uses_the_whole_int8_range():
    weight = np.array([[0.001, -0.002], [300.0, 1.0], [0.0, 0.0]])
    scales = channel_scales(weight)
    assert scales.tolist() == [0.002 / 127, 300.0 / 127, 300.0 / 127]
    node = Node("conv", "conv2d", ["x"], ["y"], {"activation": "relu6"}, path="conv")
    quantize_conv(node, weight, np.array([0.5, -1.0, 2.0]), in_frac_bits=4, out_frac_bits=4)
    assert node.q["weight"].values.tolist() == [[64, -127], [127, 0], [0, 0]]
    # bias in the scale of the sums: 0.5 * 2**4 / (0.002 / 127)
    assert node.q["bias"].values[0] == round(0.5 * 16 / (0.002 / 127))
    assert (node.consts["act_min"], node.consts["act_max"]) == (0, 96)


def test_relu6_clamps_at_six_or_the_format_limit():
    assert activation_limits("relu6", 4) == (0, 96)
    assert activation_limits("relu6", 3) == (0, 48)
    assert activation_limits("relu6", 5) == (0, 127)
    assert activation_limits("none", 5) == (-128, 127)
    assert int8_format(6.0) == 4 and int8_format(3.9) == 5 and int8_format(0.0) == 14


def test_the_sum_and_the_bias_saturate_before_the_product():
    node = Node("conv", "conv2d", ["x"], ["y"], {"activation": "none"})
    node.q = {"bias": QTensor(np.array([(1 << 31) - 1, -(1 << 31)]), 0, 32),
              "mult": QTensor(np.array([1 << 30, 1 << 30]), 0, 32),
              "shift": QTensor(np.array([40, 33]), 0, 8)}
    sums = np.array([[[[5]], [[-5]]]])  # [N=1, C=2, 1, 1]
    out = requantize(sums, node)
    assert out[0, 0, 0, 0] == (((1 << 31) - 1) * (1 << 30) + (1 << 39)) >> 40
    assert out[0, 1, 0, 0] == (-(1 << 31) * (1 << 30) + (1 << 32)) >> 33
