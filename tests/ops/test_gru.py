"""``gru``: the C kernel equals the spec on random and extreme parameters (Q-formats across
Q0..Q20, every matvec shift class, int8 and int16 weights, dense and CSR matrices, odd widths,
saturating weights and inputs, the constants that make the kernel leave its fast path) in
fast, reference and sanitized builds on the host and Cortex-M4/M3; the float forward equals
``torch.nn.GRU``; the quantized op follows the float one."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.ir import dequantize_output, quantize_input, quantize_model, simulate
from kiloml.ir.calibrate import run_float
from kiloml.ir.lower import lower_model
from kiloml.nn.classifier import ModelConfig, build_model
from kiloml.ops.gru import CALIBRATED

from .op_harness import BUILDS, assert_c_equals_spec
from .recurrent_cases import (
    calibration_inputs,
    extreme_inputs,
    integer_state,
    one_node_graph,
    quantize_calibrated,
    quantize_with_ranges,
    random_classifier,
    random_ranges,
    saturate_weights,
    torch_readout,
    torch_rnn,
)


def _random_case(seed: int):
    """Random shapes, weight width, readout and calibration ranges."""
    rng = np.random.default_rng(seed)
    features, hidden, steps = (int(v) for v in rng.integers(1, [10, 13, 8]))
    readout = ("last", "mean")[seed % 2]
    graph = one_node_graph(torch_rnn("gru", features, hidden, seed), steps, readout, seed)
    quantize_with_ranges(graph, random_ranges(CALIBRATED, seed), (8, 16)[seed // 2 % 2])
    return graph, extreme_inputs(steps, features, 12, seed)


@pytest.mark.parametrize("seed", range(5))
def test_c_equals_spec_on_random_parameters(seed, tmp_path, require_gcc):
    graph, inputs = _random_case(seed)
    assert_c_equals_spec(graph, inputs, tmp_path, (("host", "fast"),))


def _calibrated_sparse_int8():
    """Calibrated on data, 80% of every matrix pruned (CSR), 9 features (the interleaved int8
    kernel), mean readout over 7 steps."""
    module = torch_rnn("gru", 9, 11, seed=20)
    with torch.no_grad():
        for param in (module.weight_ih_l0, module.weight_hh_l0):
            param.mul_((torch.rand_like(param) < 0.2).double())
    graph = one_node_graph(module, 7, "mean", seed=20)
    quantize_calibrated(graph, calibration_inputs(graph, 64, seed=20), 8)
    assert graph.nodes[0].q["U_r"].values.size > 2 * np.count_nonzero(
        graph.nodes[0].q["U_r"].values)
    return graph, extreme_inputs(7, 9, 12, seed=20)


def _saturated_int16():
    """Every weight and bias at full scale with alternating signs: pre-activations, gate
    inputs and the state saturate. The ranges give matvec shifts of every class: >= 32
    (W_r), 1..31 (W_z) and <= 0 (U_n)."""
    graph = one_node_graph(torch_rnn("gru", 5, 6, seed=21), 6, "last", seed=21)
    ranges = dict(normalized=2.0**-8, pre_r=2.0**14, pre_z=2.0**-8, pre_n=1.0,
                  hidden_n=2.0**-8, state=2.0**14)
    quantize_with_ranges(graph, ranges, 16)
    consts = graph.nodes[0].consts
    assert consts["shift_W_r"] >= 32 and 1 <= consts["shift_W_z"] <= 31
    assert consts["shift_U_n"] <= 0
    saturate_weights(graph)
    return graph, extreme_inputs(6, 5, 12, seed=21)


def _off_the_fast_path():
    """Constants the fast update does not take, so the kernel runs its reference loop: the
    reset product shifted left (hidden_n in Q0, pre_n in Q20) and a bias read with a shift
    below -14 (a bias in Q-8 added in Q20)."""
    module = torch_rnn("gru", 4, 5, seed=22)
    with torch.no_grad():
        module.bias_ih_l0[:5].fill_(20000.0)  # bias_r in Q-8
    graph = one_node_graph(module, 5, "last", seed=22)
    ranges = dict(normalized=4.0, pre_r=0.01, pre_z=3.0, pre_n=0.01, hidden_n=20000.0,
                  state=1.0)
    quantize_with_ranges(graph, ranges, 16)
    consts = graph.nodes[0].consts
    assert consts["shift_reset"] < 1 and consts["shift_bias_r"] < -14
    return graph, extreme_inputs(5, 4, 12, seed=22)


@pytest.mark.parametrize("case", [_calibrated_sparse_int8, _saturated_int16],
                         ids=["calibrated-sparse-int8", "saturated-int16"])
def test_c_equals_spec_in_every_build(case, tmp_path, require_gcc, require_cortex_m):
    graph, inputs = case()
    assert_c_equals_spec(graph, inputs, tmp_path, BUILDS)


def test_c_equals_spec_off_the_fast_path(tmp_path, require_gcc, require_cortex_m):
    """The fast builds run the reference update here (the reference builds always do)."""
    graph, inputs = _off_the_fast_path()
    assert_c_equals_spec(graph, inputs, tmp_path,
                         (("host", "fast"), ("host", "sanitize"), ("cortex-m4", "fast")))


@pytest.mark.parametrize("readout", ["last", "mean"])
@pytest.mark.parametrize("bias", [True, False])
def test_float_forward_equals_torch(readout, bias):
    module = torch_rnn("gru", 5, 7, seed=3, bias=bias)
    graph = one_node_graph(module, 9, readout, seed=3)
    X = calibration_inputs(graph, 16, seed=3)
    ours = run_float(graph, X)[graph.output]
    np.testing.assert_allclose(ours, torch_readout(module, graph, X, readout), rtol=0,
                               atol=1e-9)


def test_state_follows_the_float_state():
    """Calibrated on 64 sequences, the integer state of 64 others stays within 0.004 (int16
    weights) and 0.02 (int8) of torch's, whose values lie in (-1, 1); measured largest
    errors 0.0014 and 0.0048."""
    for bits, tolerance in ((16, 0.004), (8, 0.02)):
        module = torch_rnn("gru", 6, 16, seed=0)
        graph = one_node_graph(module, 20, "last", seed=0)
        X = calibration_inputs(graph, 128, seed=0)
        quantize_calibrated(graph, X[:64], bits)
        error = np.abs(integer_state(graph, X[64:]) - torch_readout(module, graph, X[64:],
                                                                    "last")).max()
        assert error < tolerance, bits


@pytest.mark.parametrize("bits, tolerance", [(16, 0.005), (8, 0.02)])
def test_quantized_classifier_follows_the_float_one(bits, tolerance):
    """A random SequenceClassifier(kind="gru"), hidden 32, 32 steps, calibrated on 256
    sequences: on 256 others its integer logits stay within ``tolerance`` of their spread and
    pick the float model's class on every one (measured: 100% at int16 and at int8; largest
    logit errors 0.19% and 1.3% of the spread)."""
    model, X = random_classifier("gru", 512, 32, seed=0)
    q = quantize_model(model, X[:256], bits=bits)
    integer = dequantize_output(q, simulate(q, quantize_input(q, X[256:])))
    with torch.no_grad():
        reference = model(torch.from_numpy(X[256:])).double().numpy()
    assert np.abs(integer - reference).max() < tolerance * np.abs(reference).max()
    assert np.mean(integer.argmax(1) == reference.argmax(1)) == 1.0


@pytest.mark.parametrize("change, message", [
    (dict(bidirectional=True), r"cannot export rnn \(GRU\): .* unidirectional layer"),
    (dict(num_layers=2), r"cannot export rnn \(GRU\): .* one layer, got num_layers=2"),
])
def test_unsupported_layers_are_named_in_one_line(change, message):
    model = build_model(ModelConfig(kind="gru", input_size=3, num_classes=4, hidden_size=8))
    model.rnn = torch.nn.GRU(3, 8, batch_first=True, **change)
    with pytest.raises(KilomlError, match=message):
        lower_model(model, 10)
