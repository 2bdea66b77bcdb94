import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.ir import (
    dequantize_output,
    float_graph_logits,
    lower_model,
    quantize_input,
    quantize_model,
    simulate,
)
from kiloml.ir.serialize import load_graph, save_graph

CONFIGS = [
    dict(),
    dict(w_rank=3, u_rank=8, readout="mean"),
    dict(kind="fastrnn"),
    dict(kind="fastrnn", w_rank=4, readout="mean"),
    dict(gate_nonlinearity="quantSigm", update_nonlinearity="quantTanh"),
    dict(update_nonlinearity="relu", u_rank=5),
    dict(gate_nonlinearity="tanh", update_nonlinearity="sigmoid", readout="mean"),
    dict(frame_stack=4, w_rank=3, u_rank=8),
    dict(kind="fastrnn", frame_stack=2, readout="mean"),
]


def _float_logits(model, X):
    with torch.no_grad():
        return model(torch.from_numpy(X)).double().numpy()


@pytest.mark.parametrize("config", CONFIGS)
def test_float_graph_equals_the_torch_model(make_inputs, make_model, config):
    X = make_inputs(16, 24, seed=1)
    model = make_model(X, **config)
    graph = lower_model(model, 24)
    np.testing.assert_allclose(float_graph_logits(graph, X), _float_logits(model, X),
                               atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("bits, tolerance", [(16, 0.02), (8, 0.12)])
def test_simulator_agrees_with_the_float_model(make_inputs, make_model, config, bits, tolerance):
    X = make_inputs(96, 32, seed=2)
    model = make_model(X, **config)
    q = quantize_model(model, X[:48], bits=bits)
    integer = dequantize_output(q, simulate(q, quantize_input(q, X[48:])))
    reference = _float_logits(model, X[48:])
    spread = np.abs(reference).max()
    assert np.abs(integer - reference).max() < tolerance * spread
    assert np.mean(integer.argmax(1) == reference.argmax(1)) >= (0.95 if bits == 16 else 0.85)


def test_simulating_one_input_at_a_time_matches_the_batch(make_inputs, make_model):
    X = make_inputs(4, 16, seed=3)
    q = quantize_model(make_model(X), X)
    x = quantize_input(q, X)
    batch = simulate(q, x)
    for i in range(len(x)):
        assert np.array_equal(simulate(q, x[i:i + 1])[0], batch[i])


def test_saturation_at_int16_limits_stays_in_range(make_inputs, make_model):
    X = make_inputs(32, 16, seed=4)
    model = make_model(X, update_nonlinearity="relu")
    with torch.no_grad():
        model.rnn.cell.U.mul_(20.0)  # make the state explode so that it saturates
    q = quantize_model(model, X, bits=16)
    extremes = np.stack([np.full((16, 6), -32768), np.full((16, 6), 32767),
                         np.tile([[-32768], [32767]], (8, 6))]).astype(np.int16)
    logits = simulate(q, extremes)
    assert logits.dtype == np.int64
    assert np.all(logits >= -(1 << 31)) and np.all(logits < (1 << 31))
    assert np.array_equal(logits, simulate(q, extremes))
    huge = make_inputs(4, 16, seed=5) * 1e6
    assert np.array_equal(quantize_input(q, huge), np.clip(
        np.round(huge * 2.0 ** q.values["x"].frac_bits), -32768, 32767).astype(np.int16))


def test_input_outside_calibration_range_saturates_not_wraps(make_inputs, make_model):
    X = make_inputs(8, 16, seed=6)
    q = quantize_model(make_model(X), X)
    x = quantize_input(q, X * 100.0)
    assert x.min() == -32768 and x.max() == 32767


def test_bidirectional_fails_with_a_message(make_inputs, make_model):
    X = make_inputs(4, 8, seed=0)
    with pytest.raises(KilomlError, match="cannot export rnn .FastGRNN.: .* unidirectional"):
        quantize_model(make_model(X, bidirectional=True), X)


@pytest.mark.parametrize("frame_stack", [1, 4])
def test_serialized_model_simulates_identically(make_inputs, make_model, tmp_path, frame_stack):
    X = make_inputs(8, 16, seed=7)
    q = quantize_model(make_model(X, w_rank=2, u_rank=4, frame_stack=frame_stack), X, bits=8)
    save_graph(q, tmp_path / "q.npz")
    loaded = load_graph(tmp_path / "q.npz")
    x = quantize_input(q, X)
    assert x.shape == (8, 16 // frame_stack, 6 * frame_stack)
    assert loaded.values["x"].shape == x.shape[1:]
    assert loaded.meta == q.meta and loaded.values == q.values
    assert [n.consts for n in loaded.nodes] == [n.consts for n in q.nodes]
    assert np.array_equal(simulate(loaded, x), simulate(q, x))


def test_stacked_input_is_the_raw_input_in_the_same_memory_order(make_inputs, make_model):
    """The C code gets a [T][F] buffer as is: stacking must not reorder values."""
    X = make_inputs(3, 16, seed=4)
    model = make_model(X, frame_stack=4)
    plain, stacked = (quantize_model(m, X, bits=8) for m in (make_model(X), model))
    assert stacked.values["x"].frac_bits == plain.values["x"].frac_bits
    assert np.array_equal(quantize_input(stacked, X).ravel(), quantize_input(plain, X).ravel())
    assert np.array_equal(stacked.nodes[0].q["input_mean"].values,
                          np.tile(plain.nodes[0].q["input_mean"].values, 4))


def test_zero_standard_deviation_is_refused(make_inputs, make_model):
    X = make_inputs(4, 8, seed=0)
    model = make_model(X)
    model.set_normalization(torch.zeros(6), torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]))
    with pytest.raises(KilomlError, match="input_std"):
        quantize_model(model, X)


def test_a_module_without_a_lowering_is_named_with_its_path(make_inputs, make_model):
    X = make_inputs(4, 8, seed=0)
    model = make_model(X)
    model.head = torch.nn.Sequential(torch.nn.Linear(32, 7), torch.nn.Tanh())
    with pytest.raises(KilomlError, match=r"cannot export head\.1 \(Tanh\)"):
        quantize_model(model, X)
