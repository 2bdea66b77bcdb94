"""FastRNN/FastGRNN cells and layers against hand-computed equations and each other."""

import numpy as np
import pytest
import torch

from kiloml.nn import FastGRNN, FastGRNNCell, FastRNN, FastRNNCell


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _set(cell, **values):
    with torch.no_grad():
        for name, value in values.items():
            getattr(cell, name).copy_(torch.tensor(value, dtype=torch.float64))


def test_fastgrnn_cell_matches_hand_computed_step():
    cell = FastGRNNCell(2, 2).double()
    W = np.array([[0.5, -1.0], [0.25, 2.0]])
    U = np.array([[1.0, 0.5], [-0.5, 0.0]])
    bg, bh = np.array([[0.1, -0.2]]), np.array([[0.0, 0.3]])
    _set(cell, W=W, U=U, bias_gate=bg, bias_update=bh, zeta=[[2.0]], nu=[[-1.0]])
    x, h = np.array([[1.0, 2.0]]), np.array([[0.5, -0.25]])
    # a = W x + U h, written out element by element
    a0 = 0.5 * 1 + -1.0 * 2 + 1.0 * 0.5 + 0.5 * -0.25
    a1 = 0.25 * 1 + 2.0 * 2 + -0.5 * 0.5 + 0.0 * -0.25
    a = np.array([[a0, a1]])
    z = _sigmoid(a + bg)
    c = np.tanh(a + bh)
    expected = z * h + (_sigmoid(2.0) * (1 - z) + _sigmoid(-1.0)) * c
    got = cell(torch.tensor(x), torch.tensor(h)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert abs(got[0, 0] - expected[0, 0]) < 1e-12 and got.shape == (1, 2)


def test_fastrnn_cell_matches_hand_computed_step():
    cell = FastRNNCell(2, 2).double()
    W = np.array([[0.5, -1.0], [0.25, 2.0]])
    U = np.array([[1.0, 0.5], [-0.5, 0.0]])
    b = np.array([[0.1, -0.2]])
    _set(cell, W=W, U=U, bias_update=b, alpha=[[-1.0]], beta=[[1.5]])
    x, h = np.array([[1.0, 2.0]]), np.array([[0.5, -0.25]])
    expected = _sigmoid(1.5) * h + _sigmoid(-1.0) * np.tanh(x @ W.T + h @ U.T + b)
    got = cell(torch.tensor(x), torch.tensor(h)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("gate,update,expected_z", [
    ("quantSigm", "quantTanh", lambda v: np.clip((v + 1) / 2, 0, 1)),
    ("relu", "sigmoid", lambda v: np.maximum(v, 0)),
])
def test_fastgrnn_cell_nonlinearities(gate, update, expected_z):
    cell = FastGRNNCell(1, 3, gate_nonlinearity=gate, update_nonlinearity=update).double()
    _set(cell, W=[[1.0], [1.0], [1.0]], U=np.zeros((3, 3)), bias_gate=[[0.0, 0.0, 0.0]],
         bias_update=[[0.0, 0.0, 0.0]], zeta=[[0.0]], nu=[[0.0]])
    x = torch.tensor([[-3.0]], dtype=torch.float64)
    h = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)
    for value in (-3.0, -0.5, 0.4, 2.5):
        x.fill_(value)
        z = expected_z(value)
        update_fn = {"quantTanh": lambda v: np.clip(v, -1, 1), "sigmoid": _sigmoid}[update]
        expected = z * 1.0 + (0.5 * (1 - z) + 0.5) * update_fn(value)
        np.testing.assert_allclose(cell(x, h).detach().numpy(), np.full((1, 3), expected))


def _reference_sequence(layer, x, h0):
    """Run the layer's cells step by step (batch_first input)."""
    outs, finals = [], []
    for d, cell in enumerate(layer.cells()):
        xs = x.flip(1) if d == 1 else x
        h, steps = h0[d], []
        for t in range(x.shape[1]):
            h = cell(xs[:, t], h)
            steps.append(h)
        out = torch.stack(steps, 1)
        outs.append(out.flip(1) if d == 1 else out)
        finals.append(h)
    return torch.cat(outs, -1), torch.stack(finals)


LAYERS = [
    (FastGRNN, {}), (FastGRNN, {"w_rank": 2, "u_rank": 3}),
    (FastGRNN, {"gate_nonlinearity": "quantSigm", "update_nonlinearity": "quantTanh"}),
    (FastGRNN, {"gate_nonlinearity": "tanh", "update_nonlinearity": "relu"}),
    (FastRNN, {}), (FastRNN, {"u_rank": 2, "update_nonlinearity": "sigmoid"}),
]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cls,kwargs", LAYERS)
def test_fused_layer_matches_cell_loop_values_and_gradients(cls, kwargs, bidirectional):
    torch.manual_seed(0)
    layer = cls(4, 5, batch_first=True, bidirectional=bidirectional, **kwargs).double()
    d = 2 if bidirectional else 1
    x = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(d, 3, 5, dtype=torch.float64, requires_grad=True)
    out, h_n = layer(x, h0)
    ref_out, ref_h_n = _reference_sequence(layer, x, h0)
    assert out.shape == (3, 6, d * 5) and h_n.shape == (d, 3, 5)
    torch.testing.assert_close(out, ref_out, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(h_n, ref_h_n, rtol=1e-10, atol=1e-12)
    g_out, g_h = torch.randn_like(out), torch.randn_like(h_n)
    inputs = [x, h0, *layer.parameters()]
    grads = torch.autograd.grad((out * g_out).sum() + (h_n * g_h).sum(), inputs)
    ref_grads = torch.autograd.grad((ref_out * g_out).sum() + (ref_h_n * g_h).sum(), inputs)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_gradcheck_fastgrnn_scan():
    torch.manual_seed(1)
    layer = FastGRNN(3, 4, w_rank=2, u_rank=2).double()
    x = torch.randn(5, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: layer(inp)[0], (x,))


@pytest.mark.parametrize("cls", [FastGRNN, FastRNN])
def test_low_rank_equals_full_rank_with_the_product(cls):
    torch.manual_seed(2)
    low = cls(6, 8, w_rank=3, u_rank=4)
    full = cls(6, 8)
    with torch.no_grad():
        full_cell, low_cell = full.cell, low.cell
        for name, p in low_cell.named_parameters():
            if name not in ("W1", "W2", "U1", "U2"):
                getattr(full_cell, name).copy_(p)
        full_cell.W.copy_(low_cell.W2 @ low_cell.W1)
        full_cell.U.copy_(low_cell.U2 @ low_cell.U1)
    x = torch.randn(7, 2, 6)
    torch.testing.assert_close(low(x)[0], full(x)[0], rtol=1e-5, atol=1e-6)
    assert torch.linalg.matrix_rank(low.cell.matrix_U()).item() <= 4


def test_nn_gru_calling_convention():
    layer = FastGRNN(3, 4)
    x = torch.randn(9, 2, 3)  # time-major by default, like nn.GRU
    out, h_n = layer(x)
    assert out.shape == (9, 2, 4) and h_n.shape == (1, 2, 4)
    torch.testing.assert_close(out[-1], h_n[0])
    out2, _ = layer(x, torch.zeros(1, 2, 4))
    torch.testing.assert_close(out, out2)
    batch_first = FastGRNN(3, 4, batch_first=True)
    batch_first.load_state_dict(layer.state_dict())
    out3, _ = batch_first(x.transpose(0, 1))
    torch.testing.assert_close(out3.transpose(0, 1), out)


def test_initial_state_changes_output():
    torch.manual_seed(3)
    layer = FastGRNN(3, 4)
    x = torch.randn(5, 2, 3)
    assert not torch.allclose(layer(x)[0], layer(x, torch.ones(1, 2, 4))[0])


def test_parameter_names_and_shapes_follow_edgeml():
    cell = FastGRNNCell(6, 16, w_rank=3, u_rank=4)
    shapes = {n: tuple(p.shape) for n, p in cell.named_parameters()}
    assert shapes == {"W1": (3, 6), "W2": (16, 3), "U1": (4, 16), "U2": (16, 4),
                      "bias_gate": (1, 16), "bias_update": (1, 16), "zeta": (1, 1), "nu": (1, 1)}
    rnn = FastRNNCell(6, 16)
    assert {n: tuple(p.shape) for n, p in rnn.named_parameters()} == {
        "W": (16, 6), "U": (16, 16), "bias_update": (1, 16), "alpha": (1, 1), "beta": (1, 1)}


@pytest.mark.parametrize("bad", [
    lambda: FastGRNN(3, 4)(torch.randn(5, 2, 2)),
    lambda: FastGRNN(3, 4)(torch.randn(5, 2, 3), torch.zeros(2, 2, 4)),
    lambda: FastGRNNCell(3, 4, u_rank=5),
    lambda: FastGRNNCell(3, 0),
])
def test_bad_shapes_raise_clear_errors(bad):
    with pytest.raises(ValueError, match="expected|must be"):
        bad()


def test_unknown_nonlinearity_is_rejected():
    from kiloml.errors import KilomlError

    with pytest.raises(KilomlError, match="unknown non-linearity 'swish'"):
        FastGRNNCell(3, 4, gate_nonlinearity="swish")


@pytest.mark.parametrize("u_rank", [None, 8])
def test_recurrent_matrix_starts_with_unit_singular_values(u_rank):
    torch.manual_seed(0)
    cell = FastGRNNCell(6, 32, u_rank=u_rank)
    singular = torch.linalg.svdvals(cell.matrix_U().detach())
    rank = u_rank or 32
    assert torch.allclose(singular[:rank], torch.ones(rank), atol=1e-5)
    assert torch.all(singular[rank:] < 1e-5)
