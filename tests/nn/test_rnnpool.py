"""RNNPool against a hand-computed case and against a per-patch loop of the reference cells."""

import numpy as np
import pytest
import torch

from kiloml.errors import KilomlError
from kiloml.nn import RNNPool, RNNPoolLayer
from kiloml.nn.rnnpool import init_as_edgeml


def _randomize(module: torch.nn.Module, seed: int) -> None:
    """Every parameter random, with ``zeta``/``nu`` away from the saturated default so that
    every term of the FastGRNN update matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            scale = 0.5 if name.endswith(("W", "U")) else 1.0
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def _loop_reference(layer: RNNPoolLayer, x: torch.Tensor) -> torch.Tensor:
    """The layer computed patch by patch, row by row and step by step with the cells' forward."""
    pool = layer.pool
    (r, c), (sr, sc) = layer.patch_size, layer.stride
    n, _, height, width = x.shape
    out_h, out_w = (height - r) // sr + 1, (width - c) // sc + 1
    out = x.new_zeros(n, 4 * pool.hidden2, out_h, out_w)

    def sweep(cell, steps):
        h = x.new_zeros(1, cell.hidden_size)
        for step in steps:
            h = cell(step.reshape(1, -1), h)
        return h[0]

    for b in range(n):
        for i in range(out_h):
            for j in range(out_w):
                patch = x[b, :, i * sr:i * sr + r, j * sc:j * sc + c]
                rows = [sweep(pool.rnn1, [patch[:, k, m] for m in range(c)]) for k in range(r)]
                cols = [sweep(pool.rnn1, [patch[:, k, m] for k in range(r)]) for m in range(c)]
                out[b, :, i, j] = torch.cat([sweep(pool.rnn2, rows),
                                             sweep(pool.rnn2, rows[::-1]),
                                             sweep(pool.rnn2, cols),
                                             sweep(pool.rnn2, cols[::-1])])
    return out


def _sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def test_rnnpool_matches_hand_computed_two_by_one_patch():
    # C = h1 = h2 = 1: every matrix is a number and every step can be written out.
    pool = RNNPool(1, 1, 1).double()
    w1, u1, g1, b1, w2, u2, g2, b2 = 0.8, -0.5, 0.2, -0.1, 1.5, 0.3, -0.4, 0.25
    zeta, nu = 0.5, -1.0
    with torch.no_grad():
        for cell, (w, u, g, b) in ((pool.rnn1, (w1, u1, g1, b1)), (pool.rnn2, (w2, u2, g2, b2))):
            cell.W.fill_(w), cell.U.fill_(u), cell.bias_gate.fill_(g), cell.bias_update.fill_(b)
            cell.zeta.fill_(zeta), cell.nu.fill_(nu)

    def step(h, x, w, u, g, b):
        a = w * x + u * h
        z, c = _sigmoid(a + g), np.tanh(a + b)
        return z * h + (_sigmoid(zeta) * (1 - z) + _sigmoid(nu)) * c

    top, bottom = 0.7, -1.2  # the patch: 2 rows × 1 column, 1 channel
    row0 = step(0.0, top, w1, u1, g1, b1)  # each row is one step long
    row1 = step(0.0, bottom, w1, u1, g1, b1)
    col0 = step(step(0.0, top, w1, u1, g1, b1), bottom, w1, u1, g1, b1)  # the column: 2 steps
    rnn2 = (w2, u2, g2, b2)
    expected = [step(step(0.0, row0, *rnn2), row1, *rnn2),
                step(step(0.0, row1, *rnn2), row0, *rnn2),
                step(0.0, col0, *rnn2),
                step(0.0, col0, *rnn2)]
    got = pool(torch.tensor([[[[top], [bottom]]]], dtype=torch.float64))
    assert got.shape == (1, 4)
    np.testing.assert_allclose(got[0].detach().numpy(), expected, rtol=1e-13, atol=1e-15)
    assert abs(expected[0] - expected[1]) > 1e-3  # forward and backward sweeps differ


@pytest.mark.parametrize("patch, stride, shape", [
    (3, 2, (2, 2, 7, 6)),            # square patches, overlapping
    ((2, 4), (3, 1), (2, 3, 8, 7)),  # rectangular patches, different strides per axis
    ((4, 1), (4, 1), (1, 2, 4, 3)),  # one-column patches
])
def test_layer_equals_a_loop_of_cell_steps_per_patch(patch, stride, shape):
    torch.manual_seed(0)
    layer = RNNPoolLayer(shape[1], patch, stride, h1=4, h2=3).double()
    _randomize(layer, seed=1)
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    out = layer(x)
    expected_x = x.detach().clone().requires_grad_(True)
    expected = _loop_reference(layer, expected_x)
    assert out.shape == expected.shape
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    # gradients through the fused scans equal those through the loop
    weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(2),
                          dtype=torch.float64)
    params = list(layer.parameters())
    got = torch.autograd.grad((out * weights).sum(), [x, *params])
    want = torch.autograd.grad((expected * weights).sum(), [expected_x, *params])
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-12)


