"""MI-ShaRNN: ``kiloml train --model sharnn --instances-from EMI_RUN`` trains on the EMI run's
relabelled instances into a normal run (eval, eval --stream, export), its stream decisions are
the longest run over each window's instance decisions, and bad input is one line."""

import json

import numpy as np
import pytest
import torch

from kiloml.cli import main
from kiloml.data.streams import Stream
from kiloml.nn.emi import longest_run
from kiloml.nn.sharnn import ShaRNNConfig, build_sharnn
from kiloml.train.mi_sharnn import evaluate_mi_stream, mi_stream_decisions
from tests.cli.cli_helpers import error_line
from tests.conftest import synthetic_splits

EMI = ["--model", "emi-fastgrnn", "--hidden-size", "8", "--epochs", "3", "--rounds", "1",
       "--instance-width", "6", "--instance-stride", "3", "--keep-instances", "2",
       "--folds", "0"]
MI = ["--model", "sharnn", "--brick-size", "3", "--hidden-size", "4", "--upper-hidden-size",
      "4", "--u-rank", "2", "--epochs", "3", "--folds", "0"]


@pytest.fixture(scope="module")
def emi_run(tmp_path_factory):
    """A tiny EMI-FastGRNN run on 12-step windows with a ``_silence_`` class (instances of 6
    every 3: 3 per window)."""
    folder = tmp_path_factory.mktemp("mi")
    d = synthetic_splits(classes=4)
    data = folder / "c4.npz"
    np.savez(data, X_train=d.train.x, y_train=d.train.y, X_test=d.test.x, y_test=d.test.y,
             class_names=np.array(["_silence_", "a", "b", "c"]))
    run = folder / "emi-0"
    assert main(["train", "--dataset", str(data), *EMI, "--out", str(run)]) == 0
    return run


def test_trains_on_relabelled_instances_into_a_normal_run(emi_run, tmp_path, capsys):
    run = tmp_path / "mi"
    assert main(["train", "--instances-from", str(emi_run), *MI, "--out", str(run)]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["kind"] == "sharnn" and config["model"]["num_classes"] == 5
    assert config["mi"]["emi_run"] == str(emi_run.resolve())
    assert (config["mi"]["instance_width"], config["mi"]["noise_class"]) == (6, 4)
    assert config["data"]["path"] == str((run / "instances.npz").resolve())
    instances = np.load(run / "instances.npz")
    # 3 instances of 6 frames per window of 12; labels: the data's 4 classes and noise (4);
    # in every window 2 consecutive instances (so the middle one) keep its class, the third
    # is noise
    sizes = config["mi"]["data"]["sizes"]
    assert instances["X_train"].shape == (3 * sizes["train"], 6, 3)
    assert len(instances["X_test"]) == 3 * sizes["test"] == 3 * 32
    assert list(instances["class_names"]) == ["_silence_", "a", "b", "c", "noise"]
    y = instances["y_train"].reshape(-1, 3)
    assert ((y == 4).sum(axis=1) == 1).all() and (y[:, 1] != 4).all()
    capsys.readouterr()
    assert main(["eval", str(run), "--stream", "--target", "none"]) == 0
    out = capsys.readouterr().out
    # the stream is the EMI run's test clips; a decision every brick on (3 - 1) * 3 + 6 frames
    assert "one every 3 frames on the last 12" in out
    assert "longest run of a class other than noise in the last 3 instance decisions" in out
    assert main(["export", str(run), "--out", str(tmp_path / "c"), "--bits", "8"]) == 0
    assert (tmp_path / "c" / "model.c").is_file()


def _sharnn():
    torch.manual_seed(0)
    config = ShaRNNConfig(kind="sharnn", input_size=2, num_classes=3, brick_size=2,
                          hidden_size=4, upper_hidden_size=4).validate()
    return build_sharnn(config).eval()


def test_stream_decisions_are_the_longest_run_of_the_last_instances():
    model = _sharnn()
    frames = np.random.default_rng(1).normal(size=(30, 2)).astype(np.float32) * 3
    ends, classes = mi_stream_decisions(model, frames, width=4, count=3, noise=2)
    with torch.no_grad():
        def instance(end):  # the ShaRNN on the 4 frames ending at ``end``
            x = torch.from_numpy(frames[None, end - 3:end + 1])
            return int(model(x).argmax())

        expected = [longest_run([instance(t - 4), instance(t - 2), instance(t)], 2)
                    for t in range(7, 30, 2)]
    assert list(ends) == list(range(7, 30, 2))  # (3 - 1) * 2 + 4 = 8 frames per decision
    assert list(classes) == expected


def test_a_stream_shorter_than_one_decision_is_an_error():
    from kiloml.errors import KilomlError

    stream = Stream(np.zeros((7, 2), np.float32), np.zeros(7, np.int64), [(0, 7, 0)], None,
                    10.0, "short")
    mi = {"instance_width": 4, "noise_class": 2}
    with pytest.raises(KilomlError, match=r"7 frames, shorter than one window \(8 frames\)"):
        evaluate_mi_stream(_sharnn(), stream, 8, mi)


@pytest.mark.parametrize("extra, message", [
    (["--instances-from", "{missing}"], "no such run directory"),
    (["--instances-from", "{fastgrnn}"], "a fastgrnn run; MI-ShaRNN needs the instances an "
                                         "emi-fastgrnn run relabelled"),
    (["--instances-from", "{emi}", "--dataset", "smartwatch"],
     "--instances-from trains on the EMI run's data as it was loaded; drop --dataset"),
])
def test_bad_instances_from_is_one_line(extra, message, emi_run, tmp_path, capsys):
    fastgrnn = tmp_path / "fastgrnn"
    d = synthetic_splits()
    np.savez(tmp_path / "d.npz", X_train=d.train.x, y_train=d.train.y, X_test=d.test.x,
             y_test=d.test.y)
    if "{fastgrnn}" in extra:
        assert main(["train", "--dataset", str(tmp_path / "d.npz"), "--hidden-size", "4",
                     "--u-rank", "2", "--epochs", "3", "--folds", "0", "--out", str(fastgrnn)]) == 0
    words = [w.format(missing=tmp_path / "nope", fastgrnn=fastgrnn, emi=emi_run) for w in extra]
    capsys.readouterr()
    assert main(["train", *words, *MI, "--out", str(tmp_path / "mi")]) == 1
    assert message in error_line(capsys)


def test_instances_from_needs_the_sharnn(emi_run, tmp_path, capsys):
    assert main(["train", "--instances-from", str(emi_run), "--model", "fastgrnn",
                 "--out", str(tmp_path / "mi")]) == 1
    assert "--instances-from" in error_line(capsys)
