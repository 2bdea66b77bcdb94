"""ShaRNN: shapes, equality with a loop over bricks and steps through the cells, one batched
run of the lower RNN, sparsity groups of both levels, the one-line errors of a bad brick size,
and `kiloml train --model sharnn`."""

import json

import pytest
import torch

from kiloml.cli import default_brick_size, main
from kiloml.errors import KilomlError
from kiloml.models import build_model
from kiloml.nn.sharnn import ShaRNN, ShaRNNConfig
from tests.cli.cli_helpers import error_line, write_npz


def _model(seed: int = 0, **kwargs) -> ShaRNN:
    torch.manual_seed(seed)
    settings = dict(kind="sharnn", input_size=3, num_classes=4, brick_size=4, hidden_size=5,
                    upper_hidden_size=6)
    settings.update(kwargs)
    model = build_model(ShaRNNConfig(**settings))
    model.set_normalization(torch.tensor([0.5, -1.0, 2.0]), torch.tensor([2.0, 0.5, 1.5]))
    return model.double().eval()


def _hand_loop(model: ShaRNN, x: torch.Tensor) -> torch.Tensor:
    """Logits from the cells, one brick, one step and one sequence at a time."""
    c = model.config
    out = []
    for sequence in (x - model.input_mean) / model.input_std:
        summaries = []
        for start in range(0, len(sequence), c.brick_size):
            h = torch.zeros(1, c.hidden_size, dtype=x.dtype)
            for frame in sequence[start:start + c.brick_size]:
                h = model.lower.cell(frame[None], h)
            summaries.append(h)
        g = torch.zeros(1, c.upper_hidden_size, dtype=x.dtype)
        states = []
        for summary in summaries:
            g = model.upper.cell(summary, g)
            states.append(g)
        readout = torch.cat(states).mean(0, keepdim=True) if c.readout == "mean" else g
        out.append(model.head(readout))
    return torch.cat(out)


@pytest.mark.parametrize("kwargs", [dict(), dict(cell="fastrnn", upper_cell="fastgrnn",
                                                 readout="mean", w_rank=2, u_rank=3)])
def test_equals_a_loop_over_bricks_and_steps(kwargs):
    model = _model(**kwargs)
    x = torch.randn(3, 12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (3, 4)
        assert model.summaries(x).shape == (3, 3, 5)
        torch.testing.assert_close(logits, _hand_loop(model, x), rtol=1e-10, atol=1e-10)


def test_a_brick_starts_from_a_zero_state():
    """Changing the first brick changes its summary only."""
    model = _model()
    x = torch.randn(2, 12, 3, dtype=torch.float64)
    y = x.clone()
    y[:, :4] += 1.0
    with torch.no_grad():
        a, b = model.summaries(x), model.summaries(y)
    assert not torch.allclose(a[:, 0], b[:, 0])
    assert torch.equal(a[:, 1:], b[:, 1:])


def test_the_lower_rnn_runs_once_on_all_bricks_of_the_batch():
    model = _model(cell="gru", upper_cell="lstm")
    shapes = []
    model.lower.register_forward_hook(lambda m, args, out: shapes.append(tuple(args[0].shape)))
    with torch.no_grad():
        model(torch.randn(5, 16, 3, dtype=torch.float64))
    assert shapes == [(20, 4, 3)]


def test_both_levels_are_compressible_and_train():
    model = _model(cell="fastgrnn", upper_cell="gru", u_rank=2)
    groups = {g: [name for name, _ in params] for g, params in model.sparsity_groups().items()}
    assert groups == {"W": ["lower.cell.W"], "U": ["lower.cell.U1", "lower.cell.U2"],
                      "head": ["head.weight"]}
    both = _model(upper_cell="fastrnn")
    assert [n for n, _ in both.sparsity_groups()["W"]] == ["lower.cell.W", "upper.cell.W"]
    assert _model(cell="gru", upper_cell="lstm").sparsity_groups() == {}
    loss = both(torch.randn(2, 8, 3, dtype=torch.float64)).square().sum()
    loss.backward()
    assert both.lower.cell.W.grad.abs().sum() > 0 and both.upper.cell.W.grad.abs().sum() > 0


def test_macs_count_both_levels():
    model = _model(cell="fastrnn", upper_cell="fastgrnn")
    # lower: 12 steps x (3 features + 5*3 + 5*5 + 2*5); upper: 3 x (5 + 6*5 + 6*6 + 3*6); head
    assert model.macs(12) == 12 * (3 + 15 + 25 + 10) + 3 * (5 + 30 + 36 + 18) + 4 * 6


def test_bad_brick_sizes_are_one_line_errors():
    with pytest.raises(KilomlError, match="brick-size must be a positive integer"):
        ShaRNNConfig(kind="sharnn", input_size=3, num_classes=2, brick_size=0).validate()
    with pytest.raises(KilomlError, match="--brick-size 4 needs a sequence length that is a "
                                          "positive multiple of it, got 10 steps"):
        _model()(torch.randn(2, 10, 3, dtype=torch.float64))
    with pytest.raises(KilomlError, match="got 2 steps"):
        _model()(torch.randn(2, 2, 3, dtype=torch.float64))
    with pytest.raises(KilomlError, match="unknown upper cell 'rnn'"):
        ShaRNNConfig(kind="sharnn", input_size=3, num_classes=2, upper_cell="rnn").validate()


def test_default_brick_size_is_the_largest_divisor_up_to_the_square_root():
    assert [default_brick_size(t) for t in (128, 49, 98, 12, 7)] == [8, 7, 7, 3, 1]


def test_kiloml_train_sharnn(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")  # 12 steps
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--model", "sharnn", "--brick-size", "4",
                 "--hidden-size", "6", "--u-rank", "4", "--upper-hidden-size", "5",
                 "--upper-cell", "gru",
                 "--epochs", "3", "--folds", "0", "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())["model"]
    assert (config["brick_size"], config["hidden_size"], config["upper_hidden_size"],
            config["cell"], config["upper_cell"]) == (4, 6, 5, "fastgrnn", "gru")
    assert "training sharnn k=4 fastgrnn h=6 / gru h=5" in capsys.readouterr().out
    assert main(["train", "--dataset", str(data), "--model", "sharnn", "--brick-size", "5",
                 "--out", str(tmp_path / "bad")]) == 1
    assert error_line(capsys) == ("error: --brick-size 5 needs a sequence length that is a "
                                  "positive multiple of it, got 12 steps")
    assert main(["train", "--dataset", str(data), "--model", "sharnn", "--cell", "gru",
                 "--upper-cell", "lstm", "--sparsity-w", "0.5",
                 "--out", str(tmp_path / "bad")]) == 1
    assert "--sparsity-w apply to fastgrnn and fastrnn" in error_line(capsys)


def test_the_graph_runs_the_lower_node_per_brick():
    """The integer graph's op sequence: the bricks op, the upper recurrent op, the head."""
    from kiloml.ir import lower_model

    graph = lower_model(_model(cell="lstm", upper_cell="fastrnn").float(), 12)
    assert [(n.op, graph.values[n.outputs[0]].shape) for n in graph.nodes] == [
        ("bricks_lstm", (3, 5)), ("fastrnn", (6,)), ("fully_connected", (4,)), ("argmax", ())]
    assert graph.nodes[0].attrs["brick"] == 4
