"""The cascade: the upper tier reads exactly the rows where the lower tier fires (never one it
rejected), the tiers' labels, the threshold chosen on validation, and `kiloml train --model
cascade` / `kiloml eval` with their one-line errors."""

import json

import numpy as np
import pytest
import torch

from kiloml.cli import main
from kiloml.data.splits import DatasetSplits, Split
from kiloml.errors import KilomlError
from kiloml.models import build_model
from kiloml.nn.cascade import REJECTED, CascadeConfig
from kiloml.train.cascade import (
    choose_stream_threshold,
    choose_threshold,
    evaluate_cascade,
    tier_splits,
)
from tests.cli.cli_helpers import error_line
from tests.conftest import synthetic_splits


def _cascade(threshold):
    torch.manual_seed(0)
    return build_model(CascadeConfig(kind="cascade", input_size=3, num_classes=4, noise_class=2,
                                     lower_hidden_size=4, upper_hidden_size=5,
                                     threshold=threshold)).eval()


def test_the_upper_tier_reads_only_the_rows_where_the_lower_fires():
    model = _cascade(0.5)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(64, 12, 3)).astype(np.float32))
    with torch.no_grad():  # a bias that makes some rows fire and some not
        model.lower.head.bias.copy_(torch.tensor([0.0, 0.0]))
        p = model.event_probability(x)
        model.config.threshold = float(p.median())
    read = []
    model.upper.register_forward_hook(lambda m, inputs, out: read.append(inputs[0].clone()))
    with torch.no_grad():
        logits = model(x)
    fired = (p >= model.config.threshold).numpy()
    assert 0 < fired.sum() < len(x)
    assert len(read) == 1 and torch.equal(read[0], x[fired])  # those rows, nothing else
    assert (model.calls, model.upper_calls) == (64, int(fired.sum()))
    decided = logits.argmax(1).numpy()
    assert (decided[~fired] == 2).all() and (decided[fired] != 2).all()
    assert (logits[~fired] == torch.tensor([REJECTED, REJECTED, 0.0, REJECTED])).all()
    model.config.threshold = float(p.max()) + 1e-6  # the lower tier fires on nothing
    with torch.no_grad():
        model(x)
    assert len(read) == 1 and model.upper_calls == int(fired.sum())


def test_tier_labels_and_the_fraction_of_upper_calls():
    x = np.zeros((6, 4, 3), dtype=np.float32)
    y = np.array([0, 2, 1, 2, 3, 0])
    data = DatasetSplits("d", Split(x, y), Split(x, y), Split(x, y), ["a", "b", "n", "c"])
    config = CascadeConfig(kind="cascade", input_size=3, num_classes=4, noise_class=2)
    lower, upper = tier_splits(data, config)
    assert lower.train.y.tolist() == [1, 0, 1, 0, 1, 1]
    assert upper.train.y.tolist() == [0, 1, 2, 0] and upper.class_names == ["a", "b", "c"]
    model = _cascade(0.99)
    model.config.threshold = 1 - 1e-9  # nothing fires: every row is noise, upper never read
    result, pred = evaluate_cascade(model, Split(x, y))
    assert pred.tolist() == [2] * 6 and result == {"accuracy": 2 / 6, "upper_fraction": 0.0}
    noiseless = DatasetSplits("d", Split(x, y), Split(x, np.array([0, 1, 3, 0, 1, 3])),
                              Split(x, y), ["a", "b", "n", "c"])
    with pytest.raises(KilomlError, match="validation split holds no sequence of the noise"):
        tier_splits(noiseless, config)


def test_the_threshold_is_the_best_on_validation_the_highest_on_ties():
    p = np.array([0.1, 0.3, 0.6, 0.9])
    upper = np.array([1, 1, 1, 1])
    # noise is 0: y needs p of rows 0-1 below and 2-3 at or above: 0.35 .. 0.6 all score 1.0
    assert choose_threshold(p, upper, np.array([0, 0, 1, 1]), 0) == 0.6
    assert choose_threshold(p, upper, np.array([0, 0, 0, 1]), 0) == 0.9


def _npz(path):
    d = synthetic_splits(classes=4)
    np.savez(path, X_train=d.train.x, y_train=d.train.y, X_test=d.test.x, y_test=d.test.y,
             class_names=np.array(["quiet", "a", "b", "c"]))
    return path


def test_train_and_eval_a_cascade(tmp_path, capsys):
    data = _npz(tmp_path / "c4.npz")
    out = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--model", "cascade", "--noise-class",
                 "quiet", "--lower-hidden-size", "4", "--upper-hidden-size", "8",
                 "--epochs", "3", "--batch-size", "32", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["model"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert config["noise_class"] == 0 and 0 < config["threshold"] < 1
    assert config["threshold"] == metrics["cascade"]["threshold"]
    capsys.readouterr()
    assert main(["eval", str(out)]) == 0
    printed = capsys.readouterr().out
    fraction = 100 * metrics["cascade"]["test_upper_fraction"]
    assert f"test accuracy {100 * metrics['test_accuracy']:.2f}%" in printed
    assert f"upper tier called on {fraction:.1f}% of them" in printed


@pytest.mark.parametrize("options, message", [
    (["--noise-class", "nope"], "--noise-class nope: c4 has no such class"),
    (["--noise-class", "quiet", "--hidden-size", "4"], "--hidden-size do not apply"),
    (["--noise-class", "quiet", "--cascade-threshold", "1"], "expected a number in (0, 1)"),
    (["--noise-class", "quiet", "--compress", "str", "--target-sparsity", "0.9"],
     "trains its tiers with hard thresholding"),
    (["--noise-class", "quiet", "--brick-size", "4"], "--brick-size apply to sharnn"),
    (["--noise-class", "quiet", "--folds", "3"], "--folds must be 0"),
])
def test_bad_cascade_options_are_one_line_errors(tmp_path, capsys, options, message):
    data = _npz(tmp_path / "c4.npz")
    try:
        code = main(["train", "--dataset", str(data), "--model", "cascade", *options,
                     "--epochs", "3", "--out", str(tmp_path / "run")])
    except SystemExit as exc:  # argument errors: argparse exits with 2
        code = exc.code
    assert code in (1, 2) and message in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_cascade_options_on_another_model_are_errors(tmp_path, capsys):
    data = _npz(tmp_path / "c4.npz")
    assert main(["train", "--dataset", str(data), "--lower-hidden-size", "4",
                 "--out", str(tmp_path / "run")]) == 1
    assert "--lower-hidden-size apply to cascade, not fastgrnn" in error_line(capsys)


def test_the_stream_threshold_is_chosen_on_the_windows_of_a_stream():
    model = _cascade(0.5)
    frames = np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32)
    ends = np.arange(11, 50, 4)
    x = np.stack([frames[t - 11:t + 1] for t in ends])
    with torch.no_grad():
        p = model.event_probability(torch.from_numpy(x)).numpy()
        upper = np.array([0, 1, 3])[model.upper(torch.from_numpy(x)).argmax(1).numpy()]
    reference = np.where(p >= np.median(p), upper, 2)  # what a threshold at the median gives
    chosen = choose_stream_threshold(model, frames, reference, ends, 12)
    assert chosen == choose_threshold(p, upper, reference, 2)
