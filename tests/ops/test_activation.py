import re

import numpy as np
import pytest

from kiloml.deploy.codegen import library_dir
from kiloml.ops.activation import (
    TANH_TABLE_Q15,
    apply_integer,
    quant_sigm_q15,
    quant_tanh_q15,
    sigmoid_q15,
    tanh_q15,
)

ALL_INT16 = np.arange(-32768, 32768)


@pytest.mark.parametrize("frac_bits", range(16))
def test_tanh_and_sigmoid_error_bounds(frac_bits):
    x = ALL_INT16 / 2.0**frac_bits
    tanh = tanh_q15(ALL_INT16, frac_bits) / 32768.0
    sigmoid = sigmoid_q15(ALL_INT16, frac_bits) / 32768.0
    assert np.abs(tanh - np.tanh(x)).max() < 4.6e-4
    assert np.abs(sigmoid - 0.5 * (1.0 + np.tanh(x / 2.0))).max() < 2.5e-4
    assert tanh.min() >= -32767 / 32768 and tanh.max() <= 32767 / 32768
    assert sigmoid.min() >= 0.0 and sigmoid.max() <= 32767 / 32768


def test_tanh_and_sigmoid_are_monotonic_and_symmetric():
    tanh = tanh_q15(ALL_INT16, 12)
    sigmoid = sigmoid_q15(ALL_INT16, 12)
    assert np.all(np.diff(tanh) >= 0) and np.all(np.diff(sigmoid) >= 0)
    assert np.array_equal(tanh[1:], -tanh[1:][::-1])
    assert np.all(np.abs(sigmoid[1:] + sigmoid[1:][::-1] - 32767) <= 1)


def test_quantized_nonlinearities_clamp():
    x = np.array([-32768, -4096, -2048, 0, 2048, 4096, 32767])  # Q12: -8, -1, -0.5, 0, ...
    assert quant_tanh_q15(x, 12).tolist() == [-32768, -32768, -16384, 0, 16384, 32767, 32767]
    assert quant_sigm_q15(x, 12).tolist() == [0, 0, 8192, 16384, 24576, 32767, 32767]
    assert apply_integer("relu", x, 12).tolist() == [0, 0, 0, 0, 2048, 4096, 32767]


def test_c_table_equals_the_simulator_table():
    source = (library_dir() / "kl_activation.c").read_text()
    body = re.search(r"kl_tanh_table_q15\[KL_TANH_TABLE_SIZE\] KL_CONST = \{(.*?)\};", source, re.S)
    values = [int(v) for v in body.group(1).replace("\n", " ").split(",") if v.strip()]
    assert values == TANH_TABLE_Q15.tolist()