def test_output_shape_and_parameters():
    layer = RNNPoolLayer(3, (4, 6), (2, 3), h1=5, h2=7)
    assert layer(torch.randn(2, 3, 10, 15)).shape == (2, 28, 4, 4)
    assert layer.out_channels == 28 and layer.output_size(32, 32) == (15, 9)
    # one RNN1 (3 -> 5) and one RNN2 (5 -> 7), shared by every sweep and patch
    counts = {name: p.numel() for name, p in layer.named_parameters()}
    assert sum(counts.values()) == (5 * 3 + 5 * 5 + 2 * 5 + 2) + (7 * 5 + 7 * 7 + 2 * 7 + 2)
    # the paper's pooling experiment: a whole 32×32 image to one vector of 4·h2 = 128
    whole = RNNPoolLayer(3, 32, 32, 32, 32)
    assert whole(torch.randn(2, 3, 32, 32)).shape == (2, 128, 1, 1)


def test_init_as_edgeml_draws_matrices_from_0_1_normal_and_sets_both_biases_to_1():
    torch.manual_seed(0)
    layer = RNNPoolLayer(64, 8, 8, h1=64, h2=64)
    # kiloml's default beforehand: orthogonal U, update bias 0
    cell = layer.pool.rnn2
    torch.testing.assert_close(cell.U @ cell.U.t(), torch.eye(64), atol=1e-5, rtol=0)
    assert torch.all(cell.bias_update == 0)
    assert init_as_edgeml(layer) is layer
    for cell in (layer.pool.rnn1, layer.pool.rnn2):
        for name in ("W", "U"):  # 4,096 draws each: std within ~2.5 % of 0.1
            values = getattr(cell, name).detach()
            assert abs(values.mean().item()) < 0.005
            assert abs(values.std().item() - 0.1) < 0.005
        assert torch.all(cell.bias_gate == 1) and torch.all(cell.bias_update == 1)
        assert cell.zeta.item() == 100.0 and cell.nu.item() == -100.0
    # U is no longer orthogonal: its rows have squared norm 64·0.01 ≈ 0.64, not 1
    gram = cell.U @ cell.U.t()
    assert abs(gram.diagonal().mean().item() - 0.64) < 0.05
    # the bare RNNPool too, and nothing else
    pool = RNNPool(3, 4, 5)
    assert init_as_edgeml(pool) is pool and torch.all(pool.rnn1.bias_update == 1)
    with pytest.raises(KilomlError, match="expects an RNNPool or RNNPoolLayer, got Linear"):
        init_as_edgeml(torch.nn.Linear(2, 2))


def test_gradients_reach_every_input_and_weight():
    layer = RNNPoolLayer(2, (3, 2), 2, h1=4, h2=3).double()
    x = torch.randn(2, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad.abs().min() > 0  # every pixel lies in some patch
    for name, p in layer.named_parameters():
        if name.endswith(("zeta", "nu")):
            continue  # saturated at initialisation (sigmoid(±100)): gradient ~1e-44
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    small = RNNPoolLayer(1, 2, 1, h1=2, h2=2).double()
    _randomize(small, seed=3)
    assert torch.autograd.gradcheck(small, torch.randn(1, 1, 3, 3, dtype=torch.float64,
                                                       requires_grad=True))


@pytest.mark.parametrize("kwargs, message", [
    (dict(patch_size=0), "patch_size must be a positive integer or a pair"),
    (dict(patch_size=(2, 3, 4)), "patch_size must be"),
    (dict(patch_size="3"), "patch_size must be"),
    (dict(stride=(1, -1)), "stride must be"),
    (dict(stride=True), "stride must be"),
    (dict(h1=0), "h1 must be a positive integer"),
    (dict(h2=2.5), "h2 must be a positive integer"),
    (dict(in_channels=0), "in_channels must be a positive integer"),
])
def test_bad_arguments_are_one_line_errors(kwargs, message):
    args = dict(in_channels=3, patch_size=4, stride=4, h1=4, h2=4) | kwargs
    with pytest.raises(KilomlError, match=message) as err:
        RNNPoolLayer(**args)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("shape, message", [
    ((2, 3, 3, 8), r"patch 4x4 is larger than the 3x8 map"),
    ((2, 1, 8, 8), r"expects images \[N, 3, H, W\], got \[2, 1, 8, 8\]"),
    ((3, 8, 8), r"expects images \[N, 3, H, W\], got \[3, 8, 8\]"),
])
def test_bad_inputs_are_one_line_errors(shape, message):
    layer = RNNPoolLayer(3, 4, 4, 4, 4)
    with pytest.raises(KilomlError, match=message) as err:
        layer(torch.zeros(shape))
    assert "\n" not in str(err.value)
