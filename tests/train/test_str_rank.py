"""Low-rank STR (``--learn-rank``): the learned ranks within the budget, the factors a run
stores and exports, and the errors."""

import json

import pytest
import torch
from safetensors.torch import load_file
from torch.nn.utils import parametrize

from kiloml.cli import main
from kiloml.compress.rank_threshold import numerical_rank
from kiloml.errors import KilomlError
from kiloml.nn import ModelConfig
from kiloml.train.fit import fit, new_model
from kiloml.train.trainer import TrainConfig, Trainer
from tests.cli.cli_helpers import error_line, write_npz

QUICK = ["--hidden-size", "8", "--epochs", "6", "--batch-size", "32", "--folds", "0"]


def _config(**kwargs):
    base = dict(kind="fastgrnn", input_size=3, num_classes=3, hidden_size=8)
    base.update(kwargs)
    return ModelConfig(**base)


def _stored(rank: int, rows: int, cols: int) -> int:
    return min(rank * (rows + cols), rows * cols)


def test_learned_ranks_meet_the_budget_and_stay_fixed(tiny_data):
    config = TrainConfig(epochs=6, batch_size=16, compress="str", learn_rank=True,
                         target_sparsity={"total": 0.6}, seed=3)
    model = new_model(_config(), tiny_data, seed=3)
    trainer = Trainer(model, tiny_data, config)
    result = trainer.fit()
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    ranks = result.compression["ranks"]
    assert set(ranks) == {"rnn.cell.W", "rnn.cell.U"}
    cell = model.rnn.cell
    assert numerical_rank(cell.W) == ranks["rnn.cell.W"]  # kept through the last phase
    assert numerical_rank(cell.U) == ranks["rnn.cell.U"]
    stored = (_stored(ranks["rnn.cell.W"], 8, 3) + _stored(ranks["rnn.cell.U"], 8, 8)
              + int(torch.count_nonzero(model.head.weight)))
    total = 8 * 3 + 8 * 8 + 3 * 8
    # at or past the target, by less than the largest step (one component of U: 16 values)
    assert 0.6 * total - 0.5 <= total - stored < 0.6 * total + 16
    assert result.compression["reached"]["total"] == pytest.approx(1 - stored / total)
    assert 1 <= ranks["rnn.cell.U"] < 8


def test_fit_stores_the_factors_of_the_learned_ranks(tiny_data):
    config = TrainConfig(epochs=6, batch_size=16, compress="str", learn_rank=True,
                         target_sparsity={"W": 0.5, "U": 0.7}, seed=1)
    outcome = fit(tiny_data, _config(), config)
    ranks = outcome.metrics["str"]["ranks"]
    model = outcome.model
    assert model.config.u_rank == ranks["rnn.cell.U"] and model.rnn.cell.U2.shape == (
        8, ranks["rnn.cell.U"])
    # W (8x3) is factored only when that is smaller than the dense matrix
    w_rank = ranks["rnn.cell.W"]
    assert (model.config.w_rank == w_rank) == (w_rank * 11 < 24)
    assert int(torch.count_nonzero(model.head.weight)) == 24  # the head was not targeted
    assert outcome.metrics["str"]["reached"]["U"] >= 0.7 - 1e-9


def test_learned_rank_run_exports_its_factors_and_verifies(tmp_path, capsys, require_gcc):
    data = write_npz(tmp_path / "toy.npz")
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(data), *QUICK, "--out", str(run), "--compress",
                 "str", "--target-sparsity", "0.6", "--learn-rank"]) == 0
    ranks = json.loads((run / "metrics.json").read_text())["str"]["ranks"]
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["u_rank"] == ranks["rnn.cell.U"] and config["train"]["learn_rank"]
    weights = load_file(str(run / "model.safetensors"))
    assert weights["rnn.cell.U1"].shape == (ranks["rnn.cell.U"], 8)
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    assert f"rnn.cell.U (rank {ranks['rnn.cell.U']})" in capsys.readouterr().out
    out = tmp_path / "c"
    assert main(["export", str(run), "--out", str(out), "--bits", "8"]) == 0
    model_c = (out / "model.c").read_text()
    assert f"[{ranks['rnn.cell.U'] * 8}]" in model_c  # U1 and U2: rank x 8 int8 values each
    assert main(["verify", str(out), "--targets", "host"]) == 0
    report = json.loads((out / "verify.json").read_text())
    assert report["targets"]["host"]["exact_match"] == 1.0


def test_learn_rank_errors(tiny_data):
    with pytest.raises(KilomlError, match="add --compress str"):
        TrainConfig(learn_rank=True).validate()
    config = TrainConfig(epochs=3, compress="str", learn_rank=True,
                         target_sparsity={"total": 0.9})
    with pytest.raises(KilomlError, match="drop --u-rank"):
        Trainer(new_model(_config(u_rank=4), tiny_data, 0), tiny_data, config)


@pytest.mark.parametrize("argv,message", [
    (["--learn-rank"], "add --compress str"),
    (["--compress", "str", "--target-sparsity", "0.9", "--learn-rank", "--u-rank", "4"],
     "drop --u-rank"),
    (["--compress", "str", "--target-sparsity", "0.9", "--learn-rank", "--bidirectional"],
     "drop --bidirectional"),
    (["--compress", "str", "--target-sparsity", "0.9", "--learn-rank", "--model", "gru"],
     "needs a family with sparsity groups"),
    (["--compress", "str", "--target-sparsity", "0.9", "--learn-rank", "--model", "sharnn"],
     "sharnn is not one"),
])
def test_cli_learn_rank_errors(tmp_path, capsys, argv, message):
    data = write_npz(tmp_path / "toy.npz")
    assert main(["train", "--dataset", str(data), *QUICK, "--out", str(tmp_path / "run"),
                 *argv]) == 1
    assert message in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_resume_after_the_ranks_are_learned_gives_identical_weights(tiny_data, tmp_path):
    config = TrainConfig(epochs=6, batch_size=16, compress="str", learn_rank=True,
                         target_sparsity={"total": 0.6}, seed=5)
    straight = new_model(_config(), tiny_data, seed=5)
    Trainer(straight, tiny_data, config).fit()
    interrupted = new_model(_config(), tiny_data, seed=5)
    ckpt = tmp_path / "checkpoint.safetensors"
    with pytest.raises(KeyboardInterrupt):  # in the fixed-support phase, after the STR epoch
        Trainer(interrupted, tiny_data, config, checkpoint_path=ckpt, checkpoint_seconds=0,
                stop_after_epoch=lambda e: e == 3).fit()
    resumed = new_model(_config(), tiny_data, seed=99)
    Trainer(resumed, tiny_data, config, checkpoint_path=ckpt).fit(resume=True)
    expected = straight.state_dict()  # by name: the reparameterisation reorders parameters
    assert set(expected) == set(resumed.state_dict())
    for name, value in resumed.state_dict().items():
        assert torch.equal(value, expected[name]), name
