"""EMI-RNN: relabelling keeps the best k consecutive instances (and finds a signal placed in
known instances after training), early exit stops exactly at the threshold crossing, bag
predictions, the loss at every step, and `kiloml train --model emi-fastgrnn`."""

import json

import numpy as np
import pytest
import torch

from kiloml.cli import main
from kiloml.data.bags import make_bags
from kiloml.data.splits import DatasetSplits, Split
from kiloml.nn.emi import EMIConfig, build_emi_fastgrnn
from kiloml.train.emi import (
    bag_predictions,
    early_exit,
    instance_scores,
    instance_splits,
    relabel,
)
from kiloml.train.fit import fit, new_model
from kiloml.train.trainer import TrainConfig
from tests.cli.cli_helpers import error_line, write_npz

NOISE = 3


def test_relabel_keeps_the_best_k_consecutive_instances():
    scores = np.array([[0.1, 0.9, 0.8, 0.2, 0.95],   # best pair: 1-2 (1.7 > 1.15)
                       [0.5, 0.5, 0.5, 0.5, 0.5],    # ties: the first window
                       [0.0, 0.0, 0.1, 0.7, 0.9],    # the last pair
                       [0.9, 0.9, 0.9, 0.9, 0.9]])   # a noise bag stays noise
    labels = np.array([2, 0, 1, NOISE])
    assert relabel(scores, labels, 2, NOISE).tolist() == [
        [3, 2, 2, 3, 3], [0, 0, 3, 3, 3], [3, 3, 3, 1, 1], [3, 3, 3, 3, 3]]
    assert relabel(scores[:1], labels[:1], 9, NOISE).tolist() == [[2, 2, 2, 2, 2]]


def test_early_exit_stops_at_the_first_step_reaching_the_threshold():
    probs = np.array([[[0.5, 0.5], [0.79, 0.21], [0.2, 0.8], [0.1, 0.9]],
                      [[0.6, 0.4], [0.7, 0.3], [0.6, 0.4], [0.45, 0.55]]])
    classes, steps = early_exit(probs, 0.8)
    assert classes.tolist() == [1, 1] and steps.tolist() == [3, 4]  # 0.8 reached at step 3
    classes, steps = early_exit(probs, 0.79)
    assert classes.tolist() == [0, 1] and steps.tolist() == [2, 4]


def test_a_bag_takes_the_class_of_the_longest_run():
    rows = np.array([[NOISE, 1, 1, 0, NOISE, 0], [2, NOISE, 0, 0, 2, 2],
                     [NOISE] * 6, [0, 1, 0, 1, 0, 1]])
    assert bag_predictions(rows, NOISE).tolist() == [1, 0, NOISE, 0]


def test_the_instance_model_has_logits_at_every_step_and_trains_on_each():
    torch.manual_seed(0)
    model = build_emi_fastgrnn(EMIConfig(kind="emi-fastgrnn", input_size=3, num_classes=3,
                                         hidden_size=6))
    x = torch.randn(4, 7, 3)
    steps = model.step_logits(x)
    assert steps.shape == (4, 7, 4)  # three classes and noise
    assert torch.equal(model(x), steps[:, -1])


def _signal_in_known_instances(n: int, seed: int) -> tuple[Split, np.ndarray]:
    """Bags of 6 instances (width 4, stride 4) of noise; the class is a level on feature
    ``class`` in instances 2 and 3 only (known)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 24, 2)).astype(np.float32)
    x[np.arange(n), 8:16, y] += 3.0
    return Split(x, y.astype(np.int64)), np.array([2, 3])


def test_relabelling_finds_the_signal_where_it_sits():
    train, known = _signal_in_known_instances(64, seed=0)
    val, _ = _signal_in_known_instances(32, seed=1)
    data = DatasetSplits("signal", train, val, val, ["a", "b"]).validate()
    config = EMIConfig(kind="emi-fastgrnn", input_size=2, num_classes=2, hidden_size=8,
                       instance_width=4, instance_stride=4, keep_instances=2).validate()
    labels = np.repeat(train.y[:, None], 6, axis=1)
    instances = instance_splits(data, config, labels, np.repeat(val.y[:, None], 6, axis=1))
    model = new_model(config, instances, seed=0)
    fit(instances, config, TrainConfig(epochs=5, batch_size=64, keep_w=1.0, keep_u=1.0,
                                       keep_head=1.0, seed=0).validate(),
        model=model, test_split=False)
    scores = instance_scores(model, make_bags(train.x, 4, 4), train.y)
    new = relabel(scores, train.y, 2, config.noise_class)
    kept = new != config.noise_class
    assert kept.sum(1).tolist() == [2] * 64
    assert np.mean(np.all(kept[:, known], axis=1)) >= 0.9  # 0.97 with these seeds


def test_kiloml_train_emi_fastgrnn(tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")  # 12 steps
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--model", "emi-fastgrnn", "--hidden-size",
                 "8", "--u-rank", "4", "--instance-width", "6", "--instance-stride", "3",
                 "--keep-instances", "2", "--rounds", "1", "--epochs", "3",
                 "--batch-size", "64", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "EMI: 3 instances of 6 steps per bag" in out
    metrics = json.loads((run / "metrics.json").read_text())
    emi = metrics["emi"]
    assert [r["round"] for r in emi["rounds"]] == [0, 1]
    assert emi["rounds"][0]["noise_fraction"] == 0.0
    assert emi["rounds"][1]["noise_fraction"] == pytest.approx(1 / 3)  # 2 of 3 keep the label
    assert metrics["test_accuracy"] == emi["test_early_exit"]["accuracy"]
    assert 1 <= emi["test_early_exit"]["steps_per_instance"] <= 6
    assert emi["test_full"]["steps_per_instance"] == 6
    assert main(["train", "--dataset", str(data), "--model", "emi-fastgrnn",
                 "--instance-width", "13", "--out", str(tmp_path / "bad")]) == 1
    assert error_line(capsys) == ("error: --instance-width 13 is longer than the 12-step "
                                  "sequences")
    assert main(["eval", str(run)]) == 0
    assert (f"test bag accuracy {100 * metrics['test_accuracy']:.2f}%"
            in capsys.readouterr().out)
    assert main(["export", str(run), "--out", str(tmp_path / "export")]) == 0
    assert "exported emi-fastgrnn" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "export"), "--targets", "host"]) == 0
    report = json.loads((tmp_path / "export" / "verify.json").read_text())
    assert report["targets"]["host"]["exact_match"] == 1.0
    assert report["targets"]["host"]["stream_exact_match"] == 1.0


@pytest.mark.parametrize("flag", [["--readout", "mean"], ["--frame-stack", "2"]])
def test_single_level_options_are_refused(flag, tmp_path, capsys):
    data = write_npz(tmp_path / "toy.npz")
    assert main(["train", "--dataset", str(data), "--model", "emi-fastgrnn", *flag,
                 "--out", str(tmp_path / "bad")]) == 1
    assert "not emi-fastgrnn" in error_line(capsys)
